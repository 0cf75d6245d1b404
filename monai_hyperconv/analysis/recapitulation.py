"""Recapitulation (the paper's Figure 11): can a small hyper-network reproduce learned regular kernels?

For each regular convolution layer, a fresh :class:`CoordinateKernelNet` with hidden widths ``(16, 16, N_L)`` is
fitted by L2 loss to generate all of the layer's learned kernels from their grid coordinates. A small fit error
at small N_L says the learned kernels lie close to the smooth family a hyper-network generates, i.e. that the
smoothness of hyper-kernels is not only a capacity limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from monai_hyperconv.analysis.smoothness import ConvKernel, conv_kernels, mean_abs_laplacian
from monai_hyperconv.layers.kernel_net import CoordinateKernelNet, kernel_grid

__all__ = ["KernelFit", "fit_kernel_net", "recapitulate"]


@dataclass
class KernelFit:
    """The result of :func:`fit_kernel_net`.

    Attributes:
        kernel_net: the fitted network.
        fitted: the kernels it generates, shaped like the target.
        losses: the L2 (mean squared error) loss at every step, before the update of that step.
        final_loss: the loss of ``fitted``.
    """

    kernel_net: CoordinateKernelNet
    fitted: torch.Tensor
    losses: list[float]
    final_loss: float


def fit_kernel_net(
    weight: torch.Tensor,
    hidden_channels: Sequence[int] = (16, 16, 8),
    steps: int = 1000,
    learning_rate: float = 1e-2,
    seed: int = 0,
) -> KernelFit:
    """Fit a fresh coordinate kernel network to generate ``weight`` by mean squared error (Adam).

    Args:
        weight: the target convolution weight, ``(out, in, *kernel_size)``.
        hidden_channels: hidden widths of the kernel network; the last is N_L.
        steps: Adam steps (full batch: the whole weight every step).
        learning_rate: Adam learning rate; decayed by a cosine schedule to 1% of it.
        seed: seed of the network's initialisation.
    """
    if weight.dim() < 3:
        raise ValueError(f"weight must be (out, in, *kernel_size), got shape {tuple(weight.shape)}.")
    target = weight.detach().float().cpu()
    spatial_dims = target.dim() - 2
    kernel_size = tuple(target.shape[2:])
    grid = kernel_grid(kernel_size)
    flat_target = target.reshape(-1, math.prod(kernel_size))  # (out * in, points), the network's output layout
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CoordinateKernelNet(spatial_dims, flat_target.shape[0], hidden_channels)
        net.reset_parameters(grid, target_std=float(flat_target.std()) if flat_target.numel() > 1 else 1.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1), eta_min=0.01 * learning_rate)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(net(grid), flat_target)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    with torch.no_grad():
        fitted = net(grid)
        final = float(nn.functional.mse_loss(fitted, flat_target))
    return KernelFit(net, fitted.reshape(target.shape), losses, final)


def recapitulate(
    model: nn.Module,
    n_ls: Sequence[int] = (8, 24),
    hidden: Sequence[int] = (16, 16),
    steps: int = 1000,
    learning_rate: float = 1e-2,
    seed: int = 0,
    keep_fits: bool = False,
) -> tuple[list[dict], dict[tuple[str, int], KernelFit]]:
    """Fit hyper-networks with each N_L to every regular convolution of ``model`` with a kernel of 3+ taps.

    Args:
        model: a trained network with regular convolutions (hyper-convolutions and 1×1 layers are skipped).
        n_ls: the N_L values to fit (the paper: 8 and 24).
        hidden: the hidden widths before N_L (the paper: 16, 16).
        steps, learning_rate, seed: see :func:`fit_kernel_net`.
        keep_fits: also return the fits (for figures); otherwise the second value is empty.

    Returns:
        Rows with ``layer``, ``kernel_size``, ``n_kernels``, ``n_l``, ``kernel_net_params``, ``regular_params``,
        ``initial_loss``, ``final_loss`` (MSE), ``relative_error`` (``||fit - K||² / ||K||²``),
        ``laplacian_target``, ``laplacian_fit`` (mean absolute Laplacian, the paper's measure) and their
        ``_rel`` scale-free versions; and ``{(layer, n_l): KernelFit}`` when ``keep_fits``.
    """
    convs: list[ConvKernel] = [c for c in conv_kernels(model) if c.kind == "regular" and c.has_laplacian]
    if not convs:
        raise ValueError("the model has no regular convolution with a kernel of 3 or more taps to recapitulate.")
    rows, fits = [], {}
    for conv in convs:
        target = conv.weight.float().cpu()
        power = float(target.pow(2).mean())
        lap_target = mean_abs_laplacian(conv.kernels.double(), conv.spatial_dims)
        lap_target_rel = mean_abs_laplacian(conv.kernels.double(), conv.spatial_dims, relative=True)
        for n_l in n_ls:
            fit = fit_kernel_net(target, (*hidden, int(n_l)), steps, learning_rate, seed)
            fitted = fit.fitted.reshape(-1, *conv.kernel_size).double()
            rows.append(
                {
                    "layer": conv.name,
                    "kernel_size": "x".join(map(str, conv.kernel_size)),
                    "n_kernels": conv.kernels.shape[0],
                    "n_l": int(n_l),
                    "kernel_net_params": sum(p.numel() for p in fit.kernel_net.parameters()),
                    "regular_params": conv.weight.numel(),
                    "initial_loss": fit.losses[0] if fit.losses else fit.final_loss,
                    "final_loss": fit.final_loss,
                    "relative_error": fit.final_loss / power if power > 0 else 0.0,
                    "laplacian_target": float(lap_target.mean()),
                    "laplacian_fit": float(mean_abs_laplacian(fitted, conv.spatial_dims).mean()),
                    "laplacian_target_rel": float(lap_target_rel.mean()),
                    "laplacian_fit_rel": float(mean_abs_laplacian(fitted, conv.spatial_dims, relative=True).mean()),
                }
            )
            if keep_fits:
                fits[(conv.name, int(n_l))] = fit
    return rows, fits
