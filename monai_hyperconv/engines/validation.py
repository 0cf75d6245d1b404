"""Input checks shared by the bundles: every error names the file (or key) and what was expected.

(The file checks ``require_files`` / ``ensure_writable_dir`` live in :mod:`monai_hyperconv.utils.files`.) The functions raise ``ValueError`` / ``FileNotFoundError`` / ``PermissionError`` with messages a user can act on;
:class:`CheckImageLabeld` applies them inside a MONAI transform chain, reading the file names from the
``MetaTensor`` metadata that ``LoadImaged`` attaches.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_hyperconv.utils.files import source_name

__all__ = [
    "CheckImageLabeld",
    "check_finite",
    "check_label_values",
    "check_same_spatial_shape",
]


def check_finite(array, source: str, key: str = "image") -> None:
    """Raise ``ValueError`` when ``array`` holds NaN or infinite values, naming the source file and key."""
    arr = torch.as_tensor(array)
    if arr.is_floating_point():
        finite = torch.isfinite(arr)
        if not bool(finite.all()):
            raise ValueError(f"{source}: '{key}' has {int((~finite).sum())} NaN or infinite voxels; expected finite values.")


def check_label_values(array, allowed: Sequence[int], source: str, key: str = "label") -> None:
    """Raise ``ValueError`` when ``array`` holds a value outside ``allowed``, listing the offending values."""
    arr = torch.as_tensor(array)
    outside = ~torch.isin(arr, torch.as_tensor(list(allowed), dtype=arr.dtype, device=arr.device))
    if bool(outside.any()):  # only then pay for the unique values, to name them
        bad = torch.unique(arr[outside]).cpu().numpy()
        shown = ", ".join(f"{v:g}" for v in bad[:10].tolist())
        raise ValueError(f"{source}: '{key}' holds values {{{shown}}} outside the expected labels {sorted(allowed)}.")


def check_same_spatial_shape(image, label, image_source: str, label_source: str) -> None:
    """Raise ``ValueError`` when two channel-first arrays differ in spatial shape, naming both files."""
    si, sl = tuple(image.shape[1:]), tuple(label.shape[1:])
    if si != sl:
        raise ValueError(
            f"Shape mismatch: {image_source} has spatial shape {si} but {label_source} has {sl}; expected the same."
        )


class CheckImageLabeld(MapTransform):
    """Check a loaded image / label pair: finite image, labels in ``allowed_labels``, equal spatial shapes.

    Place it right after ``LoadImaged`` + ``EnsureChannelFirstd``, before any resampling, so that the error names the
    files exactly as the user gave them.

    Args:
        keys: ``(image_key, label_key)``; a missing label key (inference) checks the image only.
        allowed_labels: the label values the dataset may hold (e.g. ``(0, 1, 2)`` for LiTS).
        allow_missing_keys: passed to ``MapTransform``.
    """

    def __init__(
        self, keys: KeysCollection = ("image", "label"), allowed_labels: Sequence[int] = (0, 1), allow_missing_keys=True
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"CheckImageLabeld expects keys (image_key, label_key), got {self.keys}.")
        self.allowed_labels = tuple(int(v) for v in allowed_labels)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        image_key, label_key = self.keys
        image = d[image_key]
        image_src = source_name(image, default=f"<{image_key}>")
        check_finite(image, image_src, str(image_key))
        if label_key in d:
            label = d[label_key]
            label_src = source_name(label, default=f"<{label_key}>")
            check_same_spatial_shape(image, label, image_src, label_src)
            check_label_values(label, self.allowed_labels, label_src, str(label_key))
        return d
