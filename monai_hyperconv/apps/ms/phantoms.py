"""Embedded MS lesion data: longitudinal brain phantoms on the ICBM152 anatomy, in the ISBI 2015 layout.

Each subject is the ICBM152 2009a template (:mod:`monai_hyperconv.apps.icbm152`) under a seeded random smooth
deformation, with subject-specific tissue intensities. MS-like lesions are ovoids of varied size in the white
matter, either periventricular (elongated away from the ventricles, like Dawson's fingers) or deep; each has an
onset time point and grows or shrinks linearly over the 4-6 time points. Per time point the four contrasts are
synthesised from the tissue and lesion fractions (lesions bright on FLAIR, T2 and PD, dark on T1 / MPRAGE), then
multiplied by a smooth bias field and corrupted by noise, and masked to the brain (the ISBI "preprocessed"
images are skull-stripped). Two rater masks threshold the lesion map after adding different smooth fields, so
they agree in the lesion cores and differ at the borders; the gold standard is their intersection.

Geometry: the template's MNI grid at ``voxel_size`` mm (default 2 mm: 98×116×94 voxels, affine from the
template), i.e. the field of view of the ISBI preprocessed volumes (1 mm, 182×256×182 in the paper) at half the
resolution, which keeps generation and training fast on CPUs; the paper's 144×176×144 mm crop is 72×88×72 voxels
there. ``voxel_size=1`` gives the template's own 197×233×189 grid.

Everything is deterministic by ``seed``: subject ``i`` draws from ``numpy.random.default_rng([seed, i])``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from monai_hyperconv.apps.embedded import warn_if_generated_differently
from monai_hyperconv.apps.icbm152 import load_icbm152, random_bias_field, random_deform, random_smooth_field
from monai_hyperconv.apps.ms.isbi import ISBI_CONTRASTS, isbi_has_data
from monai_hyperconv.utils.optional import require

__all__ = [
    "TISSUE_INTENSITIES",
    "Lesion",
    "PhantomSubject",
    "ensure_ms_dataset",
    "generate_ms_phantoms",
    "lesion_map",
    "make_phantom_subject",
    "rater_masks",
    "synthesize",
]

#: written into a generated phantom folder: the generator's arguments (compared when the folder is reused)
MARKER_FILENAME = "phantoms.json"

#: relative intensity of CSF, GM, WM and lesion in each contrast (lesions bright on FLAIR/PD/T2, dark on T1)
TISSUE_INTENSITIES = {
    "flair": (0.15, 0.75, 0.55, 1.30),
    "pd": (0.90, 0.85, 0.70, 1.05),
    "t2": (1.40, 0.85, 0.60, 1.20),
    "mprage": (0.30, 0.65, 1.00, 0.42),
}


@dataclass(frozen=True)
class Lesion:
    """An ovoid lesion: centre and rotation (voxel space), semi-axes (voxels) at onset, onset time point, growth.

    ``growth`` is the relative change of the semi-axes per time point after the onset (negative: shrinking).
    """

    centre: np.ndarray
    rotation: np.ndarray
    semi_axes: np.ndarray
    onset: int
    growth: float

    def semi_axes_at(self, timepoint: int) -> np.ndarray | None:
        """Semi-axes at ``timepoint``, or None before the onset or once shrunk away."""
        if timepoint < self.onset:
            return None
        scale = 1.0 + self.growth * (timepoint - self.onset)
        return self.semi_axes * scale if scale > 0.2 else None


@dataclass
class PhantomSubject:
    """Anatomy, lesions and imaging parameters of one phantom subject."""

    csf: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    brain: np.ndarray
    lesions: list[Lesion]
    intensities: dict[str, np.ndarray]
    affine: np.ndarray
    voxel_size: float


def _rotation_towards(axis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An orthonormal matrix whose first column is ``±axis`` (an ovoid does not care about the sign)."""
    q, _ = np.linalg.qr(np.column_stack([axis + 1e-8, rng.standard_normal((3, 2))]))
    return q


