"""Patch-wise dynamic convolution: the decoder layer of HyperSeg (Nirkin et al., CVPR 2021), whose weights come
from a hyper-network instead of being parameters."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PatchwiseDynamicConv"]


class PatchwiseDynamicConv(nn.Module):
    """Depth-wise k^d convolution whose kernel and bias differ per image and per patch, read from a weight signal.

    The weight signal ``(batch, channels * (k^d + 1), *grid)`` holds, for every cell of a coarse grid, one
    depth-wise kernel and one bias per channel. The input is divided into ``grid`` patches (the signal is
    nearest-upsampled to the input's size) and every patch is convolved with its own cell's weights, with zero
    "same" padding at the image borders. The layer has no parameters of its own.

    Args:
        spatial_dims: 1, 2 or 3.
        channels: input (= output) channels.
        kernel_size: odd kernel size.
    """

    def __init__(self, spatial_dims: int, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
        self.spatial_dims = spatial_dims
        self.channels = channels
        self.kernel_size = kernel_size
        # lists of lists, not tuples: TorchScript types them once for every spatial_dims
        self.offsets = [list(o) for o in itertools.product(range(kernel_size), repeat=spatial_dims)]

    @property
    def signal_channels(self) -> int:
        """Channels of the weight signal this layer reads: a kernel and a bias per channel."""
        return self.channels * (len(self.offsets) + 1)

    def _check_shapes(self, x: torch.Tensor, signal: torch.Tensor) -> None:
        if (
            x.dim() != self.spatial_dims + 2
            or x.shape[1] != self.channels
            or signal.shape[:2] != (x.shape[0], self.signal_channels)
            or signal.dim() != x.dim()
        ):
            raise ValueError(
                f"{type(self).__name__} expects input (batch, {self.channels}, *spatial) and weight signal "
                f"(batch, {self.signal_channels}, *grid), got {tuple(x.shape)} and {tuple(signal.shape)}."
            )

    def forward(self, x: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            self._check_shapes(x, signal)
        size = x.shape[2:]
        taps = len(self.offsets)
        weights = F.interpolate(signal, size=size, mode="nearest").unflatten(1, (self.channels, taps + 1))
        half = self.kernel_size // 2
        padded = F.pad(x, [half] * (2 * self.spatial_dims))
        out = weights[:, :, taps]  # the bias
        # One shifted copy of the input per tap keeps memory at one feature map per step.
        for t, offset in enumerate(self.offsets):
            window = padded
            for d, start in enumerate(offset):
                window = window.narrow(2 + d, start, size[d])
            out = out + window * weights[:, :, t]
        return out

    def extra_repr(self) -> str:
        return f"spatial_dims={self.spatial_dims}, channels={self.channels}, kernel_size={self.kernel_size}"
