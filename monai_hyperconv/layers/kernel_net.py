"""The coordinate kernel network Φθ of a hyper-convolution.

Φθ maps every integer offset of the kernel grid (centre at the origin) to the ``out_features``
kernel weights at that offset. It is an MLP applied point-wise, the equivalent of the paper's
1×1 convolutions over the coordinate grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["CoordinateKernelNet", "kernel_grid", "kernel_net_parameter_count"]


def kernel_grid(kernel_size: Sequence[int]) -> torch.Tensor:
    """Integer offsets of a kernel grid, centre at 0, as a ``(prod(kernel_size), len(kernel_size))`` tensor.

    An odd size ``k`` gives ``-(k-1)/2 .. (k-1)/2``. An even size keeps integer offsets and puts 0 at index
    ``(k-1)//2``, the tap that torch's ``padding="same"`` aligns with the output pixel.
    """
    axes = [torch.arange(k, dtype=torch.float32) - (k - 1) // 2 for k in kernel_size]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1)


def kernel_net_parameter_count(spatial_dims: int, hidden_channels: Sequence[int], out_features: int) -> int:
    """Eq. 3 of the paper: ``(N_L+1)·out_features + Σ_j (N_j+1)·N_{j+1}`` with ``N_0 = spatial_dims``."""
    widths = [spatial_dims, *hidden_channels]
    hidden = sum((widths[j] + 1) * widths[j + 1] for j in range(len(widths) - 1))
    return hidden + (widths[-1] + 1) * out_features


class CoordinateKernelNet(nn.Module):
    """MLP from grid coordinates to kernel weights, with leaky ReLU between layers.

    Args:
        spatial_dims: number of coordinates per grid point (1, 2 or 3).
        out_features: kernel weights produced per grid point (``in_channels // groups * out_channels``).
        hidden_channels: widths of the hidden layers; the last entry is the paper's N_L.
        negative_slope: slope of the leaky ReLU (0.1 in the paper).
    """

    def __init__(
        self,
        spatial_dims: int,
        out_features: int,
        hidden_channels: Sequence[int] = (16, 16, 4),
        negative_slope: float = 0.1,
    ) -> None:
        super().__init__()
        hidden_channels = tuple(int(h) for h in hidden_channels)
        if not hidden_channels or min(hidden_channels) < 1:
            raise ValueError(f"hidden_channels must be a non-empty sequence of positive ints, got {hidden_channels}.")
        self.spatial_dims = spatial_dims
        self.out_features = out_features
        self.hidden_channels = hidden_channels
        self.negative_slope = negative_slope
        widths = [spatial_dims, *hidden_channels]
        self.hidden = nn.ModuleList(nn.Linear(widths[j], widths[j + 1]) for j in range(len(hidden_channels)))
        self.out = nn.Linear(hidden_channels[-1], out_features)

    def features(self, coords: torch.Tensor) -> torch.Tensor:
        """The N_L features of every grid point, ``(points, N_L)``."""
        h = coords
        for layer in self.hidden:
            h = nn.functional.leaky_relu(layer(h), self.negative_slope)
        return h

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Kernel weights as ``(out_features, points)``: each row is one (out, in) kernel, flattened."""
        h = self.features(coords)
        return torch.addmm(self.out.bias.unsqueeze(1), self.out.weight, h.t())

    @torch.no_grad()
    def reset_parameters(self, coords: torch.Tensor, target_std: float) -> None:
        """Initialise so that the generated kernels have the statistics of Kaiming-normal ones of std ``target_std``.

        The released code uses zero biases: a leaky-ReLU MLP without biases is positively homogeneous, so its
        centre tap is exactly 0 and magnitudes grow with the radius. Here the hidden biases are drawn from
        U(-1, 1) and the first layer's weights are divided by the grid radius, so every hidden unit bends
        somewhere inside the kernel whatever its size.

        Matching the weights' standard deviation is not enough: the N_L features share a large mean over the
        taps, so every generated kernel would carry a large constant (DC) part, and its response to a smooth or
        positive input (any ReLU output) would have up to ``taps`` times the variance of a regular kernel's,
        layer after layer (an untrained Hyper-UNet in eval mode then outputs ~1e8). So the output layer is drawn
        from N(0, 1), its bias cancels the features' mean over the taps and adds a kernel mean of standard
        deviation ``target_std / sqrt(taps)`` (that of i.i.d. weights), and both are rescaled so the kernels'
        standard deviation is exactly ``target_std``.
        """
        radius = float(coords.abs().max()) if coords.numel() else 0.0
        radius = max(radius, 1.0)
        for j, layer in enumerate(self.hidden):
            fan_in = layer.in_features
            bound = 1.0 / math.sqrt(fan_in) if j else 1.0 / radius
            nn.init.uniform_(layer.weight, -bound * math.sqrt(3), bound * math.sqrt(3))
            nn.init.uniform_(layer.bias, -1.0, 1.0)
        coords = coords.to(self.out.weight)
        taps = coords.shape[0]
        features = self.features(coords)
        mean_features = features.mean(dim=0)
        nn.init.normal_(self.out.weight)
        varying = self.out.weight @ (features - mean_features).t()  # each kernel's part that varies over the taps
        spread = varying.std() if varying.numel() > 1 else varying.new_zeros(())
        tiny = torch.finfo(spread.dtype).tiny
        self.out.weight.mul_(target_std * math.sqrt(1.0 - 1.0 / taps) / spread.clamp_min(tiny) if taps > 1 else 0.0)
        kernel_means = torch.randn_like(self.out.bias) * (target_std / math.sqrt(taps))
        self.out.bias.copy_(kernel_means - self.out.weight @ mean_features)
        kernel = self(coords)
        spread = kernel.std() if kernel.numel() > 1 else kernel.abs().reshape(())
        ratio = target_std / spread.clamp_min(tiny)
        self.out.weight.mul_(ratio)
        self.out.bias.mul_(ratio)
