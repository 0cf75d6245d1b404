"""Convolution through the FFT, for large kernels.

Direct convolution costs O(k^d) per output pixel, the FFT path O(log n): past a kernel size that depends
on the device and the number of spatial dimensions the FFT wins. The thresholds below were measured with
``benchmarks/layer_speed.py`` (see its docstring and the README's benchmark section).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["fft_conv", "fft_size", "use_fft", "FFT_MIN_KERNEL_SIZE"]

# Smallest effective kernel extent (dilation * (k - 1) + 1, largest over dims) from which the FFT path is
# chosen by ``fft="auto"``, per device type and spatial dims. CPU figures: measured on the project's
# 2-core CI machine (forward + backward, batch 4 / 32 -> 32 channels / 128^2 in 2D, batch 1 / 16 -> 16 / 64^3
# in 3D). CUDA figures are not measured here (no GPU was available): cuDNN's direct kernels are strong,
# so they are set conservatively high; re-measure with benchmarks/layer_speed.py --device cuda.
FFT_MIN_KERNEL_SIZE: dict[str, dict[int, int]] = {
    "cpu": {1: 33, 2: 13, 3: 9},
    "cuda": {1: 65, 2: 23, 3: 13},
}


def use_fft(device_type: str, spatial_dims: int, effective_kernel_size: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether ``fft="auto"`` picks the FFT path: stride 1 and a kernel at least the device's threshold."""
    if any(s != 1 for s in stride):
        return False
    threshold = FFT_MIN_KERNEL_SIZE.get(device_type, FFT_MIN_KERNEL_SIZE["cuda"]).get(spatial_dims)
    return threshold is not None and max(effective_kernel_size) >= threshold


def fft_size(n: int) -> int:
    """Smallest integer >= n whose only prime factors are 2, 3 and 5 (fast sizes for every FFT library)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p235 = p35
            while p235 < n:
                p235 *= 2
            best = min(best, p235)
            p35 *= 3
        p5 *= 5
    return best


def fft_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
) -> torch.Tensor:
    """Cross-correlation with the semantics of ``torch.nn.functional.conv{1,2,3}d``, computed by FFT.

    Args:
        x: input ``(N, C_in, *spatial)``.
        weight: kernel ``(C_out, C_in // groups, *kernel_size)``.
        bias: ``(C_out,)`` or None.
        stride, dilation: one int per spatial dim.
        padding: ``(before, after)`` zero padding per spatial dim.
        groups: channel groups, as in torch.
    """
    dims = weight.dim() - 2
    out_channels, in_per_group = weight.shape[:2]
    batch = x.shape[0]
    pad = [p for pair in reversed(padding) for p in pair]
    if any(pad):
        x = F.pad(x, pad)
    if any(d != 1 for d in dilation):
        dilated = weight.new_zeros(
            (out_channels, in_per_group, *[d * (k - 1) + 1 for k, d in zip(weight.shape[2:], dilation)])
        )
        dilated[(slice(None), slice(None), *[slice(None, None, d) for d in dilation])] = weight
        weight = dilated
    in_size = x.shape[2:]
    kernel_size = weight.shape[2:]
    out_size = [n - k + 1 for n, k in zip(in_size, kernel_size)]
    if min(out_size) < 1:
        raise ValueError(f"Kernel extent {tuple(kernel_size)} is larger than the padded input {tuple(in_size)}.")
    # Circular correlation of length >= input length has no wrap-around in the valid part.
    n_fft = [fft_size(n) for n in in_size]
    fft_dims = tuple(range(2, 2 + dims))
    x_f = torch.fft.rfftn(x, s=n_fft, dim=fft_dims)
    w_f = torch.fft.rfftn(weight, s=n_fft, dim=fft_dims).conj()
    freq_shape = x_f.shape[2:]
    # Channel contraction as one batched complex matmul over frequencies: (F, g, N, Cin/g) @ (F, g, Cin/g, Cout/g).
    x_f = x_f.reshape(batch, groups, in_per_group, -1).permute(3, 1, 0, 2)
    w_f = w_f.reshape(groups, out_channels // groups, in_per_group, -1).permute(3, 0, 2, 1)
    y_f = torch.matmul(x_f, w_f).permute(2, 1, 3, 0).reshape(batch, out_channels, *freq_shape)
    y = torch.fft.irfftn(y_f, s=n_fft, dim=fft_dims)
    y = y[(slice(None), slice(None), *[slice(0, o, s) for o, s in zip(out_size, stride)])]
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * dims))
    return y.contiguous()