def _lesion_sites(csf, gm, wm, brain, voxel_size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate centres (periventricular, deep WM) and the gradient of the ventricle distance."""
    ndimage = require("scipy.ndimage", purpose="the embedded MS phantoms")
    depth = ndimage.distance_transform_edt(brain) * voxel_size
    ventricles = (csf > 0.5) & (depth > 20.0)
    to_vent = ndimage.distance_transform_edt(~ventricles) * voxel_size
    to_gm = ndimage.distance_transform_edt(gm < 0.5) * voxel_size
    peri = np.argwhere((wm > 0.7) & (to_vent >= 2.0) & (to_vent <= 8.0) & (depth > 12.0))
    deep = np.argwhere((wm > 0.9) & (to_vent > 10.0) & (to_gm > 4.0))
    return peri, deep, np.stack(np.gradient(to_vent))


def _draw_lesions(rng, csf, gm, wm, brain, voxel_size, num_timepoints) -> list[Lesion]:
    peri, deep, grad = _lesion_sites(csf, gm, wm, brain, voxel_size)
    lesions = []
    for _ in range(int(rng.integers(20, 41))):
        periventricular = rng.random() < 0.6 and len(peri) > 0
        sites = peri if periventricular or len(deep) == 0 else deep
        if len(sites) == 0:
            break
        centre = sites[rng.integers(len(sites))].astype(np.float64)
        radius = float(np.clip(np.exp(rng.normal(np.log(4.0), 0.45)), 1.5, 12.0)) / voxel_size
        ratios = np.array([1.0, rng.uniform(0.55, 0.9), rng.uniform(0.45, 0.8)])
        if periventricular:
            axis = grad[(slice(None), *centre.astype(int))]  # away from the ventricle
            ratios[0] = rng.uniform(1.4, 2.2)
        else:
            axis = rng.standard_normal(3)
        lesions.append(
            Lesion(
                centre=centre,
                rotation=_rotation_towards(axis, rng),
                semi_axes=radius * ratios,
                onset=0 if rng.random() < 0.7 or num_timepoints < 2 else int(rng.integers(1, num_timepoints)),
                growth=float(rng.uniform(-0.15, 0.25)),
            )
        )
    return lesions


def make_phantom_subject(seed: int | Sequence[int], num_timepoints: int = 4, voxel_size: int = 2) -> PhantomSubject:
    """Deformed anatomy, lesions and tissue intensities of one subject (deterministic by ``seed``)."""
    rng = np.random.default_rng(seed)
    tpl = load_icbm152(voxel_size)
    csf, gm, wm, mask = random_deform(
        [tpl.csf, tpl.gm, tpl.wm, tpl.brain_mask],
        seed=rng,
        max_displacement=6.0 / voxel_size,
        control_spacing=40.0 / voxel_size,
    )
    brain = mask > 0.5
    lesions = _draw_lesions(rng, csf, gm, wm, brain, voxel_size, num_timepoints)
    intensities = {c: np.asarray(v) * rng.uniform(0.92, 1.08, 4) for c, v in TISSUE_INTENSITIES.items()}
    return PhantomSubject(csf, gm, wm, brain, lesions, intensities, np.asarray(tpl.affine), float(voxel_size))


def lesion_map(subject: PhantomSubject, timepoint: int) -> np.ndarray:
    """Soft lesion fraction in [0, 1] at ``timepoint``: union (max) of the ovoids, with a 1-voxel boundary ramp."""
    shape = subject.wm.shape
    out = np.zeros(shape, np.float32)
    for lesion in subject.lesions:
        axes = lesion.semi_axes_at(timepoint)
        if axes is None:
            continue
        reach = int(np.ceil(axes.max())) + 2
        lo = np.maximum(lesion.centre.astype(int) - reach, 0)
        hi = np.minimum(lesion.centre.astype(int) + reach + 1, shape)
        grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1)
        local = (grid - lesion.centre) @ lesion.rotation / axes  # coordinates in units of the semi-axes
        q = np.linalg.norm(local, axis=-1)
        frac = np.clip((1.0 - q) * axes.min() + 0.5, 0.0, 1.0)  # ramp ~1 voxel wide at the border
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        out[box] = np.maximum(out[box], frac)
    # lesions live in the white matter: none inside the ventricles or the cortex
    return out * np.clip(1.5 * subject.wm, 0.0, 1.0) * subject.brain


def synthesize(subject: PhantomSubject, lesions: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The four contrasts of one time point: tissue mixture, bias field, noise, brain mask (float32)."""
    keep = 1.0 - lesions
    images = {}
    for contrast in ISBI_CONTRASTS:
        i_csf, i_gm, i_wm, i_les = subject.intensities[contrast] * rng.uniform(0.9, 1.1)
        clean = keep * (subject.csf * i_csf + subject.gm * i_gm + subject.wm * i_wm) + lesions * i_les
        bias = random_bias_field(
            clean.shape, rng, strength=rng.uniform(0.08, 0.2), control_spacing=60.0 / subject.voxel_size
        )
        noisy = clean * bias + rng.normal(0.0, rng.uniform(0.015, 0.03), clean.shape)
        images[contrast] = (np.clip(noisy, 0, None) * subject.brain * 500.0).astype(np.float32)
    return images


def rater_masks(
    subject: PhantomSubject, lesions: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two raters' binary masks: the lesion map plus a different smooth field each, thresholded at 0.5."""
    masks = []
    for _ in range(2):
        jitter = random_smooth_field(lesions.shape, rng, control_spacing=3.0)[0]
        masks.append(((lesions + 0.3 * jitter > 0.5) & (lesions > 0.05)).astype(np.uint8))
    return masks[0], masks[1]


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))


