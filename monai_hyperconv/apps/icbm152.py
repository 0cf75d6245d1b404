"""The ICBM152 2009a brain template shipped inside nilearn, and seeded random smooth fields to vary it.

nilearn installs the skull-stripped T1 template and the grey / white matter probability maps of the ICBM152
2009a symmetric atlas (1 mm, 197×233×189) inside its package (``nilearn/datasets/data``). They are read from the
installed files here, never fetched; :func:`load_icbm152` returns the same arrays as
``nilearn.datasets.load_mni152_template(resolution=1)`` (T1 scaled to [0, 1]) and
``load_mni152_gm_template`` / ``load_mni152_wm_template``, without importing ``nilearn`` (whose import takes
seconds). nilearn ships no CSF map: CSF is what the brain mask (T1 > 0) holds that is neither GM nor WM.

The random fields are smooth because they are drawn on a coarse control grid and interpolated up, the usual
construction of random elastic deformations and bias fields. Every generator takes a ``seed`` (an int or a
``numpy.random.Generator``) and gives the same field for the same seed; all work for 2D and 3D shapes.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

from monai_hyperconv.utils.optional import missing_package_error, require

__all__ = [
    "ICBM152_FILES",
    "ICBM152Template",
    "icbm152_path",
    "load_icbm152",
    "random_bias_field",
    "random_deform",
    "random_displacement_field",
    "random_smooth_field",
    "warp",
]

#: file names of the template maps inside ``nilearn/datasets/data``
ICBM152_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}

Seed = int | np.random.Generator | None


def icbm152_path(name: str) -> Path:
    """Path of one ICBM152 map inside the installed nilearn package.

    Args:
        name: ``"t1"``, ``"gm"`` or ``"wm"``.

    Raises:
        KeyError: for another name.
        OptionalImportError: (an ImportError) when nilearn is not installed.
        FileNotFoundError: when nilearn does not hold the file.
    """
    if name not in ICBM152_FILES:
        raise KeyError(f"ICBM152 map {name!r} is not one of {sorted(ICBM152_FILES)}.")
    spec = importlib.util.find_spec("nilearn")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        # not imported (nilearn's import is slow, only its files are read); the usual error naming the extra
        raise missing_package_error("nilearn", purpose=f"the ICBM152 template ({ICBM152_FILES[name]}, a nilearn file)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / ICBM152_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: expected the ICBM152 2009a {name} map shipped with nilearn.")
    return path


@dataclass(frozen=True)
class ICBM152Template:
    """ICBM152 2009a maps on one grid, float32 arrays in [0, 1] (read-only: they are cached).

    Attributes:
        t1: skull-stripped T1 intensities scaled to [0, 1].
        gm, wm, csf: tissue probability maps; ``gm + wm + csf <= 1`` and all are zero outside the brain.
        brain_mask: fraction of each voxel inside the brain (1 mm: binary, ``t1 > 0``).
        affine: 4×4 voxel-to-world (MNI mm) matrix.
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain_mask: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.t1.shape)

    @property
    def voxel_size(self) -> tuple[float, ...]:
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))


def _read(name: str) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(icbm152_path(name)))
    data = np.asarray(img.dataobj, dtype=np.float32)
    return data / data.max(), np.asarray(img.affine, dtype=np.float64)


