"""Learning curves of a comparison: each run's best validation epoch, and the mean ± sd curves per model."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from monai_hyperconv.analysis.compare.stats import mean_sd
from monai_hyperconv.handlers.learning_curve import read_learning_curve
from monai_hyperconv.utils.atomic import atomic_save_figure
from monai_hyperconv.utils.optional import require_pyplot

__all__ = ["curve_summary", "epochs_to_reach", "learning_speed", "mean_curves", "plot_learning_curves"]


def curve_summary(path: str, relative_to: str) -> dict[str, Any]:
    """What a run's ``learning_curve.csv`` says about its training: ``best_epoch`` (lowest ``val_loss``, the epoch
    whose weights ``model.pt`` holds), ``best_val_loss``, ``epochs_run`` and the file (relative to ``relative_to``).
    Empty when the run wrote no curve (a bundle without the curve handler)."""
    if not os.path.isfile(path):
        return {}
    rows = read_learning_curve(path)
    validated = [r for r in rows if math.isfinite(r.get("val_loss", math.nan))]
    out: dict[str, Any] = {
        "epochs_run": int(rows[-1]["epoch"]) if rows else 0,
        "learning_curve": os.path.relpath(path, relative_to),
    }
    if validated:
        best = min(validated, key=lambda r: r["val_loss"])  # the first of equal losses, as the checkpointer keeps
        out["best_epoch"], out["best_val_loss"] = int(best["epoch"]), float(best["val_loss"])
    return out


def mean_curves(curves: Sequence[Sequence[Mapping[str, float]]], column: str) -> list[tuple[int, float, float, int]]:
    """``(epoch, mean, sd, n)`` of ``column`` over several runs' curves, at every epoch that at least one run reached
    (runs stopped early drop out; ``n`` says how many runs each point averages; sd is 0 for a single run)."""
    by_epoch: dict[int, list[float]] = {}
    for rows in curves:
        for r in rows:
            value = r.get(column, math.nan)
            if math.isfinite(value):
                by_epoch.setdefault(int(r["epoch"]), []).append(value)
    out = []
    for epoch in sorted(by_epoch):
        mean, sd = mean_sd(by_epoch[epoch])
        out.append((epoch, mean, sd or 0.0, len(by_epoch[epoch])))
    return out


def plot_learning_curves(
    curves: Mapping[str, Sequence[Sequence[Mapping[str, float]]]],
    path: str,
    best_epochs: Mapping[str, Sequence[int]] | None = None,
    title: str | None = None,
) -> str:
    """Training and validation loss per epoch, one line per model with a ± sd band over its seeds; a tick per run
    at its best validation epoch.

    Args:
        curves: model -> one learning curve (rows of :func:`read_learning_curve`) per seed.
        path: the PNG to write.
        best_epochs: model -> the best validation epoch of each of its runs.
        title: figure title.
    """
    plt = require_pyplot("learning-curve figures")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (model, runs) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        for ax, column in zip(axes, ("train_loss", "val_loss")):
            points = mean_curves(runs, column)
            if not points:
                continue
            epochs, means, sds, _ = zip(*points)
            ax.plot(epochs, means, color=colour, label=f"{model} ({len(runs)} seeds)")
            ax.fill_between(epochs, [m - s for m, s in zip(means, sds)], [m + s for m, s in zip(means, sds)],
                            color=colour, alpha=0.18, linewidth=0)  # fmt: skip
            if column == "val_loss" and best_epochs and best_epochs.get(model):
                lookup = dict(zip(epochs, means))
                marks = [e for e in best_epochs[model] if e in lookup]
                ax.plot(marks, [lookup[e] for e in marks], "v", color=colour, markersize=5)
    for ax, name in zip(axes, ("training loss (mean over the epoch)", "validation loss (▼: a run's best epoch)")):
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=110)


def epochs_to_reach(curve: Sequence[Mapping[str, float]], target: float, column: str = "train_loss") -> int | None:
    """The first epoch whose ``column`` is at or below ``target``; None when the curve never gets there."""
    for row in curve:
        if row.get(column, math.nan) <= target:
            return int(row["epoch"])
    return None


def learning_speed(
    reference: Mapping[int, Sequence[Mapping[str, float]]],
    runs: Mapping[int, Sequence[Mapping[str, float]]],
    reference_epoch: int = 10,
    column: str = "train_loss",
) -> list[dict[str, Any]]:
    """Per seed: how many epochs ``runs`` need to reach the ``column`` value that ``reference`` (the baseline at the
    same seed) has at ``reference_epoch``, and that count over ``reference_epoch`` (None where it never does).

    Args:
        reference: seed -> the baseline's learning curve.
        runs: seed -> the model's learning curve.
        reference_epoch: the baseline's epoch that sets the target.
        column: the curve's column (``train_loss``).
    """
    out = []
    for seed in sorted(set(reference) & set(runs)):
        row = next((r for r in reference[seed] if int(r["epoch"]) == reference_epoch), None)
        if row is None or not math.isfinite(row.get(column, math.nan)):
            continue
        target = float(row[column])
        epochs = epochs_to_reach(runs[seed], target, column)
        out.append({
            "seed": seed, "target": target, "epochs": epochs, "epochs_run": int(runs[seed][-1]["epoch"]),
            "ratio": None if epochs is None else epochs / reference_epoch,
        })  # fmt: skip
    return out


def learning_speed_command(
    reference: str, runs: Sequence[str] | str, reference_epoch: int = 10, column: str = "train_loss"
) -> None:
    """``python -m monai_hyperconv.analysis speed --reference <model dir> --runs "[<model dir>, ...]"``: for each
    model folder of a comparison (``<output_dir>/<model>``, holding ``seed<k>/train_outputs/learning_curve.csv``),
    the epochs each seed needs to reach the reference model's ``column`` at ``reference_epoch`` (same seed); prints
    one line per model (the ratio to ``reference_epoch``: mean, worst, seeds that never reach it)."""
    import glob

    def curves(folder: str) -> dict[int, list]:
        found = {}
        for path in sorted(glob.glob(os.path.join(folder, "seed*", "train_outputs", "learning_curve.csv"))):
            seed = int(os.path.basename(os.path.dirname(os.path.dirname(path)))[len("seed") :])
            found[seed] = read_learning_curve(path)
        if not found:
            raise FileNotFoundError(f"no seed*/train_outputs/learning_curve.csv under {folder!r}.")
        return found

    base = curves(reference)
    for folder in [runs] if isinstance(runs, str) else list(runs):
        speed = learning_speed(base, curves(folder), int(reference_epoch), column)
        ratios = [r["ratio"] for r in speed if r["ratio"] is not None]
        never = [r["seed"] for r in speed if r["ratio"] is None]
        summary = f"mean {sum(ratios) / len(ratios):.2f}x, worst {max(ratios):.2f}x" if ratios else "no seed reaches it"
        print(
            f"{os.path.basename(os.path.normpath(folder))}: epochs to reach {os.path.basename(reference)}'s {column} "
            f"at epoch {reference_epoch}, per seed {[r['epochs'] for r in speed]} ({summary}; never: {never})"
        )
