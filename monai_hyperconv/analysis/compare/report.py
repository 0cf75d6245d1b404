"""The comparison's results: metrics read from each evaluation's files, and the report (CSV, Markdown, figure)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from monai_hyperconv.analysis.compare.plan import Evaluation
from monai_hyperconv.analysis.reports import markdown_table, write_csv
from monai_hyperconv.utils.atomic import atomic_write_text

if TYPE_CHECKING:  # annotations only: the runner imports this module
    from monai_hyperconv.analysis.compare.run import ComparisonRunner

__all__ = ["comparison_markdown", "metric_columns", "read_metric", "write_report"]


def _mean_column(rows: list[list[str]], key: str, path: str) -> float:
    """The mean of column ``key`` of a CSV table (header first)."""
    column = rows[0].index(key)
    try:
        values = [float(r[column]) for r in rows[1:] if len(r) > column]
    except ValueError as err:
        raise ValueError(f"column {key!r} of {path!r} holds a non-number: {err}") from err
    if not values:
        raise ValueError(f"table {path!r} has no row to average column {key!r} over.")
    return sum(values) / len(values)


def read_metric(path: str, key: str) -> float:
    """One metric from an evaluation's output file.

    Args:
        path: a JSON file (``{key: value}``, nested keys as ``a#b``); a MONAI ``MetricsSaver`` file (``metrics.csv``,
            one ``name<tab or comma>value`` line per metric); or a CSV table with a header naming ``key``, whose
            column is averaged (e.g. per-image PSNR rows).
        key: the metric's name.

    Raises:
        FileNotFoundError / KeyError / ValueError naming the file and the key.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"metrics file {path!r} does not exist (the evaluation should have written {key!r}).")
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            value: Any = json.load(f)
        for part in key.split("#"):
            if not isinstance(value, Mapping) or part not in value:
                raise KeyError(f"metrics file {path!r} has no key {key!r}.")
            value = value[part]
    else:
        with open(path, encoding="utf-8") as f:
            rows = [line.replace(",", "\t").strip().split("\t") for line in f if line.strip()]
        rows = [[c.strip() for c in r] for r in rows]
        if rows and len(rows[0]) > 2 and key in rows[0]:
            return _mean_column(rows, key, path)
        values = {r[0]: r[-1] for r in rows if len(r) >= 2}
        if key not in values:
            raise KeyError(f"metrics file {path!r} has no metric {key!r}; found {sorted(values)[:20]}.")
        value = values[key]
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"metric {key!r} in {path!r} is {value!r}, not a number.") from err


def write_report(runner: ComparisonRunner, rows: Sequence[Mapping]) -> dict[str, str]:
    """``comparison.csv``, ``comparison.md`` and (when the evaluations made sweeps) ``robustness.png``."""
    columns = ["model", "parameters", "receptive_field", *metric_columns(runner.metric_name, runner.evaluations)]
    columns += ["train_seconds", "receptive_field_source", "fragment"]
    paths = {"csv": write_csv(rows, os.path.join(runner.output_dir, "comparison.csv"), columns)}
    sweeps = [os.path.join(runner.output_dir, s) for row in rows for s in row.get("sweep_csvs", [])]
    sweeps = list(dict.fromkeys(sweeps))  # a reference curve written by every model is drawn once
    if sweeps:
        from monai_hyperconv.engines.noise_sweep import plot_noise_sweeps

        title = f"{runner.metric_name} under test-time noise ({os.path.basename(runner.bundle_root)})"
        paths["png"] = plot_noise_sweeps(sweeps, os.path.join(runner.output_dir, "robustness.png"), title)
    markdown = comparison_markdown(runner, rows, paths)
    paths["md"] = atomic_write_text(os.path.join(runner.output_dir, "comparison.md"), markdown)
    return paths


def metric_columns(metric_name: str, evaluations: Sequence[Evaluation]) -> list[str]:
    """The report's metric columns: each evaluation's main metric, then its extra ones."""
    metric = metric_name.lower()
    columns = [f"{ev.name}_{metric}" for ev in evaluations]
    return columns + [f"{ev.name}_{label}" for ev in evaluations for label in ev.extra_metrics]


def comparison_markdown(runner: ComparisonRunner, rows: Sequence[Mapping], paths: Mapping[str, str]) -> str:
    """The report: the table, the settings that produced it and the command to reproduce it."""
    table_rows = [
        {**r, "parameters": f"{r['parameters'] / 1e6:.3f}M" if r.get("parameters") is not None else None}
        for r in rows
    ]
    columns = ["model", "parameters", "receptive_field", *metric_columns(runner.metric_name, runner.evaluations)]
    headers = ["model", "params", "receptive field"] + [f"{ev.name} {runner.metric_name}" for ev in runner.evaluations]
    headers += [f"{ev.name} {label}" for ev in runner.evaluations for label in ev.extra_metrics]
    sources = sorted({str(r.get("receptive_field_source")) for r in rows})
    lines = [
        f"# Comparison on `{os.path.basename(os.path.normpath(runner.bundle_root))}`",
        "",
        markdown_table(table_rows, columns, headers),
        (
            f"Every model was trained by `{os.path.relpath(runner.train_config)}` with its network fragment, seed "
            f"{runner.seed}{'' if runner._bundle_has_seed else ' (NOT passed: the bundle has no seed id)'} and the "
            f"same overrides: `{json.dumps(runner.overrides, sort_keys=True)}`."
        ),
        f"Receptive field: {', '.join(sources)}.",
        "",
    ]
    for model in runner.models:
        if model.overrides:
            own = json.dumps(model.overrides, sort_keys=True)
            lines.append(f"- `{model.name}`: `{model.fragment}` with `{own}`.")
    for ev in runner.evaluations:
        lines.append(
            f"- {ev.name} {runner.metric_name}: `{' + '.join(os.path.relpath(c) for c in runner.evaluate_configs)}` + "
            f"fragment, overrides `{json.dumps(ev.overrides, sort_keys=True)}`, metric `{ev.metric_key}` of "
            f"`{ev.metrics_file}`"
            + (
                f" (also {', '.join(f'`{k}` as {lb}' for lb, k in ev.extra_metrics.items())})."
                if ev.extra_metrics
                else "."
            )
        )
    if "png" in paths:
        lines += ["", f"![robustness]({os.path.basename(paths['png'])})"]
    if runner.command:
        lines += ["", "Produced by:", "", "```bash", runner.command, "```"]
    return "\n".join(lines) + "\n"
