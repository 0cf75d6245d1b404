"""Slices of the three orthogonal planes of a channel-first 3D volume, padded to squares so they batch together.

A plane is named by the array axis it is perpendicular to: plane ``a`` holds the slices ``volume[..., i, ...]``
indexed along spatial axis ``a`` (0, 1, 2 = sagittal, coronal, axial for RAS-ordered ISBI volumes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.data import MetaTensor

__all__ = ["as_plain_tensor", "pad_to_square", "plane_slices", "square_slice_size", "unpad_square"]


def as_plain_tensor(x) -> torch.Tensor:
    """A plain tensor (no MONAI metadata: a 3D affine would mislead 2D transforms)."""
    return x.as_tensor() if isinstance(x, MetaTensor) else torch.as_tensor(x)


def plane_slices(volume: torch.Tensor, plane: int) -> torch.Tensor:
    """All slices of one plane of a channel-first 3D volume ``(C, H, W, D)`` as a batch ``(N, C, a, b)``."""
    return as_plain_tensor(volume).movedim(1 + plane, 0)


def pad_to_square(slices: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (centred) the last two dims of ``slices`` to ``size × size``; ``size`` must not be smaller."""
    h, w = slices.shape[-2:]
    if size < max(h, w):
        raise ValueError(f"slice_size {size} is smaller than the slice {h}×{w}; use at least {max(h, w)}.")
    ph, pw = size - h, size - w
    return F.pad(slices, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def unpad_square(slices: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The centred ``h × w`` part of padded ``slices``: the inverse of :func:`pad_to_square`."""
    top, left = (slices.shape[-2] - h) // 2, (slices.shape[-1] - w) // 2
    return slices[..., top : top + h, left : left + w]


def square_slice_size(spatial: Sequence[int], planes: Sequence[int], slice_size: int | None) -> int:
    """``slice_size``, or when None the largest in-plane size of a volume of shape ``spatial`` over ``planes``."""
    if slice_size is not None:
        return int(slice_size)
    return max(max(s for a, s in enumerate(spatial) if a != p) for p in planes)
