"""Figures of the kernel analysis and comparison reports (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from monai_hyperconv.analysis.smoothness import ConvKernel
from monai_hyperconv.utils.atomic import atomic_save_figure
from monai_hyperconv.utils.optional import require_pyplot

__all__ = ["kernel_image", "plot_kernel_grid", "plot_recapitulation", "plot_recapitulation_kernels", "sample_kernels"]


def kernel_image(kernel: torch.Tensor) -> np.ndarray:
    """A 2D picture of one kernel: 1D kernels as one row, 2D as they are, 3D as the middle slice of the last axis."""
    k = kernel.detach().float().cpu()
    if k.dim() == 1:
        k = k.unsqueeze(0)
    elif k.dim() == 3:
        k = k[..., k.shape[-1] // 2]
    elif k.dim() != 2:
        raise ValueError(f"expected a 1D, 2D or 3D kernel, got shape {tuple(kernel.shape)}.")
    return k.numpy()


def sample_kernels(conv: ConvKernel, n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """``n`` distinct kernels of a layer drawn at random (all of them when the layer has fewer), and their indices."""
    kernels = conv.kernels
    index = torch.randperm(kernels.shape[0], generator=generator)[: min(n, kernels.shape[0])].tolist()
    return kernels[index], index


def _fit_title(fig, title: str | None) -> None:
    """Put the title just above the axes whatever the figure's height (matplotlib's default margin is relative)."""
    height = fig.get_figheight()
    fig.subplots_adjust(top=1 - 0.45 / height, bottom=0.15 / height)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / height)


def _save(fig, path: str) -> str:
    return atomic_save_figure(fig, path, dpi=110, bbox_inches="tight")  # never leave a half-written figure


def plot_kernel_grid(
    convs: Sequence[ConvKernel],
    path: str,
    n_kernels: int = 8,
    seed: int = 0,
    scores: Mapping[str, float] | None = None,
    title: str | None = None,
) -> str:
    """A grid of ``n_kernels`` random kernels per layer (one row per layer), as the paper's Figure 10.

    Each kernel is drawn on its own symmetric colour scale (blue negative, red positive) so that its shape, not
    its magnitude, is visible. 3D kernels show their middle slice along the last axis.

    Args:
        convs: the layers to draw, top to bottom.
        path: the PNG to write.
        n_kernels: kernels per layer.
        seed: seed of the random choice of kernels.
        scores: optional smoothness per layer name, printed beside the row.
        title: figure title.
    """
    if not convs:
        raise ValueError("no convolution layer to plot.")
    generator = torch.Generator().manual_seed(seed)
    rows, cols = len(convs), n_kernels
    plt = require_pyplot("kernel analysis figures")
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 2.6, 1.1 * rows + 0.6), squeeze=False)
    for r, conv in enumerate(convs):
        kernels, index = sample_kernels(conv, n_kernels, generator)
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(index):
                ax.axis("off")
                continue
            image = kernel_image(kernels[c])
            vmax = float(np.abs(image).max()) or 1.0
            ax.imshow(image, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        label = f"{conv.name}\n{conv.kind} {'x'.join(map(str, conv.kernel_size))}"
        if scores is not None and conv.name in scores:
            label += f"\nlap={scores[conv.name]:.3g}"
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    _fit_title(fig, title)
    return _save(fig, path)


def plot_recapitulation(rows: Sequence[Mapping], path: str, title: str | None = None) -> str:
    """Per-layer fit error and smoothness of the recapitulating hyper-networks (the paper's Figure 11).

    Args:
        rows: rows of :func:`monai_hyperconv.analysis.recapitulation.recapitulate` (``layer``, ``n_l``,
            ``relative_error``, ``laplacian_target``, ``laplacian_fit``).
        path: the PNG to write.
    """
    if not rows:
        raise ValueError("no recapitulation result to plot.")
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    n_ls = sorted({int(r["n_l"]) for r in rows})
    x = np.arange(len(layers))
    plt = require_pyplot("kernel analysis figures")
    fig, (ax_err, ax_lap) = plt.subplots(1, 2, figsize=(max(8.0, 0.55 * len(layers) * 2), 4.0))
    by_key = {(r["layer"], int(r["n_l"])): r for r in rows}
    target = [by_key[(layer, n_ls[0])]["laplacian_target"] for layer in layers]
    ax_lap.plot(x, target, "k-o", label="learned regular kernels")
    for n_l in n_ls:
        err = [by_key[(layer, n_l)]["relative_error"] for layer in layers]
        lap = [by_key[(layer, n_l)]["laplacian_fit"] for layer in layers]
        ax_err.plot(x, err, "-o", label=f"N_L = {n_l}")
        ax_lap.plot(x, lap, "--s", label=f"hyper fit, N_L = {n_l}")
    ax_err.set_ylabel("relative L2 fit error  ||fit - K||² / ||K||²")
    ax_lap.set_ylabel("mean |Laplacian| (lower = smoother)")
    for ax in (ax_err, ax_lap):
        ax.set_xticks(x)
        ax.set_xticklabels(layers, rotation=70, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_err.set_ylim(bottom=0)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_recapitulation_kernels(
    convs: Sequence[ConvKernel],
    fits: Mapping[tuple[str, int], torch.Tensor],
    path: str,
    n_kernels: int = 4,
    seed: int = 0,
    title: str | None = None,
) -> str:
    """Learned kernels beside their hyper-network fits: per layer, one row of originals and one row per N_L.

    Args:
        convs: the recapitulated layers.
        fits: ``{(layer name, N_L): fitted weight}`` shaped like each layer's weight.
        path: the PNG to write.
        n_kernels: random kernels shown per layer (the same ones in every row of that layer).
        seed: seed of that draw.
    """
    n_ls = sorted({n_l for _, n_l in fits})
    convs = [c for c in convs if any((c.name, n_l) in fits for n_l in n_ls)]
    if not convs:
        raise ValueError("no fitted layer to plot.")
    generator = torch.Generator().manual_seed(seed)
    rows = len(convs) * (1 + len(n_ls))
    plt = require_pyplot("kernel analysis figures")
    fig, axes = plt.subplots(rows, n_kernels, figsize=(1.1 * n_kernels + 2.4, 1.0 * rows + 0.6), squeeze=False)
    for i, conv in enumerate(convs):
        _, index = sample_kernels(conv, n_kernels, generator)
        sources = [("learned", conv.kernels)] + [
            (f"N_L={n_l}", fits[(conv.name, n_l)].reshape(-1, *conv.kernel_size)) for n_l in n_ls
        ]
        for j, (label, kernels) in enumerate(sources):
            r = i * (1 + len(n_ls)) + j
            for c in range(n_kernels):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                if c >= len(index):
                    ax.axis("off")
                    continue
                # the fit is drawn on its original's colour scale, so differences in magnitude show
                vmax = float(np.abs(kernel_image(conv.kernels[index[c]])).max()) or 1.0
                image = kernel_image(kernels[index[c]])
                ax.imshow(image, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            name = f"{conv.name}\n{label}" if j == 0 else label
            axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    _fit_title(fig, title)
    return _save(fig, path)
