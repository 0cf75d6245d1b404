"""The embedded CS-MRI data, heads: 2D T1 slices of synthetic heads (skull, scalp, fat, face, background).

Made from one average T1 head **with** skull and face (the bundle ships pydeface's ``mean_reg2mean``, MIT, at
2 mm: ``bundles/csmri_recon/resources``). Every slice is cut from that volume along its own plane (a subject-wide
head size and tilt, its own axial position, pixel size and in-plane deformation), then its contrast is drawn anew:
an unsharp mask (the average is blurrier than a scan), fine random intensity texture, a random intensity curve
mixed with random tissue classes cut at sharp thresholds (folded, sharp edges where the average is blurred), gamma, a bias field, blur, and Rician noise (what a magnitude image has in its background).
So no two slices share the template's look, and a network trained on them must undo the aliasing rather than
paint a template (the failure of the skull-stripped ICBM152 slices on real heads, :mod:`.icbm152_slices`).
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
import torch
import torch.nn.functional as F

from monai_hyperconv.apps.csmri.discovery import nifti_files
from monai_hyperconv.apps.embedded import publish_generated, warn_if_generated_differently
from monai_hyperconv.apps.icbm152 import random_bias_field, random_displacement_field, random_smooth_field
from monai_hyperconv.data.datalist import SPLIT_KEYS
from monai_hyperconv.utils.optional import require

__all__ = [
    "HEAD_MANIFEST",
    "HEAD_TEMPLATE",
    "ensure_head_slices",
    "find_head_template",
    "generate_head_slices",
    "synthetic_head_slice",
]

#: written next to the generated slices: the generator's arguments
HEAD_MANIFEST = "head_slices.json"
#: the average head the bundle ships, in ``<bundle_root>/resources``
HEAD_TEMPLATE = "pydeface_mean_head_2mm.nii.gz"
# the bundle of a source checkout (editable install), next to the package
_CHECKOUT_BUNDLE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "bundles",
    "csmri_recon",
)

logger = logging.getLogger(__name__)


def find_head_template(bundle_root: str | None = None) -> str:
    """The bundle's head template: ``<bundle_root>/resources/HEAD_TEMPLATE`` when it exists, else that of the
    repository's ``bundles/csmri_recon`` when running from a source checkout (the bundle's configs used with another
    ``bundle_root``), else the ``bundle_root`` path (missing: :func:`generate_head_slices` names it when it needs it).
    """
    candidates = [os.path.join(str(bundle_root), "resources", HEAD_TEMPLATE)] if bundle_root else []
    candidates.append(os.path.join(_CHECKOUT_BUNDLE, "resources", HEAD_TEMPLATE))
    return next((c for c in candidates if os.path.isfile(c)), candidates[0])


def _rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rotation matrix (degrees about the R, A and S axes, applied in that order)."""
    ax, ay, az = np.deg2rad([rx, ry, rz])
    rot_x = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rot_y = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rot_z = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


