"""CS-MRI dataset discovery: T1 NIfTI slices and volumes under a folder, grouped by subject, split by subject.

Real data: a folder of T1-weighted NIfTI files under ``dataset_dir``, searched recursively, either 3D volumes
(ABIDE-like: each volume gives ``slices_per_volume`` axial slices spread over ``slice_range`` of its axial extent) or
2D slices (``(H, W)`` or ``(H, W, 1)``). Items are grouped by subject (a ``sub-*`` path component, else the folder
holding the file without session / modality folders, else the file) and split by subject in the paper's
2000 / 500 / 1000 proportions, so no subject crosses splits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import nibabel as nib
import numpy as np

from monai_hyperconv.data.datalist import SPLIT_KEYS, split_sizes
from monai_hyperconv.utils.outputs import check_not_output_dir, is_output_dir

__all__ = [
    "CSMRI_SPLIT",
    "NIFTI_PATTERNS",
    "find_csmri_images",
    "mri_spatial_shape",
    "nifti_files",
    "split_by_subject",
    "subject_of",
]

#: the paper's training / validation / test slice counts (ABIDE), used as split proportions
CSMRI_SPLIT = (2000, 500, 1000)
NIFTI_PATTERNS = ("*.nii", "*.nii.gz")
# folders that do not identify a subject (sessions, modality folders of ABIDE / BIDS layouts)
_NON_SUBJECT_DIR = re.compile(r"^(ses|session|anat|func|dwi|scans?)([-_].*|\d*)$", re.IGNORECASE)
_BIDS_SUBJECT = re.compile(r"^sub-[A-Za-z0-9]+")


def _is_nifti(name: str) -> bool:
    return name.endswith((".nii", ".nii.gz"))


def nifti_files(folder: str) -> list[str]:
    """Every NIfTI file under ``folder`` (recursive; hidden folders and output folders of bundle runs skipped), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not is_output_dir(os.path.join(root, d)))
        found += [os.path.join(root, f) for f in files if _is_nifti(f) and not f.startswith(".")]
    return sorted(found)


def subject_of(relpath: str) -> str:
    """The subject a file belongs to, from its path relative to the dataset folder.

    A BIDS ``sub-XXX`` component wins; otherwise the folders holding the file, without session or modality folders
    (``session_1``, ``anat_1``, ``ses-01``...), e.g. ``Caltech/0051456`` for ABIDE's
    ``Caltech/0051456/session_1/anat_1/mprage.nii.gz``; a file directly in the dataset folder is its own subject.
    """
    parts = relpath.replace(os.sep, "/").split("/")
    for p in parts:
        m = _BIDS_SUBJECT.match(p)
        if m:
            return m.group(0)
    folders = [p for p in parts[:-1] if not _NON_SUBJECT_DIR.match(p)]
    if folders:
        return "/".join(folders)
    name = parts[-1]
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else os.path.splitext(name)[0]


def mri_spatial_shape(shape: Sequence[int], source: str) -> tuple[int, ...]:
    """The spatial shape of a T1 file's array: ``(H, W)`` for a slice, ``(X, Y, Z)`` for a volume, trailing
    singleton axes dropped (``(H, W, 1)`` is a slice).

    Raises:
        ValueError: naming ``source`` for anything else, e.g. a 4D series ``(X, Y, 1, T)`` whose frames would
            otherwise be read as slices of a volume.
    """
    full = tuple(int(s) for s in shape)
    spatial = full
    while len(spatial) > 2 and spatial[-1] == 1:
        spatial = spatial[:-1]
    if len(spatial) not in (2, 3):
        raise ValueError(
            f"{source}: shape {full}; expected a 2D slice (H, W) or a 3D T1 volume (X, Y, Z), not a series of "
            "frames (4D)."
        )
    return spatial


def _spatial_shape(path: str) -> tuple[int, ...]:
    """:func:`mri_spatial_shape` of a NIfTI file, from its header only; complex-valued files are refused."""
    try:
        header = nib.load(path)
        shape, dtype = header.shape, header.get_data_dtype()
    except Exception as e:  # not a NIfTI file, truncated header...
        raise ValueError(f"Cannot read the NIfTI header of {path}: {e}") from e
    if dtype.kind == "c":
        raise ValueError(f"{path}: complex-valued voxels ({dtype}); expected a real-valued (magnitude) T1 image.")
    return mri_spatial_shape(shape, path)


def find_csmri_images(
    dataset_dir: str, slices_per_volume: int = 5, slice_range: Sequence[float] = (0.3, 0.7)
) -> list[dict]:
    """Items ``{"image", "slice", "subject"}`` for every 2D slice file and for chosen axial slices of every volume.

    Args:
        dataset_dir: folder searched recursively for ``.nii`` / ``.nii.gz`` files.
        slices_per_volume: axial slices taken from each 3D volume, evenly spaced over ``slice_range``.
        slice_range: fractions of the axial extent (after RAS reorientation) between which slices are taken.

    Returns:
        items sorted by path; ``slice`` is the axial position as a fraction in [0, 1] for volumes, -1 for 2D files.

    Raises:
        FileNotFoundError: when ``dataset_dir`` does not exist.
        ValueError: naming a file that is neither a 2D slice nor a 3D volume (e.g. a 4D series), or complex-valued.
    """
    if not os.path.isdir(dataset_dir):
        raise FileNotFoundError(f"CS-MRI dataset folder {dataset_dir!r} does not exist.")
    check_not_output_dir(dataset_dir)
    lo, hi = float(slice_range[0]), float(slice_range[1])
    if not 0.0 <= lo <= hi <= 1.0 or slices_per_volume < 1:
        raise ValueError(
            f"slice_range must satisfy 0 <= lo <= hi <= 1 and slices_per_volume >= 1, got "
            f"{slice_range} and {slices_per_volume}."
        )
    fractions = np.linspace(lo, hi, slices_per_volume) if slices_per_volume > 1 else np.array([(lo + hi) / 2])
    items = []
    for path in nifti_files(dataset_dir):
        shape = _spatial_shape(path)
        subject = subject_of(os.path.relpath(path, dataset_dir))
        if len(shape) == 2:
            items.append({"image": path, "slice": -1.0, "subject": subject})
        else:
            items += [{"image": path, "slice": round(float(f), 6), "subject": subject} for f in fractions]
    return items


def split_by_subject(items: Sequence[dict], proportions: Sequence[float] = CSMRI_SPLIT, seed: int = 0) -> dict:
    """Seeded split of ``items`` into training / validation / test by their ``subject``, in ``proportions`` of subjects.

    Raises:
        ValueError: when there are fewer subjects than splits.
    """
    subjects = sorted({it["subject"] for it in items})
    try:
        counts = split_sizes(len(subjects), proportions)
    except ValueError as e:
        raise ValueError(f"CS-MRI data: {e} (found {len(subjects)} subjects; splits are made by subject).") from e
    order = np.random.default_rng(seed).permutation(len(subjects))
    split, start = {}, 0
    for key, c in zip(SPLIT_KEYS, counts):
        chosen = {subjects[i] for i in order[start : start + c]}
        split[key] = [dict(it) for it in items if it["subject"] in chosen]
        start += c
    return split
