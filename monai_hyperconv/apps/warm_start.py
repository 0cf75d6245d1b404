"""Warm start: a hyper network that starts where a trained regular network is (issue 14, item 1).

:func:`hyperize_checkpoint` is what ``configs/warm_start/hyperize_fit.yaml`` calls to build ``network_def``: load a
regular network's checkpoint, convert it with ``hyperize(..., init="fit")`` and log how closely each kernel network
reproduces the kernel it replaced.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
from collections.abc import Sequence

from torch import nn

from monai_hyperconv.convert import fit_report, hyperize
from monai_hyperconv.handlers.checkpoint_loader import load_network_weights
from monai_hyperconv.utils import atomic_torch_save, atomic_write_csv, is_main_process

__all__ = ["hyperize_checkpoint", "summarize_fit"]

logger = logging.getLogger(__name__)


def summarize_fit(rows: Sequence[dict]) -> str:
    """One line on a :func:`~monai_hyperconv.fit_report`: layers fitted, exact solves, worst and median error."""
    if not rows:
        return "no layer fitted"
    errors = sorted(r["relative_error"] for r in rows)
    exact = sum(r["n_l"] + 1 >= r["taps"] for r in rows)
    return (
        f"{len(rows)} layers fitted ({exact} with N_L + 1 >= taps), relative kernel error max {errors[-1]:.3g}, "
        f"median {statistics.median(errors):.3g}"
    )


def hyperize_checkpoint(
    network: nn.Module,
    checkpoint: str | os.PathLike,
    hidden_channels: Sequence[int] = (16, 16, 4),
    kernel_size: int | Sequence[int] | None = None,
    *,
    transposed_kernel_size: int | Sequence[int] | None = None,
    fit_steps: int = 100,
    fit_ridge: float = 0.0,
    report_file: str | os.PathLike | None = None,
    save_path: str | os.PathLike | None = None,
    map_location="cpu",
) -> nn.Module:
    """Load ``checkpoint`` into the regular ``network`` and turn it into its fitted hyper version, in place.

    Every convolution with a kernel larger than 1 becomes a hyper-convolution whose kernel network is fitted to
    the trained kernel (:func:`~monai_hyperconv.hyperize` with ``init="fit"``: exact up to float rounding where
    ``N_L + 1 >= taps``, least squares then Adam otherwise); everything else (1×1 layers, normalisation, biases)
    keeps its trained values. The fit report is logged (one line per layer by ``hyperize``, a summary here).

    Args:
        network: the regular network the checkpoint was trained with (its ``network_def``).
        checkpoint: ``model.pt`` (a state dict) or ``checkpoint_last.pt`` of that network.
        hidden_channels: kernel-network widths of the hyper layers; the last entry is N_L.
        kernel_size, transposed_kernel_size, fit_steps, fit_ridge: as :func:`~monai_hyperconv.hyperize`.
        report_file: where to write the fit report as CSV (one row per layer); None: not written.
        save_path: where to save the fitted network's state dict (e.g. to evaluate it before any training with
            the bundle's evaluation, ``--checkpoint``); None: not saved.
        map_location: device the checkpoint is read to.

    Returns:
        the network, now a hyper network (same object unless ``network`` itself is a single convolution).

    Raises:
        ValueError: no checkpoint given, or hidden_channels not positive widths.
        FileNotFoundError, RuntimeError: the checkpoint is missing, unreadable or does not fit ``network``.
    """
    if checkpoint is None:
        raise ValueError(
            "warm start: no checkpoint of the regular network given (set warm_start_checkpoint, e.g. "
            "--warm_start_checkpoint bundles/liver_lesion_seg/models/unet_5x5/model.pt)."
        )
    if not hidden_channels or any(int(c) < 1 for c in hidden_channels):
        raise ValueError(f"warm start: hidden_channels must be positive widths (last one N_L), got {hidden_channels}.")
    load_network_weights(network, checkpoint, map_location=map_location)
    network = hyperize(
        network, kernel_size, tuple(int(c) for c in hidden_channels),
        transposed_kernel_size=transposed_kernel_size, init="fit", fit_steps=fit_steps,
        fit_ridge=float(fit_ridge),
    )  # fmt: skip
    rows = fit_report(network)
    logger.info("warm start from %s: %s", os.fspath(checkpoint), summarize_fit(rows))
    if is_main_process():
        if report_file is not None and rows:
            header = list(rows[0])
            atomic_write_csv(report_file, header, ([_cell(r[k]) for k in header] for r in rows))
        if save_path is not None:
            atomic_torch_save(network.state_dict(), save_path)
    return network


def _cell(value) -> str:
    """CSV text of a fit-report field: kernel sizes as 5x5, floats with 6 significant digits."""
    if isinstance(value, (tuple, list)):
        return "x".join(map(str, value))
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)
