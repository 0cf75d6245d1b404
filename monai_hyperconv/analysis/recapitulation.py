"""Recapitulation (the paper's Figure 11): can a small hyper-network reproduce learned regular kernels?

For each regular convolution layer, a fresh :class:`CoordinateKernelNet` with hidden widths ``(16, 16, N_L)`` is
fitted by L2 loss to generate all of the layer's learned kernels from their grid coordinates
(:func:`monai_hyperconv.layers.kernel_fit.fit_kernel_net`: least squares for the output layer, then Adam on the
hidden layers with the output layer solved again after every step). A small fit error
at small N_L says the learned kernels lie close to the smooth family a hyper-network generates, i.e. that the
smoothness of hyper-kernels is not only a capacity limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from monai_hyperconv.analysis.smoothness import ConvKernel, conv_kernels, mean_abs_laplacian
from monai_hyperconv.layers.kernel_fit import KernelFit, fit_kernel_net

__all__ = ["KernelFit", "fit_kernel_net", "recapitulate"]


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
        ``initial_loss`` (MSE of the freshly initialised network), ``final_loss`` (MSE of the fit), ``relative_error`` (``||fit - K||² / ||K||²``),
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
                    "initial_loss": fit.initial_loss,
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
