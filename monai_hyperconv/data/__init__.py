"""Datasets and datalists every bundle shares (MONAI's ``monai.data`` is the precedent).

- :class:`VolumeSliceDataset`: 2D slices of volumes decoded and preprocessed once (cached).
- :mod:`~monai_hyperconv.data.datalist`: datalist JSON files ``{"training": [...], "validation": [...],
  "test": [...]}``: :func:`read_split_json`, :func:`reusable_datalist`, :func:`datalist_source`,
  :func:`split_sizes`.

The task-specific layouts (LiTS, ISBI 2015, T1 slices) are in :mod:`monai_hyperconv.apps`; the checked image loader
is a transform (:class:`monai_hyperconv.transforms.CheckedLoadImaged`).
"""

from monai_hyperconv.data.datalist import SPLIT_KEYS, datalist_source, read_split_json, reusable_datalist, split_sizes
from monai_hyperconv.data.slice_dataset import VolumeSliceDataset

__all__ = [
    "SPLIT_KEYS",
    "VolumeSliceDataset",
    "datalist_source",
    "read_split_json",
    "reusable_datalist",
    "split_sizes",
]