def generate_ms_phantoms(
    dataset_dir: str | os.PathLike,
    num_subjects: int = 4,
    num_timepoints: int | Sequence[int] = 4,
    num_test_subjects: int = 1,
    seed: int = 0,
    voxel_size: int = 2,
) -> list[Path]:
    """Write labelled (``training/``) and unlabelled (``testdata_website/``) phantom subjects in the ISBI layout.

    Args:
        dataset_dir: destination; files are written directly (use :func:`ensure_ms_dataset` for an atomic,
            only-when-empty generation).
        num_subjects: labelled subjects ``training01..``, with both rater masks.
        num_timepoints: time points per subject (one int for all, or one per subject; 4-6 in ISBI).
        num_test_subjects: unlabelled subjects ``test01..`` (no masks).
        seed: base seed; the same seed writes the same files.
        voxel_size: grid of the phantoms in mm (2: 98×116×94, 1: 197×233×189).

    Returns:
        the subject folders written.
    """
    if num_subjects < 0 or num_test_subjects < 0 or num_subjects + num_test_subjects < 1:
        raise ValueError(f"need at least one subject, got {num_subjects} labelled and {num_test_subjects} test.")
    total = num_subjects + num_test_subjects
    tps = [int(num_timepoints)] * total if np.isscalar(num_timepoints) else [int(t) for t in num_timepoints]
    if len(tps) != total or min(tps) < 1:
        raise ValueError(f"num_timepoints must be a positive int or one per subject ({total}), got {num_timepoints}.")
    root = Path(dataset_dir)
    folders = []
    for index in range(total):
        labelled = index < num_subjects
        name = f"training{index + 1:02d}" if labelled else f"test{index - num_subjects + 1:02d}"
        folder = root / ("training" if labelled else "testdata_website") / name
        (folder / "preprocessed").mkdir(parents=True, exist_ok=True)
        subject = make_phantom_subject([seed, index], tps[index], voxel_size)
        rng = np.random.default_rng([seed, index, 1])
        for t in range(tps[index]):
            stem = f"{name}_{t + 1:02d}"
            lesions = lesion_map(subject, t)
            for contrast, image in synthesize(subject, lesions, rng).items():
                _save(image, subject.affine, folder / "preprocessed" / f"{stem}_{contrast}_pp.nii")
            if labelled:
                (folder / "masks").mkdir(exist_ok=True)
                for r, mask in enumerate(rater_masks(subject, lesions, rng), start=1):
                    _save(mask, subject.affine, folder / "masks" / f"{stem}_mask{r}.nii")
        folders.append(folder)
    return folders


def ensure_ms_dataset(
    dataset_dir: str | os.PathLike,
    num_subjects: int = 4,
    num_timepoints: int | Sequence[int] = 4,
    num_test_subjects: int = 1,
    seed: int = 0,
    voxel_size: int = 2,
) -> str:
    """Return ``dataset_dir``, first generating the phantoms there when it holds no ISBI-layout data.

    The phantoms are written to a temporary folder next to ``dataset_dir`` and moved in only when complete, so an
    interrupted generation leaves no partial dataset; a folder that already holds data (real ISBI data or earlier
    phantoms) is never touched. ``phantoms.json`` records the generation parameters.

    Raises:
        FileNotFoundError: naming ``dataset_dir`` when it holds files but no ISBI-layout data (perhaps real data
            in another layout, which must not be mixed with phantoms).
    """
    root = Path(dataset_dir)
    params = {
        "num_subjects": num_subjects,
        "num_timepoints": num_timepoints,
        "num_test_subjects": num_test_subjects,
        "seed": seed,
        "voxel_size": voxel_size,
    }
    if isbi_has_data(root):
        warn_if_generated_differently(root, MARKER_FILENAME, params)
        return str(root)
    if root.is_dir() and any(root.iterdir()):
        raise FileNotFoundError(
            f"MS dataset folder {str(root)!r} holds files but no ISBI 2015 layout data (<subject>/preprocessed/"
            "<subject>_<tp>_flair_pp.nii ...); point dataset_dir at the ISBI folder, or at a missing or empty "
            "folder to generate the embedded phantoms there."
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset folder should not be
    try:
        generate_ms_phantoms(tmp, **params)
        (tmp / MARKER_FILENAME).write_text(json.dumps(params, indent=1))
        if not root.exists():
            try:
                os.rename(tmp, root)
                return str(root)
            except OSError:  # another process created it meanwhile
                pass
        root.mkdir(exist_ok=True)
        for child in sorted(tmp.iterdir()):
            try:
                os.rename(child, root / child.name)
            except OSError:
                if not isbi_has_data(root):
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(root)
