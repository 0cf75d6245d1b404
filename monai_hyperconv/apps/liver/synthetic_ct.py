"""Embedded liver-lesion data: synthetic abdominal CT volumes written in the public LiTS layout.

Each volume is an int16 NIfTI in Hounsfield units (``volume-N.nii``) with its label (``segmentation-N.nii``:
0 background, 1 liver, 2 tumour), axial slices ``size`` × ``size`` (512 by default), a LiTS-like affine
(``diag(-dx, -dy, dz)``, in-plane spacing from a 340–420 mm field of view, slice spacing from the slice count) and
20–60 slices. The anatomy is analytic, so a volume is computed slice-chunk by slice-chunk with vectorised numpy:
air, a body of irregular elliptic section with subcutaneous fat and a muscle wall, visceral fat texture, a
vertebra, aorta, kidneys and spleen (liver-like confounders), a liver of smooth irregular shape, and 2–7
hypo- or hyper-dense lesions of 8–30 mm radius; then slight blur (partial volume) and CT-like noise.

Everything is drawn from one ``numpy.random.Generator`` per volume seeded by ``(seed, index)``: the same seed gives
the same files. :func:`ensure_synthetic_lits` generates into a temporary sibling folder and renames it into place,
so an interrupted generation never looks like a dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence

import nibabel as nib
import numpy as np

from monai_hyperconv.apps.embedded import warn_if_generated_differently
from monai_hyperconv.utils.optional import require

__all__ = ["MARKER_FILENAME", "ensure_synthetic_lits", "generate_synthetic_lits", "synthetic_ct_volume"]

#: written last into a generated dataset folder: the generator's arguments (documents the data's origin)
MARKER_FILENAME = "synthetic_ct.json"

HU_AIR, HU_FAT, HU_MUSCLE, HU_SOFT, HU_BONE, HU_MARROW = -1000.0, -100.0, 50.0, 35.0, 700.0, 250.0


def _smooth_field(rng: np.random.Generator, n_waves: int = 6, wavelength=(35.0, 90.0)):
    """A random smooth scalar field (sum of plane waves, roughly in [-1, 1]) of the world coordinates given as 1-D
    axes ``x`` (along i), ``y`` (along j), ``z`` (along k); returns the ``(len(x), len(y), len(z))`` grid."""
    k = rng.normal(size=(n_waves, 3))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    k *= (2 * np.pi / rng.uniform(*wavelength, size=n_waves))[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=n_waves)
    amp = rng.uniform(0.5, 1.0, size=n_waves)
    amp /= amp.sum()

    k, phase, amp = k.astype(np.float32), phase.astype(np.float32), amp.astype(np.float32)
    cache: dict = {}

    def field(x, y, z):
        # cos(a + b) = cos a cos b - sin a sin b, a in-plane (cached across slabs), b along z: two matrix products
        x, y, z = (np.asarray(c, dtype=np.float32).reshape(-1) for c in (x, y, z))
        key = (x.size, y.size, float(x[0]), float(y[0]))
        if key not in cache:
            a = (k[:, 0, None, None] * x[None, :, None] + k[:, 1, None, None] * y[None, None, :]).reshape(n_waves, -1)
            cache.clear()
            cache[key] = (
                np.ascontiguousarray((np.cos(a) * amp[:, None]).T),
                np.ascontiguousarray((np.sin(a) * amp[:, None]).T),
            )
        cos_a, sin_a = cache[key]
        b = k[:, 2, None] * z[None, :] + phase[:, None]
        return (cos_a @ np.cos(b) - sin_a @ np.sin(b)).reshape(x.size, y.size, z.size)

    return field


def _ellipsoid_radius(x, y, z, centre, axes):
    """Normalised ellipsoidal radius (< 1 inside the ellipsoid)."""
    return np.sqrt(sum(((c - c0) / a) ** 2 for c, c0, a in zip((x, y, z), centre, axes)))


def synthetic_ct_volume(
    rng: np.random.Generator, size: int = 512, num_slices: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic abdominal CT volume.

    Args:
        rng: the random generator (all randomness comes from it).
        size: in-plane size (voxels) of the axial slices.
        num_slices: number of axial slices.

    Returns:
        ``(image, label, affine)``: int16 HU array ``(size, size, num_slices)``, uint8 labels in {0, 1, 2} of the
        same shape, and the 4×4 voxel-to-world (RAS, mm) affine.
    """
    fov = rng.uniform(340.0, 420.0)
    dxy = fov / size
    extent = rng.uniform(130.0, 200.0)  # mm covered along z, mostly the liver
    dz = float(np.clip(extent / num_slices, 0.8, 5.0))
    # LiTS-like affine: i, j run towards patient right / posterior (negative RAS x, y), k towards head.
    affine = np.diag([-dxy, -dxy, dz, 1.0])
    centre_ijk = np.array([(size - 1) / 2, (size - 1) / 2, (num_slices - 1) / 2])
    affine[:3, 3] = -affine[:3, :3] @ centre_ijk + rng.uniform(-20, 20, size=3)

    # world coordinates relative to the volume centre (mm): x right(-)/left(+), y posterior(-)/anterior(+)
    xs = -dxy * (np.arange(size, dtype=np.float32) - centre_ijk[0])
    ys = -dxy * (np.arange(size, dtype=np.float32) - centre_ijk[1])
    zs = dz * (np.arange(num_slices, dtype=np.float32) - centre_ijk[2])
    X, Y = xs[:, None, None], ys[None, :, None]

    # body section: ellipse with smooth angular perturbation, slowly varying along z
    a_body, b_body = rng.uniform(135, 170), rng.uniform(100, 125)
    body_shape = [(k, rng.uniform(0, 0.04), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4, 5)]
    fat_mm, muscle_mm = rng.uniform(8, 30), rng.uniform(6, 14)
    texture = _smooth_field(rng, wavelength=(15.0, 40.0))
    # liver: right upper abdomen, smooth irregular ellipsoid
    liver_c = (-rng.uniform(0.35, 0.5) * a_body, rng.uniform(-0.05, 0.25) * b_body, rng.uniform(-0.1, 0.1) * extent)
    liver_ax = (rng.uniform(65, 85), rng.uniform(55, 75), rng.uniform(0.55, 0.75) * extent)
    liver_field = _smooth_field(rng, wavelength=(50.0, 110.0))
    liver_hu = rng.uniform(55, 75)
    # spleen on the left, a liver-like confounder; kidneys posterior; aorta in front of the spine
    spleen_c = (rng.uniform(0.45, 0.6) * a_body, -rng.uniform(0.1, 0.3) * b_body, rng.uniform(-0.2, 0.2) * extent)
    spleen_ax = (rng.uniform(20, 30), rng.uniform(35, 50), rng.uniform(40, 60))
    kidneys = [
        (
            (s * rng.uniform(0.35, 0.45) * a_body, -0.45 * b_body, rng.uniform(-0.4, 0.0) * extent),
            (rng.uniform(22, 28), rng.uniform(25, 32), rng.uniform(45, 60)),
        )
        for s in (-1, 1)
    ]
    spine_c, spine_r = (0.0, -0.62 * b_body), rng.uniform(16, 22)
    aorta_c, aorta_r = (rng.uniform(-5, 15), -0.35 * b_body), rng.uniform(9, 13)
    aorta_hu = rng.uniform(40, 180)  # from native to contrast-enhanced
    # lesions: centres inside the liver core, hypo- (70 %) or hyper-dense
    lesions = []
    for _ in range(int(rng.integers(2, 8))):
        u = rng.normal(size=3)
        u *= rng.uniform(0, 0.65) / np.linalg.norm(u)
        centre = tuple(c + ui * a for c, ui, a in zip(liver_c, u, liver_ax))
        radius = rng.uniform(8, 30)
        axes = tuple(radius * rng.uniform(0.75, 1.3, size=3))
        delta = rng.uniform(30, 60) * (-1 if rng.random() < 0.7 else 1)
        lesions.append((centre, axes, delta, _smooth_field(rng, n_waves=3, wavelength=(10.0, 30.0))))
    noise_sd = rng.uniform(8, 18)
    noise_seed = int(rng.integers(2**31))

    image = np.empty((size, size, num_slices), dtype=np.int16)
    label = np.zeros((size, size, num_slices), dtype=np.uint8)
    ndimage = require("scipy.ndimage", purpose="the embedded synthetic CT")
    noise_rng = np.random.default_rng(noise_seed)
    chunk = max(1, int(4_000_000 // (size * size)))  # bounded memory: a few slices at a time
    for k0 in range(0, num_slices, chunk):
        Z = zs[None, None, k0 : k0 + chunk]
        theta = np.arctan2(Y, X)
        scale = 1 + 0.04 * np.sin(Z / extent * np.pi)
        rho = 1 + sum(c * np.cos(k * theta + p) for k, c, p in body_shape)
        r_body = np.sqrt((X / (a_body * scale)) ** 2 + (Y / (b_body * scale)) ** 2) / rho
        inner = 1 - (fat_mm + muscle_mm) / b_body
        hu = np.full(r_body.shape, HU_AIR, dtype=np.float32)
        hu[r_body < 1] = HU_FAT
        hu[r_body < 1 - fat_mm / b_body] = HU_MUSCLE
        cavity = r_body < inner
        visceral = np.where(texture(X, Y, Z) > 0.25, HU_FAT + 10, HU_SOFT)
        hu = np.where(cavity, visceral, hu)

        for c, axes in kidneys:
            hu[_ellipsoid_radius(X, Y, Z, c, axes) < 1] = 150.0 if aorta_hu > 110 else 35.0
        hu[_ellipsoid_radius(X, Y, Z, spleen_c, spleen_ax) < 1] = liver_hu - 10
        r_spine = np.sqrt((X - spine_c[0]) ** 2 + (Y - spine_c[1]) ** 2)
        hu = np.where(r_spine < spine_r, HU_BONE, hu)
        hu = np.where(r_spine < spine_r - 3, HU_MARROW, hu)
        hu = np.where(np.sqrt((X - aorta_c[0]) ** 2 + (Y - aorta_c[1]) ** 2) < aorta_r, aorta_hu, hu)

        r_liver = _ellipsoid_radius(X, Y, Z, liver_c, liver_ax)
        liver = (r_liver < 1 + 0.18 * liver_field(X, Y, Z)) & cavity
        hu = np.where(liver, liver_hu, hu)
        lab = liver.astype(np.uint8)
        for centre, axes, delta, field in lesions:
            # evaluate each lesion only inside its bounding box (lesions are small against the slab)
            box = [np.nonzero(np.abs(np.ravel(c) - c0) < 1.3 * a)[0] for c, c0, a in zip((X, Y, Z), centre, axes)]
            if any(b.size == 0 for b in box):
                continue
            sl = tuple(slice(b[0], b[-1] + 1) for b in box)
            x, y, z = X[sl[0]], Y[:, sl[1]], Z[..., sl[2]]
            tumour = (_ellipsoid_radius(x, y, z, centre, axes) < 1 + 0.15 * field(x, y, z)) & liver[sl]
            hu[sl] = np.where(tumour, liver_hu + delta, hu[sl])
            lab[sl][tumour] = 2

        hu = ndimage.gaussian_filter(hu.astype(np.float32), sigma=(0.8, 0.8, 0), truncate=2.0)
        hu += noise_rng.normal(0, noise_sd, size=hu.shape).astype(np.float32) * (hu > -950)
        image[..., k0 : k0 + chunk] = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
        label[..., k0 : k0 + chunk] = lab
    return image, label, affine


def generate_synthetic_lits(
    out_dir: str,
    num_volumes: int = 10,
    size: int = 512,
    num_slices: Sequence[int] = (20, 60),
    seed: int = 0,
    ext: str = ".nii",
) -> list[dict]:
    """Write ``num_volumes`` synthetic CT volumes and labels into ``out_dir`` in the LiTS layout.

    Args:
        out_dir: destination folder (created when missing).
        num_volumes: number of volume / segmentation pairs, numbered from 0.
        size: in-plane size of the slices.
        num_slices: inclusive range of the slice count of a volume.
        seed: volume ``n`` is drawn from ``numpy.random.default_rng([seed, n])``.
        ext: ``".nii"`` (as LiTS ships) or ``".nii.gz"``.

    Returns:
        ``[{"image": path, "label": path}, ...]``.
    """
    os.makedirs(out_dir, exist_ok=True)
    pairs = []
    for n in range(num_volumes):
        rng = np.random.default_rng([seed, n])
        image, label, affine = synthetic_ct_volume(rng, size, int(rng.integers(num_slices[0], num_slices[1] + 1)))
        img_path = os.path.join(out_dir, f"volume-{n}{ext}")
        seg_path = os.path.join(out_dir, f"segmentation-{n}{ext}")
        for arr, path in ((image, img_path), (label, seg_path)):
            nii = nib.Nifti1Image(arr, affine)
            nii.header.set_xyzt_units("mm", "sec")
            nib.save(nii, path)
        pairs.append({"image": img_path, "label": seg_path})
    return pairs


def _has_volumes(folder: str) -> bool:
    return os.path.isdir(folder) and any(
        f.startswith("volume-") and f.endswith((".nii", ".nii.gz")) for f in os.listdir(folder)
    )


def ensure_synthetic_lits(dataset_dir: str, **kwargs) -> bool:
    """Generate the embedded dataset into ``dataset_dir`` unless it already holds LiTS volumes.

    Generation writes into a temporary folder next to ``dataset_dir`` and renames it into place (or, when
    ``dataset_dir`` exists with other files, moves each finished pair in, labels first), so an interrupted
    generation leaves no partial dataset. :data:`MARKER_FILENAME` records the arguments.

    Args:
        dataset_dir: the dataset folder.
        kwargs: arguments of :func:`generate_synthetic_lits`.

    Returns:
        True when data was generated, False when ``dataset_dir`` already held volumes.

    Raises:
        PermissionError: naming the folder, when it (or its parent) cannot be written.
    """
    if _has_volumes(dataset_dir):
        warn_if_generated_differently(dataset_dir, MARKER_FILENAME, kwargs)
        return False
    dataset_dir = os.path.abspath(dataset_dir)
    parent = os.path.dirname(dataset_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dataset_dir)}.tmp-", dir=parent)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset should be an ordinary folder
    except OSError as e:
        raise PermissionError(
            f"dataset_dir {dataset_dir!r} holds no LiTS volumes (volume-N.nii[.gz]) and the embedded synthetic data "
            f"cannot be generated there: {parent!r} is not writable ({e.strerror or e})."
        ) from e
    try:
        generate_synthetic_lits(tmp, **kwargs)
        with open(os.path.join(tmp, MARKER_FILENAME), "w") as f:
            json.dump({"generator": "monai_hyperconv.apps.liver.synthetic_ct", **kwargs}, f, indent=1)
        if os.path.isdir(dataset_dir) and os.listdir(dataset_dir):
            names = sorted(os.listdir(tmp), key=lambda n: (not n.startswith("segmentation-"), n))
            for name in names:  # labels first: a volume never appears without its label
                os.replace(os.path.join(tmp, name), os.path.join(dataset_dir, name))
            os.rmdir(tmp)
        else:
            if os.path.isdir(dataset_dir):
                os.rmdir(dataset_dir)
            os.replace(tmp, dataset_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True