def _block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over non-overlapping ``factor``-wide blocks (the remainder at the far edge is dropped)."""
    if factor == 1:
        return a
    shape = tuple(s // factor for s in a.shape)
    a = a[tuple(slice(0, s * factor) for s in shape)]
    return a.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5), dtype=np.float32)


@functools.lru_cache(maxsize=4)
def load_icbm152(voxel_size: int = 1) -> ICBM152Template:
    """Load the ICBM152 2009a T1 and tissue maps from the installed nilearn package (cached).

    Args:
        voxel_size: integer voxel size in mm. 1 gives the shipped 197×233×189 grid; ``k > 1`` averages
            k×k×k blocks (e.g. 2 → 98×116×94), a fast down-sampling that keeps probabilities in [0, 1].

    Returns:
        an :class:`ICBM152Template` whose arrays must not be modified (copy them first).
    """
    if int(voxel_size) != voxel_size or voxel_size < 1:
        raise ValueError(f"voxel_size must be a positive integer (mm), got {voxel_size!r}.")
    voxel_size = int(voxel_size)
    if voxel_size > 1:
        full = load_icbm152(1)
        maps = [_block_mean(a, voxel_size) for a in (full.t1, full.gm, full.wm, full.csf, full.brain_mask)]
        affine = full.affine.copy()
        # block 0 is centred on old voxel (k - 1) / 2
        affine[:3, 3] += affine[:3, :3] @ np.full(3, (voxel_size - 1) / 2.0)
        affine[:3, :3] *= voxel_size
        return _frozen(maps, affine)
    t1, affine = _read("t1")
    gm, _ = _read("gm")
    wm, _ = _read("wm")
    mask = (t1 > 0).astype(np.float32)
    # the shipped GM/WM maps spill a little outside the skull-stripped T1: keep the brain only
    gm, wm = gm * mask, wm * mask
    total = gm + wm
    over = total > 1
    gm[over], wm[over] = gm[over] / total[over], wm[over] / total[over]
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    return _frozen([t1, gm, wm, csf, mask], affine)


def _frozen(maps: list[np.ndarray], affine: np.ndarray) -> ICBM152Template:
    for a in maps:
        a.setflags(write=False)
    affine.setflags(write=False)
    return ICBM152Template(*maps, affine=affine)


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"shape must hold 2 or 3 positive sizes, got {shape}.")
    return shape


def random_smooth_field(
    shape: Sequence[int],
    seed: Seed = None,
    control_spacing: float = 16.0,
    channels: int = 1,
) -> np.ndarray:
    """Smooth random field with unit standard deviation at the control points.

    Gaussian noise on a control grid with ``control_spacing`` voxels between points, interpolated to ``shape``
    (cubic B-spline between the control points, so the field and its first derivatives are continuous).

    Args:
        shape: spatial shape (2D or 3D).
        seed: int or ``numpy.random.Generator``.
        control_spacing: voxels between control points: the field's correlation length.
        channels: number of independent fields.

    Returns:
        float32 array ``(channels, *shape)``.
    """
    shape = _shape(shape)
    if control_spacing <= 0:
        raise ValueError(f"control_spacing must be positive, got {control_spacing}.")
    coarse_shape = tuple(max(2, int(np.ceil(s / control_spacing)) + 1) for s in shape)
    coarse = _rng(seed).standard_normal((channels, *coarse_shape)).astype(np.float32)
    # cubic interpolation of the small grid, then linear up to the full grid: cheap and smooth at this scale
    mid_shape = tuple(min(s, 4 * c) for s, c in zip(shape, coarse_shape))
    ndimage = require("scipy.ndimage", purpose="random smooth fields")
    mid = np.stack(
        [ndimage.zoom(c, [m / n for m, n in zip(mid_shape, coarse_shape)], order=3, mode="nearest") for c in coarse]
    )
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    full = F.interpolate(torch.from_numpy(mid)[None], size=shape, mode=mode, align_corners=True)[0]
    return full.numpy()


def random_displacement_field(
    shape: Sequence[int],
    seed: Seed = None,
    max_displacement: float = 4.0,
    control_spacing: float = 24.0,
) -> np.ndarray:
    """Smooth random displacement field, in voxels, for :func:`warp`.

    Args:
        shape: spatial shape (2D or 3D).
        seed: int or ``numpy.random.Generator``.
        max_displacement: largest displacement of any voxel along any axis (the field is scaled to it).
        control_spacing: voxels between control points; larger gives smoother, more global deformations.

    Returns:
        float32 array ``(len(shape), *shape)``; component ``i`` displaces along array axis ``i``.
    """
    shape = _shape(shape)
    field = random_smooth_field(shape, seed, control_spacing, channels=len(shape))
    peak = float(np.abs(field).max())
    return field * (max_displacement / peak) if peak > 0 else field


def warp(image: np.ndarray, displacement: np.ndarray, mode: str = "bilinear") -> np.ndarray:
    """Resample ``image`` at ``x + displacement(x)`` (zeros outside the grid).

    Args:
        image: array ``shape`` or ``(C, *shape)``.
        displacement: ``(ndim, *shape)`` field in voxels, as from :func:`random_displacement_field`.
        mode: ``"bilinear"`` (linear in 2D and 3D: keeps probability maps in [0, 1]) or ``"nearest"`` (labels).

    Returns:
        float32 array of the shape of ``image``.
    """
    displacement = np.asarray(displacement, dtype=np.float32)
    ndim = displacement.shape[0]
    spatial = tuple(displacement.shape[1:])
    image = np.asarray(image, dtype=np.float32)
    if not image.flags.writeable:  # torch.from_numpy wants writable memory (cached template maps are read-only)
        image = image.copy()
    squeeze = image.ndim == ndim
    if squeeze:
        image = image[None]
    if len(spatial) != ndim or tuple(image.shape[1:]) != spatial:
        raise ValueError(f"image {image.shape} and displacement {displacement.shape} do not share one {ndim}D grid.")
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in spatial], indexing="ij"))
    grid += displacement
    # grid_sample wants normalised (-1, 1) coordinates ordered (x, y[, z]) = reversed array axes
    for i, s in enumerate(spatial):
        grid[i] = grid[i] * (2.0 / max(s - 1, 1)) - 1.0
    grid_t = torch.from_numpy(grid[::-1].copy()).movedim(0, -1)[None]
    out = F.grid_sample(torch.from_numpy(image)[None], grid_t, mode=mode, padding_mode="zeros", align_corners=True)
    out = out[0].numpy()
    return out[0] if squeeze else out


def random_deform(
    images: Sequence[np.ndarray],
    seed: Seed = None,
    max_displacement: float = 4.0,
    control_spacing: float = 24.0,
    modes: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Apply one seeded random smooth deformation to several co-registered arrays.

    Args:
        images: arrays sharing one spatial shape, each ``shape`` or ``(C, *shape)`` (the first one sets ``shape``;
            give a 2D or 3D spatial array first).
        seed, max_displacement, control_spacing: as in :func:`random_displacement_field`.
        modes: interpolation per array (default ``"bilinear"`` for all; ``"nearest"`` for label maps).
    """
    shape = np.asarray(images[0]).shape
    field = random_displacement_field(shape, seed, max_displacement, control_spacing)
    modes = list(modes) if modes is not None else ["bilinear"] * len(images)
    if len(modes) != len(images):
        raise ValueError(f"got {len(modes)} modes for {len(images)} images.")
    return [warp(img, field, mode) for img, mode in zip(images, modes)]


def random_bias_field(
    shape: Sequence[int],
    seed: Seed = None,
    strength: float = 0.2,
    control_spacing: float = 48.0,
) -> np.ndarray:
    """Seeded smooth multiplicative intensity field (MRI bias field), positive, geometric mean about 1.

    ``exp(strength * f)`` for a :func:`random_smooth_field` ``f`` scaled to a peak of 1, so values lie in
    ``[exp(-strength), exp(strength)]``; also usable as a slow spatial intensity variation of one tissue.

    Args:
        shape: spatial shape (2D or 3D).
        seed: int or ``numpy.random.Generator``.
        strength: log-amplitude of the field (0 gives ones).
        control_spacing: voxels between control points (large: slowly varying).

    Returns:
        float32 array of ``shape``.
    """
    field = random_smooth_field(shape, seed, control_spacing)[0]
    peak = float(np.abs(field).max())
    if peak > 0:
        field = field / peak
    return np.exp(strength * field).astype(np.float32)
