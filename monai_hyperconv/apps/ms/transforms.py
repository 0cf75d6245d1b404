"""Transforms of the MS lesion task (ISBI 2015 layout); the three-plane inferer is in :mod:`.inferer`.

The paper trains a 2D multi-branch network on slices of all three orthogonal planes of each 3D volume and, at
test time, predicts every slice of every plane and fuses the three probability volumes into one 3D mask:

- :class:`CheckISBIFilesd` checks the NIfTI headers of the four contrasts and two rater masks before loading
  (same 3D shape), so that a bad file is named before anything is computed;
- :class:`GoldStandardd` turns the two raters' masks into the gold standard (their intersection);
- :class:`RandOrthogonalSliced` (training) and :class:`OrthogonalSliced` (validation) cut a channel-first 3D
  volume into 2D slices of the three planes, padded to one square ``slice_size`` so they batch together;
- :class:`~.inferer.OrthogonalPlaneInferer` predicts all slices of each plane of a 3D batch and averages the planes'
  probabilities (the fusion); the output has the input's spatial shape.

Planes are named as in :mod:`.planes` (the slicing helpers).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable
from monai.transforms.traits import MultiSampleTrait

from monai_hyperconv.apps.ms.isbi import gold_standard
from monai_hyperconv.apps.ms.planes import as_plain_tensor, pad_to_square, square_slice_size
from monai_hyperconv.transforms.validation import check_same_affine
from monai_hyperconv.utils.files import source_name

__all__ = [
    "CheckISBIFilesd",
    "GoldStandardd",
    "OrthogonalSliced",
    "RandOrthogonalSliced",
]


def _paths(value) -> list[str]:
    return [os.fspath(v) for v in value] if isinstance(value, (list, tuple)) else [os.fspath(value)]


class CheckISBIFilesd(MapTransform):
    """Check, from the NIfTI headers only, that every file of an entry exists and all share one 3D grid: the same
    shape and the same voxel-to-world matrix (within :data:`~monai_hyperconv.transforms.validation.AFFINE_TOLERANCE_MM`).

    Place it first, on the datalist entry of :func:`monai_hyperconv.apps.ms.isbi.find_isbi_images`.

    Args:
        keys: keys holding a path or a list of paths (``"image"`` with the four contrasts, ``"mask1"``,
            ``"mask2"``); missing keys are allowed (test subjects have no masks).

    Raises:
        FileNotFoundError: naming a missing file.
        ValueError: naming the file whose shape or affine differs from the first image, with both shapes (or the
            origin shift in mm and both voxel sizes).
    """

    def __init__(self, keys: KeysCollection = ("image", "mask1", "mask2"), allow_missing_keys: bool = True) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        reference = None
        for key in self.key_iterator(d):
            for path in _paths(d[key]):
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"Missing {key} file: {path!r} does not exist.")
                try:
                    header = nib.load(path)
                    shape, affine = tuple(int(s) for s in header.shape), header.affine
                except Exception as e:
                    raise ValueError(f"{path}: cannot read the NIfTI header ({e}); expected a 3D NIfTI volume.") from e
                # ISBI masks are sometimes stored with a trailing singleton dimension
                while len(shape) > 3 and shape[-1] == 1:
                    shape = shape[:-1]
                if len(shape) != 3:
                    raise ValueError(f"{path}: '{key}' has shape {shape}; expected a 3D volume.")
                if reference is None:
                    reference = (path, shape, affine)
                    continue
                if shape != reference[1]:
                    raise ValueError(
                        f"Shape mismatch: {path} ('{key}') has shape {shape} but {reference[0]} has {reference[1]}; "
                        "all contrasts and rater masks of a time point must share one grid."
                    )
                check_same_affine(reference[2], affine, reference[0], path)
        return d


class GoldStandardd(MapTransform):
    """Gold standard = intersection of the two raters' masks, stored under ``label_key``.

    Args:
        keys: the two rater mask keys (channel-first tensors from ``LoadImaged`` + ``EnsureChannelFirstd``).
        label_key: output key; it keeps the metadata (affine, file name) of the first mask.
        image_key: when present, the label must have the image's spatial shape.
        remove_masks: drop the rater keys afterwards.

    Raises:
        ValueError: naming the files when the shapes differ or a mask is not binary (0 / 1).
    """

    def __init__(
        self,
        keys: KeysCollection = ("mask1", "mask2"),
        label_key: str = "label",
        image_key: str | None = "image",
        remove_masks: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"GoldStandardd expects the two rater keys, got {self.keys}.")
        self.label_key = label_key
        self.image_key = image_key
        self.remove_masks = remove_masks

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        if self.allow_missing_keys and not all(k in d for k in self.keys):
            return d
        m1, m2 = (d[k] for k in self.keys)
        s1, s2 = source_name(m1, str(self.keys[0])), source_name(m2, str(self.keys[1]))
        for mask, src in ((m1, s1), (m2, s2)):
            values = torch.unique(torch.as_tensor(mask))
            if not bool(((values == 0) | (values == 1)).all()):
                raise ValueError(f"{src}: rater mask holds values {values[:10].tolist()}; expected binary 0 / 1.")
        label = torch.from_numpy(gold_standard(np.asarray(m1), np.asarray(m2), s1, s2))
        if self.image_key is not None and self.image_key in d:
            image = d[self.image_key]
            if tuple(image.shape[1:]) != tuple(label.shape[1:]):
                raise ValueError(
                    f"Shape mismatch: rater masks {s1} have spatial shape {tuple(label.shape[1:])} but the image "
                    f"{source_name(image)} has {tuple(image.shape[1:])}; expected the same."
                )
        d[self.label_key] = (
            MetaTensor(label, meta=dict(getattr(m1, "meta", {}))) if isinstance(m1, MetaTensor) else label
        )
        if self.remove_masks:
            for k in self.keys:
                d.pop(k)
        return d


class _SliceBase(MapTransform):
    def __init__(
        self,
        keys: KeysCollection,
        planes: Sequence[int],
        slice_size: int | None,
        allow_missing_keys: bool,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.planes = tuple(int(p) for p in planes)
        if not self.planes or any(p not in (0, 1, 2) for p in self.planes):
            raise ValueError(f"planes must be a non-empty subset of (0, 1, 2), got {planes}.")
        self.slice_size = slice_size

    def _check(self, d: Mapping) -> tuple[int, ...]:
        spatial = None
        for key in self.key_iterator(d):
            shape = tuple(d[key].shape)
            if len(shape) != 4:
                raise ValueError(f"'{key}' of {source_name(d[key])} has shape {shape}; expected (C, H, W, D).")
            if spatial is None:
                spatial = shape[1:]
            elif shape[1:] != spatial:
                raise ValueError(f"'{key}' has spatial shape {shape[1:]} but the first key has {spatial}.")
        return spatial

    def _sample(self, d: Mapping, plane: int, index: int, size: int) -> dict:
        out = {k: v for k, v in d.items() if k not in self.keys}
        for key in self.key_iterator(d):
            sl = as_plain_tensor(d[key]).select(1 + plane, index)  # (C, a, b)
            out[key] = pad_to_square(sl, size)
        out["plane"], out["slice_index"] = plane, index
        return out


def _foreground(volume: torch.Tensor, plane: int) -> np.ndarray:
    """Indices of the slices of ``plane`` holding any non-zero voxel (brain after z-scoring within it)."""
    dims = tuple(a for a in range(volume.ndim) if a != 1 + plane)
    return np.flatnonzero(as_plain_tensor(volume).ne(0).any(dim=dims).cpu().numpy())


class RandOrthogonalSliced(Randomizable, _SliceBase, MultiSampleTrait):
    """Random 2D training slices from the three orthogonal planes of a 3D volume.

    Each of the ``num_samples`` samples picks a plane uniformly, then, with probability ``pos_fraction``, a slice
    holding label foreground (when that plane has one) and otherwise any slice holding image foreground (the
    brain). Slices are zero-padded to ``slice_size × slice_size``; the samples carry ``plane`` and
    ``slice_index``.

    Args:
        keys: channel-first 3D tensors to slice together (``("image", "label")``).
        label_key: key of the lesion label used for positive slices.
        num_samples: slices per volume per call.
        pos_fraction: probability of a slice through a lesion.
        planes: planes to sample from.
        slice_size: side of the square slices; None uses the largest in-plane size of the volume.
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        label_key: str = "label",
        num_samples: int = 8,
        pos_fraction: float = 0.5,
        planes: Sequence[int] = (0, 1, 2),
        slice_size: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        _SliceBase.__init__(self, keys, planes, slice_size, allow_missing_keys)
        if num_samples < 1 or not 0 <= pos_fraction <= 1:
            raise ValueError(f"num_samples must be >= 1 and pos_fraction in [0, 1], got {num_samples}, {pos_fraction}.")
        self.label_key = label_key
        self.num_samples = int(num_samples)
        self.pos_fraction = float(pos_fraction)

    def randomize(self, data=None) -> None:
        pass  # the draws depend on the volume: made in __call__ from self.R

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> list[dict]:
        d = dict(data)
        spatial = self._check(d)
        size = square_slice_size(spatial, self.planes, self.slice_size)
        image_key = next(k for k in self.keys if k != self.label_key)
        samples = []
        for _ in range(self.num_samples):
            plane = int(self.R.choice(self.planes))
            candidates = np.array([], dtype=int)
            if self.label_key in d and self.R.rand() < self.pos_fraction:
                candidates = _foreground(d[self.label_key], plane)
            if candidates.size == 0:
                candidates = _foreground(d[image_key], plane)
            if candidates.size == 0:
                candidates = np.arange(spatial[plane])
            samples.append(self._sample(d, plane, int(self.R.choice(candidates)), size))
        return samples


class OrthogonalSliced(_SliceBase, MultiSampleTrait):
    """Every ``stride``-th slice holding image foreground, of each plane, as a list of 2D samples (validation).

    Args:
        keys: channel-first 3D tensors to slice together; the first one decides the foreground slices.
        stride: keep every ``stride``-th foreground slice of each plane.
        planes, slice_size: as in :class:`RandOrthogonalSliced`.
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        stride: int = 1,
        planes: Sequence[int] = (0, 1, 2),
        slice_size: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, planes, slice_size, allow_missing_keys)
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}.")
        self.stride = int(stride)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> list[dict]:
        d = dict(data)
        spatial = self._check(d)
        size = square_slice_size(spatial, self.planes, self.slice_size)
        first = d[self.keys[0]]
        samples = []
        for plane in self.planes:
            indices = _foreground(first, plane)
            if indices.size == 0:
                indices = np.arange(spatial[plane])
            samples += [self._sample(d, plane, int(i), size) for i in indices[:: self.stride]]
        return samples
