"""Loading of CS-MRI items: a T1 file (2D slice or 3D volume) as a channel-first 2D slice in [0, 1].

The bundle then resizes it, copies it to the target ``label`` and replaces ``image`` by its zero-filled
reconstruction (:class:`~monai_hyperconv.transforms.kspace.PoissonUndersampled`).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.engines import PrepareBatchExtraInput, default_prepare_batch
from monai.transforms import LoadImage, MapTransform, Orientation, ScaleIntensityRangePercentiles
from monai.utils import ImageMetaKey

from monai_hyperconv.apps.csmri.discovery import mri_spatial_shape
from monai_hyperconv.transforms.validation import check_finite, check_not_constant, check_real_valued
from monai_hyperconv.utils.files import require_files
from monai_hyperconv.utils.flags import as_bool

__all__ = ["LoadMRISliced", "axial_slice_index", "undersampling_probability", "with_slice_indices"]


def axial_slice_index(fraction: float, axial_size: int) -> int:
    """Index of the axial slice at ``fraction`` (0..1) of an axial extent of ``axial_size`` slices."""
    return round(float(fraction) * (int(axial_size) - 1))


def with_slice_indices(items: Sequence[Mapping], key: str = "image", slice_key: str = "slice") -> list[dict]:
    """``items`` with the ``patch_index`` that :class:`LoadMRISliced` will give each slice of a 3D volume, read
    from the NIfTI headers (the axial extent after RAS reorientation), so that output names can be checked before
    anything is loaded or written (:func:`~monai_hyperconv.utils.outputs.check_planned_outputs`)."""
    out = []
    for item in items:
        fraction = float(item.get(slice_key, -1.0))
        if fraction < 0:
            out.append(dict(item))
            continue
        header = nib.load(os.fspath(item[key]))
        codes = nib.orientations.aff2axcodes(header.affine)
        axial = next(i for i, c in enumerate(codes) if c in ("S", "I"))
        out.append({**item, "patch_index": axial_slice_index(fraction, header.shape[axial])})
    return out


class LoadMRISliced(MapTransform):
    """Load a T1 item as a channel-first 2D slice ``(1, H, W)`` with intensities in [0, 1].

    A 2D file (``(H, W)`` or ``(H, W, 1)``) is read as is; a 3D volume is reoriented to RAS and its axial slice at
    fraction ``data[slice_key]`` of the axial extent is taken (the slice index is stored as the ``patch_index``
    metadata, so that saved outputs of several slices of one volume get distinct names). Intensities are scaled
    per volume (per slice for 2D files) from the minimum to the ``upper`` percentile, then clipped to [0, 1].

    Args:
        keys: keys holding file paths (or arrays).
        slice_key: key of the axial slice fraction (-1 or missing for 2D files).
        upper: upper percentile mapped to 1 (robust to a few bright voxels).
        square_pixels: resample the slice along its coarser in-plane axis to the finer pixel spacing of its affine
            (e.g. a 2 x 3 mm axial slice of a coronal scan to 2 x 2 mm), so that anatomy keeps its proportions.
        allow_missing_keys: do not raise when a key is missing.

    Raises:
        ValueError: naming the file when it is not 2D / 3D (a 4D series), complex-valued, holds NaN / infinite
            values, or when the slice holds one value everywhere (an all-zero slice has no PSNR).
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        slice_key: str = "slice",
        upper: float = 99.5,
        square_pixels: bool | str = False,
        allow_missing_keys=False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slice_key = slice_key
        self.square_pixels = as_bool(square_pixels, "square_pixels")
        self.loader = LoadImage(image_only=True)
        self.orient = Orientation(axcodes="RAS", labels=None)  # labels from the (RAS) space of the MetaTensor
        self.scale = ScaleIntensityRangePercentiles(lower=0.0, upper=upper, b_min=0.0, b_max=1.0, clip=True)
        self._last: tuple[str, MetaTensor] | None = None  # consecutive slices of one volume: read it once

    def _load(self, path) -> MetaTensor:
        if not isinstance(path, (str, os.PathLike)):
            img = MetaTensor(torch.as_tensor(np.asarray(path), dtype=torch.float32))
            img.meta[ImageMetaKey.FILENAME_OR_OBJ] = "<in-memory array>"
            return img
        path = os.fspath(path)
        last = self._last  # read once: CacheDataset may call this from several threads
        if last is not None and last[0] == path:
            return last[1]
        require_files([path], "T1 image")
        check_real_valued(path)
        try:
            img = self.loader(path)
        except Exception as e:  # e.g. a bare EOFError for a truncated .nii.gz: name the file
            raise ValueError(
                f"{path}: cannot be read ({type(e).__name__}: {e}); expected a complete NIfTI file."
            ) from e
        self._last = (path, img)
        return img

    def slice_of(self, path, fraction: float = -1.0) -> MetaTensor:
        """The scaled 2D slice ``(1, H, W)`` of one file (see the class docstring)."""
        img = self._load(path)
        source = str(img.meta.get(ImageMetaKey.FILENAME_OR_OBJ, path))
        data = img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)
        spatial = mri_spatial_shape(data.shape, source)
        check_finite(data, source, "image")
        data = data.float().reshape(spatial)
        affine = torch.as_tensor(img.affine if isinstance(img, MetaTensor) else np.eye(4), dtype=torch.float64)
        meta = {ImageMetaKey.FILENAME_OR_OBJ: source}
        if len(spatial) == 3:
            if not 0.0 <= float(fraction) <= 1.0:
                raise ValueError(f"{source} is a 3D volume: expected a slice fraction in [0, 1], got {fraction}.")
            vol = self.orient(MetaTensor(data[None], affine=affine))
            vol = self.scale(vol)
            k = axial_slice_index(fraction, vol.shape[-1])
            affine = vol.affine.clone()
            affine[:3, 3] += affine[:3, 2] * k
            data, meta[ImageMetaKey.PATCH_INDEX] = vol.as_tensor()[..., k], k
            check_not_constant(data, [f"{source} (axial slice {k})"])
        else:
            check_not_constant(data[None], [source])
            data = self.scale(data[None])
            data = data.as_tensor() if isinstance(data, MetaTensor) else data
        if self.square_pixels:
            data, affine = _square_pixels(data, affine)
        # what LoadImage records, so that writers (SaveImage) and inverses find the slice's own geometry
        meta.update(
            {
                "original_affine": affine.clone(),
                ImageMetaKey.SPATIAL_SHAPE: np.asarray(data.shape[1:]),
                "original_channel_dim": "no_channel",
                "space": "RAS",
            }
        )
        return MetaTensor(data.float(), affine=affine, meta=meta)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        fraction = float(d.get(self.slice_key, -1.0))
        for key in self.key_iterator(d):
            d[key] = self.slice_of(d[key], fraction)
        return d