def _load_head(path: str) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The head volume scaled to [0, 1] as a ``(1, 1, X, Y, Z)`` tensor, its affine, and its centre in mm."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Head template {path!r} does not exist: expected a 3D T1 head NIfTI file.")
    img = nib.as_closest_canonical(nib.load(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"Head template {path}: shape {data.shape}; expected a 3D T1 volume.")
    data = np.clip(data / max(float(np.percentile(data, 99.5)), 1e-6), 0.0, 1.0)
    head = np.argwhere(data > 0.1)
    centre_vox = (head.min(axis=0) + head.max(axis=0)) / 2.0
    centre = img.affine[:3, :3] @ centre_vox + img.affine[:3, 3]
    return torch.from_numpy(data)[None, None], np.asarray(img.affine, dtype=np.float64), centre


def _sample_plane(volume: torch.Tensor, affine: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """Trilinear samples of ``volume`` at world points ``(H, W, 3)`` (mm), zero outside."""
    inv = np.linalg.inv(affine)
    vox = points_mm @ inv[:3, :3].T + inv[:3, 3]
    shape = np.asarray(volume.shape[2:], dtype=np.float64)
    norm = vox / np.maximum(shape - 1, 1) * 2.0 - 1.0
    # grid_sample's last grid axis orders (W, H, D) = the volume's axes reversed
    grid = torch.from_numpy(norm[..., ::-1].astype(np.float32).copy())[None, None]
    out = F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0, 0, 0].numpy()


def synthetic_head_slice(
    volume: torch.Tensor,
    affine: np.ndarray,
    centre: np.ndarray,
    rng: np.random.Generator,
    z_mm: float,
    rotation: np.ndarray,
    scale: np.ndarray,
    size: Sequence[int] = (240, 240),
    max_displacement: float = 8.0,
    bias_strength: float = 0.3,
    noise_range: Sequence[float] = (0.005, 0.02),
) -> np.ndarray:
    """One synthetic T1 slice ``size`` (float32 in [0, 1]) of the head ``volume`` at height ``z_mm`` above its centre.

    The plane is the axial plane through ``centre + (0, 0, z_mm)`` turned by ``rotation`` and the head scaled by
    ``scale`` (per axis); pixel size, in-plane deformation and the whole contrast are drawn from ``rng``.
    """
    ndimage = require("scipy.ndimage", purpose="the embedded CS-MRI head slices")
    h, w = (int(s) for s in size)
    pixel = rng.uniform(0.85, 1.2)  # mm: the head fills more or less of the field of view
    u = (np.arange(h) - (h - 1) / 2.0) * pixel
    v = (np.arange(w) - (w - 1) / 2.0) * pixel
    uu, vv = np.meshgrid(u, v, indexing="ij")
    disp = random_displacement_field((h, w), rng, max_displacement, control_spacing=rng.uniform(24, 48))
    uu, vv = uu + disp[0] * pixel, vv + disp[1] * pixel
    plane = np.stack([uu, vv, np.full_like(uu, z_mm)], axis=-1)
    points = (plane @ rotation.T) / scale + centre + rng.normal(0.0, 3.0, size=3)
    image = _sample_plane(volume, affine, points)

    head = image > 0.04
    # the average head is blurrier than any scan: give back edges and fine structure, each slice its own
    blurred = ndimage.gaussian_filter(image, rng.uniform(1.0, 3.0))
    image = image + rng.uniform(0.0, 1.5) * (image - blurred)
    # a smooth perturbation before the tissue cuts below: folds their boundaries. Its scale stays above that of the
    # under-sampling's aliasing blobs (a few pixels), else the network learns to keep such blobs as anatomy
    fold = random_smooth_field((h, w), rng, control_spacing=rng.uniform(10.0, 20.0))[0]
    image = image + rng.uniform(0.02, 0.08) * fold * head
    # a random intensity curve (not necessarily monotone: other T1 contrasts, enhancement)
    knots = np.linspace(0.0, 1.0, 9)
    values = np.clip(knots + np.concatenate([[0.0], rng.normal(0.0, 0.07, size=8)]), 0.0, None)
    smooth = np.interp(np.clip(image, 0.0, 1.3), np.append(knots, 1.3), np.append(values, values[-1] + 0.3))
    # ... mixed with tissue classes: intensity levels cut by a few thresholds with narrow soft steps, so the
    # perturbed template breaks into sharp, folded boundaries (gyri, skull layers) that the average has blurred away
    thresholds = np.sort(rng.uniform(0.08, 0.95, size=int(rng.integers(3, 7))))
    levels = np.clip(thresholds + rng.normal(0.0, 0.08, size=thresholds.size), 0.0, None)
    steps = np.diff(np.concatenate([[0.0], levels]))
    width = rng.uniform(0.005, 0.03)
    classes = sum(d / (1.0 + np.exp(-(image - t) / width)) for d, t in zip(steps, thresholds))
    mix = rng.uniform(0.3, 1.0)
    image = mix * classes + (1.0 - mix) * smooth
    image = np.clip(image, 0.0, None) ** rng.uniform(0.75, 1.3)
    image = image * (1.0 + rng.uniform(0.0, 0.06) * random_smooth_field((h, w), rng, control_spacing=2.0)[0])
    image = image * random_bias_field((h, w), rng, strength=rng.uniform(0.0, bias_strength), control_spacing=96)
    image = ndimage.gaussian_filter(np.clip(image, 0.0, None), rng.uniform(0.0, 0.8))
    image = image / max(float(np.percentile(image, 99.5)), 1e-6)
    # magnitude of complex Gaussian noise: a Rician floor in the background, as in a real magnitude image
    sigma = rng.uniform(*noise_range)
    image = np.hypot(image + sigma * rng.standard_normal((h, w)), sigma * rng.standard_normal((h, w)))
    return np.clip(image / max(float(np.percentile(image, 99.5)), 1e-6), 0.0, 1.0).astype(np.float32)


def generate_head_slices(
    dataset_dir: str,
    head_template: str,
    num_subjects: int = 60,
    slices_per_subject: int = 4,
    slice_range: Sequence[float] = (0.2, 0.85),
    max_tilt: float = 12.0,
    max_displacement: float = 8.0,
    bias_strength: float = 0.3,
    noise_range: Sequence[float] = (0.005, 0.02),
    size: Sequence[int] = (240, 240),
    seed: int = 0,
) -> list[str]:
    """Write the embedded CS-MRI heads: 2D T1 slices of synthetic subjects made from one average head.

    Subject ``i`` (seeded by ``(seed, i)``) gets a head size (0.88-1.12 per axis), a tilt (up to ``max_tilt``
    degrees about the left-right and front-back axes and ±10° in plane) and ``slices_per_subject`` distinct
    heights drawn within ``slice_range`` of the head's axial extent; every slice its own contrast
    (:func:`synthetic_head_slice`). Files: ``dataset_dir/sub-XXX/sub-XXX_slice-ZZZ.nii.gz`` (``size`` pixels,
    float32 in [0, 1]) plus a manifest of these arguments, written in a temporary folder first and moved into place.

    Returns:
        the written slice paths.
    """
    if num_subjects < len(SPLIT_KEYS) or slices_per_subject < 1:
        raise ValueError(
            f"need num_subjects >= 3 and slices_per_subject >= 1, got {num_subjects}, {slices_per_subject}."
        )
    volume, affine, centre = _load_head(head_template)
    data = volume[0, 0].numpy()
    rows = np.where((data > 0.1).any(axis=(0, 1)))[0]
    z_of = (affine[2, 2] * rows + affine[2, 3]) - centre[2]  # heights of the head's axial rows, mm from its centre
    z_lo, z_hi = (float(z_of[0] + f * (z_of[-1] - z_of[0])) for f in slice_range)
    parent = os.path.dirname(os.path.abspath(dataset_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".head_slices.", dir=parent)
    names = []
    try:
        for i in range(num_subjects):
            rng = np.random.default_rng([seed, i])
            scale = rng.uniform(0.88, 1.12, size=3)
            rotation = _rotation(*rng.uniform(-max_tilt, max_tilt, size=2), rng.uniform(-10.0, 10.0))
            zs = np.sort(rng.uniform(z_lo, z_hi, size=slices_per_subject))
            subject = f"sub-{i:03d}"
            os.makedirs(os.path.join(tmp, subject))
            for k, z in enumerate(zs):
                image = synthetic_head_slice(
                    volume, affine, centre, rng, float(z) * scale[2], rotation, scale, size, max_displacement,
                    bias_strength, noise_range,
                )  # fmt: skip
                out_affine = np.eye(4)
                out_affine[2, 3] = float(z)
                name = os.path.join(subject, f"{subject}_slice-{k:03d}.nii.gz")
                nib.save(nib.Nifti1Image(image, out_affine), os.path.join(tmp, name))
                names.append(name)
        manifest = {
            "generator": "monai_hyperconv.apps.csmri.head_slices.generate_head_slices",
            "source": f"average T1 head with skull and face: {os.path.basename(head_template)}",
            "num_subjects": num_subjects,
            "slices_per_subject": slices_per_subject,
            "slice_range": list(slice_range),
            "max_tilt": max_tilt,
            "max_displacement": max_displacement,
            "bias_strength": bias_strength,
            "noise_range": list(noise_range),
            "size": list(size),
            "seed": seed,
        }
        with open(os.path.join(tmp, HEAD_MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1)
        publish_generated(tmp, dataset_dir, has_data=nifti_files)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [os.path.join(dataset_dir, n) for n in names]


def ensure_head_slices(dataset_dir: str, head_template: str, **kwargs) -> bool:
    """Generate the embedded head slices in ``dataset_dir`` when it is missing or holds no NIfTI file.

    A folder holding other files but no NIfTI is not touched: that is an error naming it. Returns True when data
    was generated.
    """
    if os.path.isdir(dataset_dir):
        if nifti_files(dataset_dir):
            warn_if_generated_differently(dataset_dir, HEAD_MANIFEST, kwargs)
            return False
        if os.listdir(dataset_dir):
            raise FileNotFoundError(
                f"CS-MRI dataset folder {dataset_dir!r} holds no .nii/.nii.gz file but other files; expected T1 "
                "NIfTI volumes or slices, or an empty / missing folder to generate the embedded data in."
            )
    logger.info(f"Generating the embedded CS-MRI head slices in {dataset_dir} from {head_template}.")
    generate_head_slices(dataset_dir, head_template, **kwargs)
    return True
