"""Kernel smoothness: the mean absolute discrete Laplacian of convolution kernels, per layer.

The paper (Ma et al. 2023, section "Kernel analysis") measures how smooth a learned kernel is by its mean
absolute second spatial derivative, the discrete Laplacian, reported per layer: lower is smoother.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from monai_hyperconv.layers.factories import REGULAR_CONV_TRANSPOSE_TYPES, REGULAR_CONV_TYPES
from monai_hyperconv.layers.hyperconv import HyperConvBase

__all__ = ["ConvKernel", "conv_kernels", "kernel_laplacian", "layer_smoothness", "mean_abs_laplacian"]


def _second_difference(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x[i+1] - 2 x[i] + x[i-1]`` along ``dim`` at the interior indices ``1 .. n-2``."""
    n = x.shape[dim]
    return x.narrow(dim, 2, n - 2) - 2 * x.narrow(dim, 1, n - 2) + x.narrow(dim, 0, n - 2)


def kernel_laplacian(kernels: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Discrete Laplacian of a batch of kernels on their interior taps.

    The Laplacian is the sum over spatial axes of the central second difference
    ``K[x+e] - 2 K[x] + K[x-e]`` (the 3-point stencil on a line, 5-point in 2D, 7-point in 3D), evaluated only on
    *interior* taps, i.e. taps whose neighbours along every differenced axis lie inside the kernel. No padding is
    used because any padding value invents taps the layer never had: zero padding charges every kernel for the
    step at its border (a constant kernel would score high), and replicate padding turns the border second
    difference into a first difference. Interior-only evaluation makes a constant (or any linear-ramp) kernel
    score exactly 0. The cost is that a 3×3 kernel is judged by its centre tap only (a 5×5 by its inner 3×3).

    Axes shorter than 3 taps have no central second difference and are left out of the sum (a ``3×1`` kernel is
    differenced along its long axis only). Taps are treated as unit-spaced whatever the layer's dilation.

    Args:
        kernels: ``(batch, *kernel_size)`` with ``spatial_dims`` trailing spatial axes.
        spatial_dims: number of trailing spatial axes.

    Returns:
        ``(batch, *interior)``: the Laplacian at interior taps.

    Raises:
        ValueError: when no spatial axis has 3 or more taps (e.g. 1×1 kernels), where there is no second derivative.
    """
    if kernels.dim() != spatial_dims + 1:
        raise ValueError(
            f"kernels must be (batch, *kernel_size) with {spatial_dims} spatial axes, got {tuple(kernels.shape)}."
        )
    axes = [kernels.dim() - spatial_dims + i for i in range(spatial_dims) if kernels.shape[-spatial_dims + i] >= 3]
    if not axes:
        raise ValueError(f"kernel size {tuple(kernels.shape[1:])} has no axis of 3 or more taps: no second derivative.")
    lap = None
    for axis in axes:
        term = _second_difference(kernels, axis)
        for other in axes:  # keep only taps that are interior along every differenced axis
            if other != axis:
                term = term.narrow(other, 1, kernels.shape[other] - 2)
        lap = term if lap is None else lap + term
    return lap


def mean_abs_laplacian(kernels: torch.Tensor, spatial_dims: int, relative: bool = False) -> torch.Tensor:
    """Per-kernel smoothness: the mean absolute :func:`kernel_laplacian` over interior taps; lower is smoother.

    Args:
        kernels: ``(batch, *kernel_size)``.
        spatial_dims: number of trailing spatial axes.
        relative: divide each kernel's score by its mean absolute weight. A convolution followed by batch norm is
            invariant to the scale of its kernel, so the raw score (the paper's) partly measures weight scale; the
            relative score compares shapes only. An all-zero kernel scores 0.

    Returns:
        ``(batch,)`` scores.
    """
    lap = kernel_laplacian(kernels, spatial_dims)
    score = lap.abs().flatten(1).mean(1)
    if relative:
        scale = kernels.abs().flatten(1).mean(1)
        score = torch.where(scale > 0, score / scale.clamp_min(torch.finfo(score.dtype).tiny), torch.zeros_like(score))
    return score


@dataclass
class ConvKernel:
    """One convolution layer of a network and its kernel.

    Attributes:
        name: the module's qualified name in the network.
        kind: ``"hyper"`` for a hyper-convolution, ``"regular"`` for a torch convolution, ``"transposed"`` for a
            torch transposed convolution.
        spatial_dims: 1, 2 or 3.
        weight: the (generated) weight, detached, as the layer's weight: ``(out, in // groups, *k)`` (transposed:
            ``(in, out // groups, *k)``).
        module: the layer itself.
    """

    name: str
    kind: str
    spatial_dims: int
    weight: torch.Tensor
    module: nn.Module

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return tuple(self.weight.shape[2:])

    @property
    def kernels(self) -> torch.Tensor:
        """Every 2-channel slice of the weight as a batch of kernels, ``(out * in // groups, *k)``."""
        return self.weight.reshape(-1, *self.kernel_size)

    @property
    def has_laplacian(self) -> bool:
        return max(self.kernel_size) >= 3


def conv_kernels(model: nn.Module) -> Iterator[ConvKernel]:
    """Every convolution of ``model`` in module order: hyper-convolutions and torch (transposed) convolutions.

    Hyper-convolution kernels are generated by their kernel network; ``model`` is not modified.
    """
    for name, module in model.named_modules():
        if isinstance(module, HyperConvBase):
            with torch.no_grad():
                weight = module.kernel().detach()
            yield ConvKernel(name, "hyper", module.spatial_dims, weight, module)
        elif isinstance(module, REGULAR_CONV_TYPES):
            kind = "transposed" if isinstance(module, REGULAR_CONV_TRANSPOSE_TYPES) else "regular"
            yield ConvKernel(name, kind, module.weight.dim() - 2, module.weight.detach(), module)


def layer_smoothness(model: nn.Module) -> list[dict]:
    """Per-layer smoothness of every convolution with a kernel axis of 3 or more taps (1×1 layers are skipped).

    Returns:
        One row per layer, in module order, with ``layer``, ``kind``, ``spatial_dims``, ``kernel_size`` (e.g.
        ``"5x5"``), ``dilation``, ``in_channels``, ``out_channels``, ``n_kernels``, ``mean_abs_laplacian`` (mean
        over the layer's kernels of :func:`mean_abs_laplacian`, the paper's measure), ``std_abs_laplacian``,
        ``mean_abs_laplacian_rel`` (scale-free, see :func:`mean_abs_laplacian`) and ``mean_abs_weight``.
    """
    rows = []
    for conv in conv_kernels(model):
        if not conv.has_laplacian:
            continue
        kernels = conv.kernels.double()
        score = mean_abs_laplacian(kernels, conv.spatial_dims)
        rel = mean_abs_laplacian(kernels, conv.spatial_dims, relative=True)
        module = conv.module
        rows.append(
            {
                "layer": conv.name,
                "kind": conv.kind,
                "spatial_dims": conv.spatial_dims,
                "kernel_size": "x".join(str(k) for k in conv.kernel_size),
                "dilation": "x".join(str(d) for d in module.dilation),
                "in_channels": module.in_channels,
                "out_channels": module.out_channels,
                "n_kernels": kernels.shape[0],
                "mean_abs_laplacian": float(score.mean()),
                "std_abs_laplacian": float(score.std()) if score.numel() > 1 else 0.0,
                "mean_abs_laplacian_rel": float(rel.mean()),
                "mean_abs_weight": float(kernels.abs().mean()),
            }
        )
    return rows
