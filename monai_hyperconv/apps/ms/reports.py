"""Fold reports of the MS task: one fold's Dice per image and per held-out subject, and the summary over folds."""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Mapping

import numpy as np

from monai_hyperconv.apps.ms.isbi import image_id
from monai_hyperconv.utils.atomic import atomic_write_csv, atomic_write_json

__all__ = [
    "batch_image_meta",
    "evaluation_dir",
    "read_metric_details",
    "summarize_folds",
    "write_fold_dice",
    "write_fold_dice_report",
]


def read_metric_details(path: str, column: str = "mean") -> dict[str, float]:
    """Per-image values of a MONAI ``MetricsSaver`` details file (``<metric>_raw.csv``): file name -> value."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist: expected the per-image metric file written by MetricsSaver.")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and (column not in rows[0] or "filename" not in rows[0]):
        raise ValueError(f"{path}: expected columns 'filename' and {column!r}, got {list(rows[0])}.")
    return {r["filename"]: float(r[column]) for r in rows}


def write_fold_dice(per_image: Mapping[str, float], path: str, fold: int) -> dict[str, float]:
    """Write one fold's Dice per image and per held-out subject (mean over its time points) to ``path`` (CSV).

    Args:
        per_image: image file name (any contrast of the time point) -> Dice.
        path: the CSV to write (atomically), rows ``fold,subject,timepoint,dice``; ``timepoint`` is ``mean`` on
            the subject rows.
        fold: the fold id written in every row.

    Returns:
        subject -> mean Dice.
    """
    if not per_image:
        raise ValueError(f"No Dice values to write to {path}.")
    by_subject: dict[str, list[tuple[str, float]]] = {}
    for name, dice in per_image.items():
        subject, tp = image_id(name)
        by_subject.setdefault(subject, []).append((tp, float(dice)))
    rows, means = [], {}
    for subject in sorted(by_subject):
        values = sorted(by_subject[subject])
        rows += [[fold, subject, tp, f"{d:.6f}"] for tp, d in values]
        means[subject] = float(np.nanmean([d for _, d in values]))  # NaN: a time point without lesions
        rows.append([fold, subject, "mean", f"{means[subject]:.6f}"])
    atomic_write_csv(path, ["fold", "subject", "timepoint", "dice"], rows)
    return means


def summarize_folds(output_dir: str, pattern: str = "fold*/dice.csv") -> dict:
    """Fold summary from every fold's Dice CSV (:func:`write_fold_dice`) found under ``output_dir``.

    Writes ``fold_summary.csv`` (one row per fold: fold, held-out subject(s), Dice; then ``mean`` and ``sd``
    rows over the folds) and ``fold_summary.json`` (``{"folds": {fold: dice}, "mean": .., "sd": ..,
    "num_folds": ..}``), both atomically, and returns the JSON content. ``sd`` is the sample standard deviation
    (0 for a single fold).
    """
    paths = sorted(glob.glob(os.path.join(output_dir, pattern)))
    if not paths:
        raise FileNotFoundError(f"No fold Dice files match {os.path.join(output_dir, pattern)!r}; run evaluate first.")
    folds: dict[int, tuple[list[str], float]] = {}
    for path in paths:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("timepoint") == "mean"]
        if not rows:
            raise ValueError(f"{path}: no per-subject 'mean' rows; expected a file written by write_fold_dice.")
        fold = int(rows[0]["fold"])
        folds[fold] = ([r["subject"] for r in rows], float(np.mean([float(r["dice"]) for r in rows])))
    values = [d for _, d in folds.values()]
    mean = float(np.mean(values))
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    table = [[k, " ".join(s), f"{d:.6f}"] for k, (s, d) in sorted(folds.items())]
    table += [["mean", "", f"{mean:.6f}"], ["sd", "", f"{sd:.6f}"]]
    atomic_write_csv(os.path.join(output_dir, "fold_summary.csv"), ["fold", "held_out", "dice"], table)
    summary = {
        "folds": {str(k): d for k, (_, d) in sorted(folds.items())},
        "mean": mean,
        "sd": sd,
        "num_folds": len(folds),
    }
    atomic_write_json(os.path.join(output_dir, "fold_summary.json"), summary)
    return summary


def batch_image_meta(batch) -> list:
    """``batch_transform`` of ``MetricsSaver``: the ``image`` metadata of each item of a decollated batch, so the
    per-image metric rows are named after their files."""
    return [item["image"].meta for item in batch]


def evaluation_dir(fold_dir: str, eval_on: str = "validation") -> str:
    """Folder of an evaluation's reports: the fold's own folder for its held-out subject (``validation``, the one
    the fold summary reads), ``<fold_dir>/<eval_on>`` for the others (``training``, ``labelled``), so that they
    never replace the held-out report."""
    return fold_dir if eval_on == "validation" else os.path.join(fold_dir, eval_on)


def write_fold_dice_report(eval_dir: str, fold: int, details: str = "dice_raw.csv", report: str = "dice.csv") -> dict:
    """``<eval_dir>/dice.csv`` (:func:`write_fold_dice`) from the per-image Dice ``MetricsSaver`` wrote to
    ``<eval_dir>/dice_raw.csv``.

    Returns:
        subject -> mean Dice.
    """
    return write_fold_dice(read_metric_details(os.path.join(eval_dir, details)), os.path.join(eval_dir, report), fold)
