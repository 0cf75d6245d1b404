"""The analysis commands behind ``python -m monai_hyperconv.analysis``: kernel smoothness and recapitulation."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from monai_hyperconv.analysis.checkpoint import load_bundle_network
from monai_hyperconv.analysis.plots import plot_kernel_grid, plot_recapitulation, plot_recapitulation_kernels
from monai_hyperconv.analysis.recapitulation import recapitulate
from monai_hyperconv.analysis.reports import write_csv
from monai_hyperconv.analysis.smoothness import conv_kernels, layer_smoothness

__all__ = ["analyze_kernels", "analyze_recapitulation"]


def _as_tuple(value: Any) -> tuple[int, ...]:
    """``8``, ``"8,24"``, ``(8, 24)`` or ``[8, 24]`` as a tuple of ints (fire passes any of these)."""
    if isinstance(value, str):
        value = [v for v in value.strip("()[] ").split(",") if v.strip()]
    if isinstance(value, (int, float)):
        value = [value]
    return tuple(int(v) for v in value)


def analyze_kernels(
    config_file: str | Sequence[str],
    checkpoint: str,
    output_dir: str,
    n_kernels: int = 8,
    seed: int = 0,
    network_id: str = "network_def",
    prefix: str = "kernels",
    **override: Any,
) -> dict[str, str]:
    """Per-layer smoothness (CSV) and a grid of random kernels per layer (PNG) of a trained bundle network.

    Args:
        config_file: the bundle config(s) the network was trained with (a file, a list, or comma-separated),
            e.g. ``['bundles/liver_lesion_seg/configs/train.yaml', 'configs/networks/hyper_unet_5x5.yaml']``.
        checkpoint: the weights, e.g. the bundle's ``models/model.pt``.
        output_dir: where ``{prefix}_smoothness.csv`` and ``{prefix}_grid.png`` go.
        n_kernels: random kernels drawn per layer in the figure (the paper: 8).
        seed: seed of that draw.
        network_id: id of the network definition in the config.
        override: config overrides used at training time (e.g. ``spatial_dims=3``).

    Returns:
        ``{"csv": path, "png": path}``.
    """
    network = load_bundle_network(config_file, checkpoint, network_id=network_id, **override)
    rows = layer_smoothness(network)
    if not rows:
        raise ValueError(f"the network of {config_file!r} has no convolution with a kernel of 3 or more taps.")
    csv_path = write_csv(rows, os.path.join(output_dir, f"{prefix}_smoothness.csv"))
    convs = [c for c in conv_kernels(network) if c.has_laplacian]
    scores = {r["layer"]: r["mean_abs_laplacian"] for r in rows}
    title = f"{n_kernels} random kernels per layer: {os.path.basename(str(checkpoint))}"
    png_path = plot_kernel_grid(convs, os.path.join(output_dir, f"{prefix}_grid.png"), n_kernels, seed, scores, title)
    return {"csv": csv_path, "png": png_path}


def analyze_recapitulation(
    config_file: str | Sequence[str],
    checkpoint: str,
    output_dir: str,
    n_ls: Any = (8, 24),
    steps: int = 1000,
    learning_rate: float = 1e-2,
    seed: int = 0,
    network_id: str = "network_def",
    prefix: str = "recapitulation",
    n_kernels: int = 4,
    **override: Any,
) -> dict[str, str]:
    """Fit hyper-networks (hidden 16, 16, N_L) to every learned regular kernel of a trained bundle network.

    Args:
        config_file, checkpoint, network_id, override: the trained regular network, as in :func:`analyze_kernels`.
        output_dir: where ``{prefix}.csv``, ``{prefix}.png`` (fit error and smoothness per layer) and
            ``{prefix}_kernels.png`` (learned kernels beside their fits) go.
        n_ls: the N_L values (the paper: 8 and 24).
        steps, learning_rate, seed: the fit (Adam, full batch); ``seed`` also picks the kernels drawn.
        n_kernels: kernels drawn per layer in ``{prefix}_kernels.png``.

    Returns:
        ``{"csv": path, "png": path, "kernels_png": path}``.
    """
    network = load_bundle_network(config_file, checkpoint, network_id=network_id, **override)
    rows, fits = recapitulate(
        network, _as_tuple(n_ls), steps=int(steps), learning_rate=float(learning_rate), seed=int(seed), keep_fits=True
    )
    csv_path = write_csv(rows, os.path.join(output_dir, f"{prefix}.csv"))
    name = os.path.basename(str(checkpoint))
    title = f"Recapitulating the learned kernels of {name} with hyper-networks"
    png_path = plot_recapitulation(rows, os.path.join(output_dir, f"{prefix}.png"), title)
    convs = [c for c in conv_kernels(network) if (c.name, rows[0]["n_l"]) in fits]
    kernels_png = plot_recapitulation_kernels(
        convs,
        {key: fit.fitted for key, fit in fits.items()},
        os.path.join(output_dir, f"{prefix}_kernels.png"),
        int(n_kernels),
        int(seed),
        f"Learned kernels of {name} and their hyper-network fits (same colour scale per column)",
    )
    return {"csv": csv_path, "png": png_path, "kernels_png": kernels_png}
