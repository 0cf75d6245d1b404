"""A CacheDataset whose first volume fails while its other threads still preprocess volumes (for
tests/test_error_reporting.py): ``python cache_failure.py <folder> hook|nohook``; hook installs the package's hook
(as a bundle run does first), nohook keeps Python's."""

import os
import sys

import nibabel as nib
import numpy as np
from monai.data import CacheDataset
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, Resized

from monai_hyperconv.transforms import CheckImageLabeld
from monai_hyperconv.utils import install_excepthook

folder, mode = sys.argv[1], sys.argv[2]
if mode == "hook":
    install_excepthook()
os.makedirs(folder, exist_ok=True)
files = []
for i in range(6):
    img, lab = os.path.join(folder, f"volume-{i}.nii"), os.path.join(folder, f"segmentation-{i}.nii")
    if not os.path.exists(lab):
        rng = np.random.default_rng(i)
        nib.save(nib.Nifti1Image(rng.integers(-200, 300, (256, 256, 24)).astype(np.int16), np.eye(4)), img)
        nib.save(nib.Nifti1Image(np.full((256, 256, 24), 3 if i == 0 else 1, np.uint8), np.eye(4)), lab)
    files.append({"image": img, "label": lab})
keys = ["image", "label"]
transform = Compose(
    [
        LoadImaged(keys, image_only=True),
        EnsureChannelFirstd(keys),
        CheckImageLabeld(keys, (0, 1)),
        Orientationd(keys, axcodes="RAS"),
        Resized(keys, (128, 128, -1), mode=("area", "nearest-exact")),
    ]
)
CacheDataset(files, transform, num_workers=2, copy_cache=False)
