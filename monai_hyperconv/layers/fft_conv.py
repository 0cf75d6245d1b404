"""Convolution through the FFT, for large kernels.

Direct convolution costs O(k^d) per output pixel, the FFT path O(log n): past a kernel size that depends
on the device and the number of spatial dimensions the FFT wins. The thresholds below were measured with
``benchmarks/layer_speed.py`` (see its docstring and the README's benchmark section).

Two forms:

- :func:`fft_conv`: any kernel ``(C_out, C_in/g, *k)``; the channel contraction is a batched matmul per frequency.
- :func:`basis_fft_conv`: a kernel that is a sum of M = N_L + 1 shared single-channel maps mixed by a matrix,
  ``W[o, i] = sum_m mix[o, i, m] h_m``, which is what a hyper-convolution generates (``h_m`` are its kernel
  network's N_L features and a constant map for the output bias). Then ``y = sum_m mix_m (h_m * x)``: M filterings
  by FFT and one 1x1 convolution, so the costly per-frequency ``C_in x C_out`` contraction disappears and the
  channel mixing is a dense product over the (much smaller) spatial grid instead of the padded spectrum.
  :func:`basis_fft_plan` picks the FFT sizes: with zero padding done by the FFT itself, a length
  ``n + max(pad)`` (not ``n + 2 pad``) is free of wrap-around, and taps that can never meet the input are cropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "FFT_MIN_KERNEL_SIZE",
    "BasisFFTPlan",
    "basis_fft_conv",
    "basis_fft_plan",
    "basis_spectrum",
    "block_operator",
    "cropped_irfftn",
    "fft_conv",
    "fft_conv_with_spectrum",
    "fft_plan",
    "fft_size",
    "kernel_spectrum",
    "use_fft",
]

# Smallest effective kernel extent (dilation * (k - 1) + 1, largest over dims) from which ``fft="auto"`` chooses the
# FFT path where the device type has no cost model for the pass and dims (``layers/path_cost.py``: on CPU that is
# 1D only; CUDA has none yet), per device type, pass and spatial dims. "train": the pass records gradients (forward +
# backward, the kernel regenerated each step); "eval": it does not (the kernel's spectrum is cached, so only the
# input's FFT is paid). CPU 2D / 3D: measured on the project's 2-core machine (torch 2.13.0+cpu, 2 threads) with
# ``benchmarks/layer_speed.py --only sweep [--sweep-train] [--sweep-dims 3]`` (2D: batch 4, 32 -> 32, 128^2;
# 3D: batch 1, 16 -> 16, 64^3) on the FFT path before its basis form, not re-measured since.
# 1D: not measured, a conservative guess.
# CUDA: not measured (no GPU was available); cuDNN's direct kernels are strong, so the values are conservative.
# Re-measure with ``benchmarks/gpu_check.py`` (which also calibrates the cost model) and edit this table.
FFT_MIN_KERNEL_SIZE: dict[str, dict[str, dict[int, int]]] = {
    "cpu": {"train": {1: 33, 2: 15, 3: 13}, "eval": {1: 33, 2: 9, 3: 7}},
    "cuda": {"train": {1: 65, 2: 23, 3: 13}, "eval": {1: 65, 2: 23, 3: 13}},
}


def use_fft(
    device_type: str,
    spatial_dims: int,
    effective_kernel_size: Sequence[int],
    stride: Sequence[int],
    training: bool = True,
) -> bool:
    """Whether ``fft="auto"`` picks the FFT path: stride 1 and a kernel at least the device's threshold for the pass
    (``training``: the pass records gradients)."""
    if any(s != 1 for s in stride):
        return False
    thresholds = FFT_MIN_KERNEL_SIZE.get(device_type, FFT_MIN_KERNEL_SIZE["cuda"])["train" if training else "eval"]
    threshold = thresholds.get(spatial_dims)
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


def fft_plan(padded_size: Sequence[int], extent: Sequence[int]) -> tuple[list[int], list[int]]:
    """FFT sizes and valid output sizes for a padded input and an effective (dilated) kernel extent.

    A circular correlation at least as long as the input has no wrap-around in its valid part.
    """
    out_size = [n - k + 1 for n, k in zip(padded_size, extent)]
    if min(out_size) < 1:
        raise ValueError(f"Kernel extent {tuple(extent)} is larger than the padded input {tuple(padded_size)}.")
    return [fft_size(n) for n in padded_size], out_size


def dilate_taps(maps: torch.Tensor, dilation: Sequence[int]) -> torch.Tensor:
    """Insert ``dilation - 1`` zeros between the taps of the trailing ``len(dilation)`` dims."""
    if all(d == 1 for d in dilation):
        return maps
    dims = len(dilation)
    size = [d * (k - 1) + 1 for k, d in zip(maps.shape[-dims:], dilation)]
    out = maps.new_zeros((*maps.shape[:-dims], *size))
    out[(..., *[slice(None, None, d) for d in dilation])] = maps
    return out


def block_operator(spec_real: torch.Tensor, spec_imag: torch.Tensor) -> torch.Tensor:
    """Real block matrix ``[[sr, si], [-si, sr]]`` of a complex multiplier ``S = sr + i si``: the complex product
    ``X @ S`` equals ``[xr | xi] @ block`` split into ``[real | imag]``. Real batched matmuls are much faster
    than complex ones on CPU, forward and backward (complex ``bmm`` with conjugated, transposed operands falls
    back to a per-matrix loop in its backward)."""
    top = torch.cat([spec_real, spec_imag], dim=-1)
    bottom = torch.cat([-spec_imag, spec_real], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def kernel_spectrum(weight: torch.Tensor, n_fft: Sequence[int], dilation: Sequence[int], groups: int) -> torch.Tensor:
    """Correlation operator of a kernel ``(C_out, C_in/g, *k)`` in the layout ``fft_conv_with_spectrum`` takes:
    the real block form (:func:`block_operator`) of its conjugate spectrum, ``(F * g, 2 C_in/g, 2 C_out/g)``."""
    dims = weight.dim() - 2
    out_channels, in_per_group = weight.shape[:2]
    spec = torch.fft.rfftn(dilate_taps(weight, dilation), s=n_fft, dim=tuple(range(2, 2 + dims))).conj()
    spec = spec.reshape(groups, out_channels // groups, in_per_group, -1).permute(3, 0, 2, 1)
    spec = spec.reshape(-1, in_per_group, out_channels // groups)
    return block_operator(spec.real, spec.imag)


def fft_conv_with_spectrum(
    x: torch.Tensor,
    operator: torch.Tensor,
    n_fft: Sequence[int],
    out_size: Sequence[int],
    stride: Sequence[int],
    bias: torch.Tensor | None,
    groups: int,
) -> torch.Tensor:
    """Valid cross-correlation of an already padded input with a kernel given by its correlation operator.

    Args:
        operator: ``(F * g, 2 C_in/g, 2 C_out/g)`` real block form of the kernel's conjugate spectrum, as
            :func:`kernel_spectrum` (or ``HyperConvNd.kernel_spectrum``) returns it.

    The channel contraction is one real batched matmul over frequencies:
    ``(F*g, N, 2 C_in/g) @ (F*g, 2 C_in/g, 2 C_out/g)``.
    """
    dims = len(n_fft)
    batch = x.shape[0]
    in_per_group, out_per_group = operator.shape[1] // 2, operator.shape[2] // 2
    fft_dims = tuple(range(2, 2 + dims))
    x_f = torch.view_as_real(torch.fft.rfftn(x, s=n_fft, dim=fft_dims))  # (N, C_in, *freq, 2)
    freq_shape = x_f.shape[2:-1]
    x_f = x_f.reshape(batch, groups, in_per_group, -1, 2).permute(3, 1, 0, 4, 2)  # (F, g, N, re/im, C_in/g)
    y_f = torch.bmm(x_f.reshape(-1, batch, 2 * in_per_group), operator)  # (F*g, N, [re | im] C_out/g)
    y_f = y_f.reshape(-1, groups, batch, 2, out_per_group).permute(2, 1, 4, 0, 3)  # (N, g, C_out/g, F, re/im)
    y_f = torch.view_as_complex(y_f.contiguous()).reshape(batch, groups * out_per_group, *freq_shape)
    y = torch.fft.irfftn(y_f, s=n_fft, dim=fft_dims)
    y = y[(slice(None), slice(None), *[slice(0, o, s) for o, s in zip(out_size, stride)])]
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * dims))
    return y.contiguous()


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
    pad = [p for pair in reversed(padding) for p in pair]
    if any(pad):
        x = F.pad(x, pad)
    extent = [d * (k - 1) + 1 for k, d in zip(weight.shape[2:], dilation)]
    n_fft, out_size = fft_plan(x.shape[2:], extent)
    spectrum = kernel_spectrum(weight, n_fft, dilation, groups)
    return fft_conv_with_spectrum(x, spectrum, n_fft, out_size, stride, bias, groups)


class BasisFFTPlan(NamedTuple):
    """Geometry of :func:`basis_fft_conv` for one input size (one entry per spatial dim).

    ``crop``: the ``[start, stop)`` range of the (dilated) kernel extent whose taps can meet the input; the others
    only ever multiply padding zeros. ``shift``: where the cropped kernel's first tap sits relative to the output
    pixel (the remaining leading padding). ``n_fft``: FFT lengths free of wrap-around. ``out_size``: stride-1
    output size.
    """

    crop: tuple[tuple[int, int], ...]
    shift: tuple[int, ...]
    n_fft: tuple[int, ...]
    out_size: tuple[int, ...]


def basis_fft_plan(size: Sequence[int], padding: Sequence[tuple[int, int]], extent: Sequence[int]) -> BasisFFTPlan:
    """Plan a zero-padded correlation of an input of ``size`` with a kernel of (dilated) ``extent``.

    Output ``i`` reads input ``i + p - before`` for kernel position ``p``. Positions outside
    ``[before - out + 1, before + size - 1]`` never meet the input and are cropped (exact). A circular correlation of
    length N is exact when the read indices that fall outside the input alias onto no input index, i.e.
    ``N >= size + before - start`` and ``N >= out + stop - 1 - before``; it also needs N >= out and N >= the cropped
    extent. The length is rounded up to a product of 2, 3 and 5 (:func:`fft_size`).
    """
    crop, shift, n_fft, out_size = [], [], [], []
    for n, (before, after), e in zip(size, padding, extent):
        out = n + before + after - e + 1
        if out < 1:
            raise ValueError(f"Kernel extent {tuple(extent)} is larger than the padded input of size {tuple(size)}.")
        start, stop = max(0, before - out + 1), min(e, before + n)  # never empty: out >= 1 and n >= 1
        need = max(n + before - start, out + stop - 1 - before, out, stop - start)
        crop.append((start, stop))
        shift.append(before - start)
        n_fft.append(fft_size(need))
        out_size.append(out)
    return BasisFFTPlan(tuple(crop), tuple(shift), tuple(n_fft), tuple(out_size))


def basis_spectrum(maps: torch.Tensor, plan: BasisFFTPlan) -> torch.Tensor:
    """Conjugate spectra of (dilated) kernel maps ``(M, *extent)`` placed for :func:`basis_fft_conv`, ``(M, *freq)``.

    The cropped maps are zero-padded to the FFT lengths and rolled so that the tap aligned with the output pixel
    sits at index 0; the conjugate turns the FFT's convolution into the correlation torch's conv computes.
    """
    dims = len(plan.n_fft)
    maps = maps[(slice(None), *[slice(a, b) for a, b in plan.crop])]
    pad = [p for (a, b), n in zip(reversed(plan.crop), reversed(plan.n_fft)) for p in (0, n - (b - a))]
    placed = torch.roll(F.pad(maps, pad), [-s for s in plan.shift], dims=tuple(range(1, 1 + dims)))
    return torch.fft.rfftn(placed, dim=tuple(range(1, 1 + dims))).conj()


def basis_fft_conv(
    x: torch.Tensor,
    spectrum: torch.Tensor,
    mix: torch.Tensor,
    bias: torch.Tensor | None,
    plan: BasisFFTPlan,
    stride: Sequence[int],
    groups: int,
) -> torch.Tensor:
    """Zero-padded cross-correlation with the kernel ``W[o, i] = sum_m mix[o, i, m] h_m``, through the FFT.

    Args:
        x: unpadded input ``(N, C_in, *size)`` (the padding is in ``plan``).
        spectrum: :func:`basis_spectrum` of the M maps ``h_m``, ``(M, *freq)``.
        mix: ``(C_out, C_in / groups, M)``.
        bias: ``(C_out,)`` or None.
        plan: :func:`basis_fft_plan` for this input size.
        stride, groups: as in torch.

    The product is computed in the frequency domain without forming the per-frequency ``C_in x C_out`` operator:
    ``Y[o] = sum_(i, m) mix[o, i, m] conj(H_m) X[i]``. With ``C_in <= C_out`` each input spectrum is filtered by the
    M maps and a real matrix ``(C_out, C_in M)`` mixes the real views of the results; otherwise the matrix
    ``(C_out M, C_in)`` mixes first and the M filtered results are summed, so the ``(N, C, M, freq)`` intermediate
    has the smaller channel count. ``C_in + C_out`` FFTs per sample either way.
    """
    dims = len(plan.n_fft)
    fft_dims = tuple(range(-dims, 0))
    batch = x.shape[0]
    out_channels, in_per_group, m = mix.shape
    out_per_group = out_channels // groups
    x_f = torch.fft.rfftn(x, s=plan.n_fft, dim=fft_dims)  # (N, C_in, *freq)
    freq = x_f.shape[2:]
    if in_per_group <= out_per_group:
        filtered = torch.view_as_real(x_f.unsqueeze(2) * spectrum)  # (N, C_in, M, *freq, 2)
        filtered = filtered.reshape(batch, groups, in_per_group * m, -1)
        y_f = torch.matmul(mix.reshape(groups, out_per_group, in_per_group * m), filtered)  # (N, g, C_out/g, .)
        y_f = torch.view_as_complex(y_f.reshape(batch, out_channels, *freq, 2))
    else:
        weight = mix.permute(0, 2, 1).reshape(groups, out_per_group * m, in_per_group)
        mixed = torch.matmul(weight, torch.view_as_real(x_f).reshape(batch, groups, in_per_group, -1))
        mixed = torch.view_as_complex(mixed.reshape(batch, out_channels, m, *freq, 2))
        y_f = (mixed * spectrum).sum(2)
    y = cropped_irfftn(y_f, plan.n_fft, [slice(0, o, s) for o, s in zip(plan.out_size, stride)])
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * dims))
    return y.contiguous()


def cropped_irfftn(spectrum: torch.Tensor, n_fft: Sequence[int], keep: Sequence[slice]) -> torch.Tensor:
    """``irfftn(spectrum, s=n_fft)`` over the trailing dims, restricted to the ``keep`` slice of each dim.

    One dim at a time, each cropped right after its inverse transform, so later transforms run on fewer rows.
    """
    dims = len(n_fft)
    for d in range(dims - 1):
        axis = d - dims
        spectrum = torch.fft.ifft(spectrum, n=n_fft[d], dim=axis)
        spectrum = spectrum[(..., keep[d], *([slice(None)] * (dims - 1 - d)))]
    return torch.fft.irfft(spectrum, n=n_fft[-1], dim=-1)[..., keep[-1]]
