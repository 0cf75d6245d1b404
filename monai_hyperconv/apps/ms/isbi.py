"""Datalists and folds for the ISBI 2015 longitudinal MS lesion challenge layout.

The public data (and the embedded phantoms of :mod:`monai_hyperconv.apps.ms.phantoms`) are laid out as::

    <dataset_dir>/training/training01/preprocessed/training01_01_flair_pp.nii   (also _mprage, _pd, _t2)
    <dataset_dir>/training/training01/masks/training01_01_mask1.nii             (and _mask2: the two raters)
    <dataset_dir>/<any folder>/test01/preprocessed/test01_01_flair_pp.nii       (test subjects: no masks)

One datalist entry is one time point of one subject: ``{"image": [flair, pd, t2, mprage], "mask1", "mask2",
"subject", "timepoint"}``; the image paths are in the paper's multi-branch order (FLAIR, PD, T2, T1) so that
``LoadImaged`` + ``EnsureChannelFirstd`` stacks them into a 4-channel volume. The gold standard of a labelled
time point is the intersection of the two raters' masks (:func:`gold_standard`).

Folds (:func:`isbi_fold`): one labelled subject is held out for validation, the others train; with the 5 labelled
ISBI subjects this is the paper's 5-fold protocol, and it works for any number >= 2 of labelled subjects. The
per-fold Dice files and the fold summary are written by :mod:`monai_hyperconv.apps.ms.reports`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from monai_hyperconv.utils.outputs import check_not_output_dir, is_output_dir

__all__ = [
    "ISBI_CONTRASTS",
    "find_isbi_images",
    "gold_standard",
    "image_id",
    "isbi_fold",
    "isbi_has_data",
    "labelled_subjects",
    "num_isbi_folds",
    "prediction_name",
    "select_isbi_images",
]

#: contrast file tags in the network's channel order: FLAIR, PD, T2, T1 (MPRAGE)
ISBI_CONTRASTS = ("flair", "pd", "t2", "mprage")

_FLAIR = re.compile(r"^(?P<subject>.+)_(?P<tp>\d+)_flair_pp\.nii(\.gz)?$")


def _sibling(flair: Path, tag: str, folder: str | None = None) -> Path | None:
    """The file of another contrast / mask next to ``flair`` (``.nii`` or ``.nii.gz``, as found), or None."""
    m = _FLAIR.match(flair.name)
    stem = f"{m['subject']}_{m['tp']}_{tag}"
    base = flair.parent if folder is None else flair.parent.parent / folder
    for ext in (".nii", ".nii.gz"):
        if (base / f"{stem}{ext}").is_file():
            return base / f"{stem}{ext}"
    return None


def _flair_files(root: Path) -> list[Path]:
    """The FLAIR files under ``root``, outside output folders of bundle runs (predictions are not data)."""
    found = []
    for flair in sorted(root.glob("**/preprocessed/*_flair_pp.nii*")):
        folders = flair.relative_to(root).parents
        if _FLAIR.match(flair.name) and not any(is_output_dir(root / f) for f in folders if f != Path(".")):
            found.append(flair)
    return found


def find_isbi_images(dataset_dir: str | os.PathLike, labelled: bool | None = None) -> list[dict]:
    """Every time point in an ISBI-layout folder, sorted by subject and time point.

    Args:
        dataset_dir: the folder holding ``training/`` (and optionally test folders), searched recursively for
            ``*/preprocessed/<subject>_<tp>_flair_pp.nii[.gz]``.
        labelled: True keeps time points with both rater masks, False those without masks, None all.

    Returns:
        entries ``{"image": [flair, pd, t2, mprage], "mask1", "mask2", "subject", "timepoint"}`` (mask keys only
        for labelled time points).

    Raises:
        FileNotFoundError: when a contrast of a time point is missing, or only one rater mask exists (the message
            names the missing file), or (with ``labelled=None``) when the folder holds no time point at all.
        ValueError: when ``dataset_dir`` is an output folder of a bundle run; output folders below it are skipped.
    """
    root = Path(dataset_dir)
    check_not_output_dir(root)
    entries = []
    for flair in _flair_files(root):
        m = _FLAIR.match(flair.name)
        images = []
        for tag in ISBI_CONTRASTS:
            path = flair if tag == "flair" else _sibling(flair, f"{tag}_pp")
            if path is None:
                expected = flair.parent / f"{m['subject']}_{m['tp']}_{tag}_pp.nii"
                raise FileNotFoundError(
                    f"Missing contrast {tag!r}: expected {expected} (or .nii.gz) next to {flair}; every time point "
                    f"needs the four contrasts {list(ISBI_CONTRASTS)}."
                )
            images.append(str(path))
        entry = {"image": images, "subject": m["subject"], "timepoint": m["tp"]}
        masks = [_sibling(flair, f"mask{r}", folder="masks") for r in (1, 2)]
        if any(masks) and not all(masks):
            have = next(p for p in masks if p is not None)
            missing = flair.parent.parent / "masks" / f"{m['subject']}_{m['tp']}_mask{1 + masks.index(None)}.nii"
            raise FileNotFoundError(f"Missing rater mask {missing}: found {have} but the gold standard needs both.")
        if all(masks):
            entry.update(mask1=str(masks[0]), mask2=str(masks[1]))
        if labelled is None or labelled == ("mask1" in entry):
            entries.append(entry)
    if not entries and labelled is None:
        raise FileNotFoundError(
            f"No ISBI 2015 time point in {str(root)!r}: expected <subject>/preprocessed/<subject>_<tp>_flair_pp.nii"
            "[.gz] with its pd, t2 and mprage siblings (and masks/<subject>_<tp>_mask1/2.nii for training subjects)."
        )
    return sorted(entries, key=lambda e: (e["subject"], e["timepoint"]))


def isbi_has_data(dataset_dir: str | os.PathLike) -> bool:
    """True when ``dataset_dir`` holds at least one ISBI-layout FLAIR image."""
    root = Path(dataset_dir)
    return root.is_dir() and bool(_flair_files(root))


def labelled_subjects(datalist: Sequence[dict]) -> list[str]:
    """Sorted ids of the subjects that have labelled time points in ``datalist``."""
    return sorted({e["subject"] for e in datalist if "mask1" in e})


def num_isbi_folds(datalist: Sequence[dict]) -> int:
    """Number of folds: one per labelled subject."""
    return len(labelled_subjects(datalist))


def isbi_fold(datalist: Sequence[dict], fold: int) -> tuple[list[dict], list[dict]]:
    """Training and validation entries of one fold: labelled subject ``fold`` (sorted ids) is held out.

    Args:
        datalist: entries of :func:`find_isbi_images` (unlabelled ones are ignored).
        fold: 0 .. number of labelled subjects - 1.

    Returns:
        ``(train, val)``, all time points of a subject on the same side.

    Raises:
        ValueError: with fewer than 2 labelled subjects or a fold out of range.
    """
    subjects = labelled_subjects(datalist)
    if len(subjects) < 2:
        raise ValueError(
            f"Folds need at least 2 labelled subjects (time points with mask1 and mask2), found {len(subjects)}: "
            f"{subjects}."
        )
    if not 0 <= int(fold) < len(subjects):
        raise ValueError(f"fold must be in 0..{len(subjects) - 1} (one per labelled subject {subjects}), got {fold}.")
    held_out = subjects[int(fold)]
    labelled = [e for e in datalist if "mask1" in e]
    return [e for e in labelled if e["subject"] != held_out], [e for e in labelled if e["subject"] == held_out]


def gold_standard(mask1: np.ndarray, mask2: np.ndarray, source1: str = "mask1", source2: str = "mask2") -> np.ndarray:
    """Intersection of two raters' binary masks (the ISBI 2015 gold standard), as uint8.

    Raises:
        ValueError: naming both sources when the shapes differ.
    """
    mask1, mask2 = np.asarray(mask1), np.asarray(mask2)
    if mask1.shape != mask2.shape:
        raise ValueError(
            f"Rater masks differ in shape: {source1} is {mask1.shape} but {source2} is {mask2.shape}; expected the same."
        )
    return ((mask1 > 0) & (mask2 > 0)).astype(np.uint8)


def select_isbi_images(datalist: Sequence[dict], which: str = "test", fold: int = 0) -> list[dict]:
    """Entries to predict: ``"test"`` (time points without masks), ``"validation"`` (the held-out subject of
    ``fold``), ``"training"`` (the other labelled subjects), ``"labelled"`` or ``"all"``.

    Raises:
        ValueError: for another ``which``, or when the selection is empty (naming what was looked for).
    """
    if which == "test":
        selected = [e for e in datalist if "mask1" not in e]
    elif which in ("validation", "training"):
        train, val = isbi_fold(datalist, fold)
        selected = val if which == "validation" else train
    elif which == "labelled":
        selected = [e for e in datalist if "mask1" in e]
    elif which == "all":
        selected = list(datalist)
    else:
        raise ValueError(f"which must be 'test', 'validation', 'training', 'labelled' or 'all', got {which!r}.")
    if not selected:
        raise ValueError(f"No {which!r} time points in the datalist ({len(datalist)} entries).")
    return selected


def image_id(path: str | os.PathLike) -> tuple[str, str]:
    """``(subject, timepoint)`` of an ISBI file name such as ``training01_02_flair_pp.nii`` (any contrast)."""
    m = re.match(r"^(?P<subject>.+?)_(?P<tp>\d+)_(flair|pd|t2|mprage)_pp", os.path.basename(os.fspath(path)))
    if m is None:
        raise ValueError(f"{path}: not an ISBI image name '<subject>_<tp>_<contrast>_pp.nii'.")
    return m["subject"], m["tp"]


def prediction_name(meta: Mapping, saver=None) -> dict:
    """``output_name_formatter`` of ``SaveImaged`` for predictions: ``{"subject": "<folder>/<subject>_<timepoint>"}``
    with ``<folder>`` the subject's folder (above ``preprocessed/``), so that a saver whose layout has a
    ``data_root_dir`` keeps the input's folders below it (``training/training01/training01_02_lesion.nii.gz``: one
    file per input even when two folders hold the same subject and time point), and one without writes the ISBI
    submission name ``<subject>_<timepoint>_<postfix>.nii.gz``.

    Args:
        meta: the image's metadata (``filename_or_obj`` is its FLAIR file).
        saver: the ``SaveImage`` instance (unused; part of MONAI's formatter signature).
    """
    path = os.fspath(meta["filename_or_obj"])
    folder = os.path.dirname(path)
    if os.path.basename(folder) == "preprocessed":
        folder = os.path.dirname(folder)
    return {"subject": os.path.join(folder, "_".join(image_id(path)))}
