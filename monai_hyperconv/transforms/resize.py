"""Resizing whose inverse interpolates, for predictions mapped back to the input grid."""

from __future__ import annotations

from monai.transforms import Resize, Resized
from monai.utils import TraceKeys

__all__ = ["SmoothInverseResize", "SmoothInverseResized"]

_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class SmoothInverseResize(Resize):
    """MONAI's ``Resize``, except that its inverse always interpolates linearly.

    Downsampling an input with ``mode="area"`` is right (every output pixel averages the pixels it covers), but
    MONAI inverts with the forward mode, and ``area`` upsampling copies each value into a block: probabilities
    mapped back to the input grid through ``Invertd`` come out blocky, and so do the lesion borders after the
    threshold. Here the inverse uses (bi/tri)linear interpolation (``align_corners=False``); the forward pass is
    unchanged.
    """

    def inverse_transform(self, data, transform):
        transform = dict(transform)
        extra = dict(transform[TraceKeys.EXTRA_INFO])
        extra["mode"] = _LINEAR_MODES[data.ndim - 1]
        extra["align_corners"] = False
        transform[TraceKeys.EXTRA_INFO] = extra
        return super().inverse_transform(data, transform)


class SmoothInverseResized(Resized):
    """Dictionary version of :class:`SmoothInverseResize` (the arguments of MONAI's ``Resized``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resizer = SmoothInverseResize(
            spatial_size=self.resizer.spatial_size, size_mode=self.resizer.size_mode, lazy=self.resizer.lazy
        )