def _square_pixels(data: torch.Tensor, affine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample a ``(1, H, W)`` slice so that both in-plane pixel spacings of ``affine`` equal the finer one."""
    spacing = torch.linalg.norm(affine[:3, :2], dim=0)
    finest = float(spacing.min())
    if finest <= 0 or float(spacing.max()) <= finest * 1.01:
        return data, affine
    size = [round((n - 1) * float(s) / finest) + 1 for n, s in zip(data.shape[1:], spacing)]  # same extent
    out = torch.nn.functional.interpolate(data[None].float(), size=size, mode="bilinear", align_corners=True)[0]
    affine = affine.clone()
    for axis, (n, m) in enumerate(zip(data.shape[1:], size)):
        affine[:3, axis] *= (n - 1) / max(m - 1, 1)
    return out, affine


def undersampling_probability(undersample_input: bool | str) -> float:
    """``prob`` of the inference ``PoissonUndersampled``: 1 when inputs are fully sampled and are under-sampled
    retrospectively as in training, 0 when they are zero-filled reconstructions already.

    Args:
        undersample_input: the bundle's ``undersample_input`` flag (YAML or command-line string).

    Raises:
        ValueError: naming ``undersample_input`` when it is not a flag.
    """
    return 1.0 if as_bool(undersample_input, "undersample_input") else 0.0


def check_measured_kspace(data_consistency: bool | str, undersample_input: bool | str) -> None:
    """Refuse inference with a data-consistency model on inputs that are zero-filled already: their measured k-space
    is lost (a magnitude image keeps no phase), so the model would run without the step it was trained with.

    Raises:
        ValueError: naming both flags and the ways out.
    """
    if as_bool(data_consistency, "data_consistency") and not as_bool(undersample_input, "undersample_input"):
        raise ValueError(
            "data_consistency needs the measured k-space, which zero-filled inputs (undersample_input false) do not "
            "keep; expected fully sampled inputs (--undersample_input true), or --data_consistency false to run the "
            "network without it."
        )


def measurement_prepare_batch(data_consistency: bool | str):
    """The trainer's and evaluators' ``prepare_batch``: MONAI's ``PrepareBatchExtraInput`` passing the batch's
    ``kspace`` and ``mask`` (stored by ``PoissonUndersampled(store_measurement=True)``) to a
    data-consistency network as keyword arguments; MONAI's ``default_prepare_batch`` without data consistency."""
    if as_bool(data_consistency, "data_consistency"):
        return PrepareBatchExtraInput({"kspace": "kspace", "mask": "mask"})
    return default_prepare_batch
