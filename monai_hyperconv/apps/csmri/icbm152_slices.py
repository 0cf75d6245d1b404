"""The embedded CS-MRI data: axial T1 slices of synthetic subjects made from the ICBM152 2009a template.

When ``dataset_dir`` holds no NIfTI file, the axial slices of the ICBM152 2009a T1 template shipped inside
nilearn are written there, one synthetic subject per seed with its own smooth deformation, bias field, tissue
contrast and slice positions (:func:`generate_icbm152_slices`), as 2D NIfTI files then read like real 2D slices.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence

import nibabel as nib
import numpy as np

from monai_hyperconv.apps.csmri.discovery import nifti_files
from monai_hyperconv.apps.embedded import publish_generated, warn_if_generated_differently
from monai_hyperconv.apps.icbm152 import load_icbm152, random_bias_field, random_deform
from monai_hyperconv.data.datalist import SPLIT_KEYS

__all__ = ["EMBEDDED_MANIFEST", "ensure_icbm152_slices", "generate_icbm152_slices"]

#: written next to the generated slices: the generator's arguments
EMBEDDED_MANIFEST = "icbm152_slices.json"

logger = logging.getLogger(__name__)


def _t1_contrast(template, rng: np.random.Generator, z: int) -> np.ndarray:
    """One synthetic subject's axial T1 slice: template T1 re-weighted by tissue with a random contrast."""
    gm, wm, csf = (np.asarray(m[:, :, z]) for m in (template.gm, template.wm, template.csf))
    t1 = np.asarray(template.t1[:, :, z])
    # tissue-specific intensity offsets around the template's own contrast (WM bright, CSF dark in T1)
    offsets = rng.normal(0.0, 0.04, size=3)
    image = t1 + offsets[0] * gm + offsets[1] * wm + offsets[2] * csf
    return np.clip(image, 0.0, None) ** rng.uniform(0.85, 1.15)


def generate_icbm152_slices(
    dataset_dir: str,
    num_subjects: int = 35,
    slices_per_subject: int = 4,
    slice_range: Sequence[float] = (0.35, 0.75),
    max_displacement: float = 6.0,
    bias_strength: float = 0.15,
    seed: int = 0,
) -> list[str]:
    """Write the embedded CS-MRI data: 2D axial T1 slices of synthetic subjects made from the ICBM152 template.

    Subject ``i`` (seeded by ``(seed, i)``) gets its own tissue contrast, gamma, smooth 2D deformation and bias
    field (:mod:`monai_hyperconv.apps.icbm152`), and ``slices_per_subject`` distinct axial positions drawn within
    ``slice_range`` of the brain's axial extent. Files: ``dataset_dir/sub-XXX/sub-XXX_slice-ZZZ.nii.gz``
    (197×233 at 1 mm, float32 in [0, 1]) plus a manifest of these arguments. Everything is written in a temporary
    folder first and moved into place, so an interrupted run leaves no partial data set.

    Returns:
        the written slice paths.
    """
    if num_subjects < len(SPLIT_KEYS) or slices_per_subject < 1:
        raise ValueError(
            f"need num_subjects >= 3 and slices_per_subject >= 1, got {num_subjects}, {slices_per_subject}."
        )
    template = load_icbm152(1)
    z_brain = np.where(np.asarray(template.brain_mask).any(axis=(0, 1)))[0]
    z_lo, z_hi = (int(z_brain[0] + f * (z_brain[-1] - z_brain[0])) for f in slice_range)
    if z_hi - z_lo + 1 < slices_per_subject:
        raise ValueError(f"slice_range {slice_range} holds {z_hi - z_lo + 1} slices, fewer than {slices_per_subject}.")
    parent = os.path.dirname(os.path.abspath(dataset_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".icbm152_slices.", dir=parent)
    names = []
    try:
        for i in range(num_subjects):
            rng = np.random.default_rng([seed, i])
            zs = np.sort(rng.choice(np.arange(z_lo, z_hi + 1), size=slices_per_subject, replace=False))
            field_seed = int(rng.integers(2**31))
            bias = random_bias_field(template.shape[:2], seed=int(rng.integers(2**31)), strength=bias_strength)
            subject = f"sub-{i:03d}"
            os.makedirs(os.path.join(tmp, subject))
            for z in zs:
                image = _t1_contrast(template, rng, int(z)) * bias
                # one deformation per subject: its slices share the anatomy change
                image = random_deform([image], seed=field_seed, max_displacement=max_displacement, control_spacing=32)[
                    0
                ]
                image = np.clip(image / max(float(np.percentile(image, 99.5)), 1e-6), 0.0, 1.0).astype(np.float32)
                affine = np.array(template.affine, dtype=np.float64)
                affine[:3, 3] += affine[:3, 2] * int(z)
                name = os.path.join(subject, f"{subject}_slice-{int(z):03d}.nii.gz")
                nib.save(nib.Nifti1Image(image, affine), os.path.join(tmp, name))
                names.append(name)
        manifest = {
            "generator": "monai_hyperconv.apps.csmri.icbm152_slices.generate_icbm152_slices",
            "source": "ICBM152 2009a symmetric T1 and GM/WM maps shipped with nilearn",
            "num_subjects": num_subjects,
            "slices_per_subject": slices_per_subject,
            "slice_range": list(slice_range),
            "max_displacement": max_displacement,
            "bias_strength": bias_strength,
            "seed": seed,
        }
        with open(os.path.join(tmp, EMBEDDED_MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1)
        publish_generated(tmp, dataset_dir, has_data=nifti_files)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [os.path.join(dataset_dir, n) for n in names]


def ensure_icbm152_slices(dataset_dir: str, **kwargs) -> bool:
    """Generate the embedded slices in ``dataset_dir`` when it is missing or holds no NIfTI file.

    A folder holding other files but no NIfTI is not touched: that is an error naming it (it may be a user's
    folder pointed at by mistake). Returns True when data was generated.
    """
    if os.path.isdir(dataset_dir):
        if nifti_files(dataset_dir):
            warn_if_generated_differently(dataset_dir, EMBEDDED_MANIFEST, kwargs)
            return False
        if os.listdir(dataset_dir):
            raise FileNotFoundError(
                f"CS-MRI dataset folder {dataset_dir!r} holds no .nii/.nii.gz file but other files; expected T1 "
                "NIfTI volumes or slices, or an empty / missing folder to generate the embedded data in."
            )
    logger.info(f"Generating the embedded ICBM152 CS-MRI slices in {dataset_dir} ({kwargs or 'defaults'}).")
    generate_icbm152_slices(dataset_dir, **kwargs)
    return True
