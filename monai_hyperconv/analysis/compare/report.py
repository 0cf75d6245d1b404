"""The comparison's results: metrics read from each evaluation's files, and the report (CSV, Markdown, figure)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from monai_hyperconv.analysis.compare.claims import paper_claims
from monai_hyperconv.analysis.compare.curves import plot_learning_curves
from monai_hyperconv.analysis.compare.plan import Evaluation
from monai_hyperconv.analysis.compare.stats import PairedDifference, mean_sd, paired_difference, t_quantile
from monai_hyperconv.analysis.reports import markdown_table, write_csv
from monai_hyperconv.handlers.learning_curve import read_learning_curve
from monai_hyperconv.utils.atomic import atomic_write_text

if TYPE_CHECKING:  # annotations only: the runner imports this module
    from monai_hyperconv.analysis.compare.run import ComparisonRunner

__all__ = [
    "comparison_markdown", "metric_columns", "model_summary", "paired_rows", "read_metric", "write_multi_seed_report",
    "write_report",
]  # fmt: skip


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
    """``comparison.csv``, ``comparison.md`` and (when the evaluations made sweeps) ``robustness.png``.

    With several seeds: :func:`write_multi_seed_report`.
    """
    if runner.multi_seed:
        return write_multi_seed_report(runner, rows)
    columns = ["model", "parameters", "receptive_field", *metric_columns(runner.metric_name, runner.evaluations)]
    columns += ["train_seconds", "receptive_field_source", "fragment"]
    paths = {"csv": write_csv(rows, os.path.join(runner.output_dir, "comparison.csv"), columns)}
    sweeps = [os.path.join(runner.output_dir, s) for row in rows for s in row.get("sweep_csvs", [])]
    sweeps = list(dict.fromkeys(sweeps))  # a reference curve written by every model is drawn once
    if sweeps:
        from monai_hyperconv.handlers.noise_sweep import plot_noise_sweeps

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
        {**r, "parameters": f"{r['parameters'] / 1e6:.3f}M" if r.get("parameters") is not None else None} for r in rows
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
            f"{runner.seed}{'' if runner.bundle_has_seed else ' (NOT passed: the bundle has no seed id)'} and the "
            f"same overrides: `{json.dumps(runner.overrides, sort_keys=True)}`."
        ),
        f"Receptive field: {', '.join(sources)}.",
    ]
    return "\n".join(lines + _settings_lines(runner, rows, paths)) + "\n"


def _settings_lines(runner: ComparisonRunner, rows: Sequence[Mapping], paths: Mapping[str, str]) -> list[str]:
    """The report's closing lines: per-model overrides, how each evaluation was made, the figure, the command."""
    sources = sorted({str(r.get("receptive_field_source")) for r in rows})
    lines = [f"Receptive field: {', '.join(sources)}.", ""] if runner.multi_seed else [""]
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
    return lines


# -- several seeds: mean ± sd per model, paired differences against the baseline -----------------------------------
# what each run's training gives besides the metrics: its time, its best validation epoch (the epoch model.pt holds,
# at which every metric is measured), how many epochs it ran (early stopping) and the smoothness of its kernels
_TRAINING_COLUMNS = ("train_seconds", "best_epoch", "epochs_run", "kernel_smoothness")


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def _mean_pm_sd(values: Sequence[float]) -> str:
    mean, sd = mean_sd(values)
    return _num(mean) if sd is None else f"{_num(mean)} ± {_num(sd)}"


def _interval(diff: PairedDifference | None) -> str:
    if diff is None:
        return "–"
    if diff.low is None:
        return f"{diff.mean:+.3f} (n=1)"
    return f"{diff.mean:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}]"


def _by_seed(rows: Sequence[Mapping], model: str, column: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[column]) for r in rows if r["model"] == model and r.get(column) is not None}


def _sweep_values(runner: ComparisonRunner, rows: Sequence[Mapping]) -> dict[str, dict[tuple[str, float], dict]]:
    """label -> (noise, level) -> {seed: value}, from every run's robustness CSVs (a reference curve counted once)."""
    from monai_hyperconv.handlers.noise_sweep import read_sweep_csv

    curves: dict[str, dict[tuple[str, float], dict]] = {}
    for row in rows:
        for rel in row.get("sweep_csvs", []):
            _, points = read_sweep_csv(os.path.join(runner.output_dir, rel))
            for p in points:
                curves.setdefault(p["model"], {}).setdefault((p["noise"], p["level"]), {})[int(row["seed"])] = p[
                    "value"
                ]
    return curves


def model_summary(runner: ComparisonRunner, rows: Sequence[Mapping]) -> list[dict[str, Any]]:
    """One row per model: its description, the number of seeds, and ``<column>`` (mean) and ``<column>_sd``."""
    summary = []
    for model in runner.models:
        runs = [r for r in rows if r["model"] == model.name]
        if not runs:
            continue
        out: dict[str, Any] = {k: runs[0].get(k) for k in ("model", "parameters", "receptive_field", "fragment")}
        out["receptive_field_source"] = runs[0].get("receptive_field_source")
        out["n_seeds"] = len(runs)
        out["seeds"] = " ".join(str(r["seed"]) for r in runs)
        for column in [*metric_columns(runner.metric_name, runner.evaluations), *_TRAINING_COLUMNS]:
            values = [float(r[column]) for r in runs if r.get(column) is not None]
            if values:
                out[column], out[f"{column}_sd"] = mean_sd(values)
        summary.append(out)
    return summary


def paired_rows(runner: ComparisonRunner, rows: Sequence[Mapping]) -> list[dict[str, Any]]:
    """``model - baseline`` at the same seed for every metric column and every robustness point, with 95 % intervals."""
    if runner.baseline is None:
        return []
    curves = _sweep_values(runner, rows)
    out = []
    for model in runner.models:
        if model.name == runner.baseline:
            continue
        pairs = [
            (column, _by_seed(rows, model.name, column), _by_seed(rows, runner.baseline, column))
            for column in metric_columns(runner.metric_name, runner.evaluations)
        ]
        for point in curves.get(model.name, {}):
            name = f"robustness_{point[0]}_{point[1]:g}"
            pairs.append((name, curves[model.name][point], curves.get(runner.baseline, {}).get(point, {})))
        for metric, values, base in pairs:
            diff = paired_difference(values, base)
            if diff is not None:
                out.append({
                    "model": model.name, "baseline": runner.baseline, "metric": metric, "n": diff.n,
                    "mean_difference": diff.mean, "sd_difference": diff.sd, "ci95_low": diff.low,
                    "ci95_high": diff.high, "seeds": " ".join(map(str, diff.seeds)),
                })  # fmt: skip
    return out


def write_multi_seed_report(runner: ComparisonRunner, rows: Sequence[Mapping]) -> dict[str, str]:
    """The report of several seeds: ``comparison_runs.csv`` (one row per run), ``comparison.csv`` (mean and sd per
    model), ``comparison_paired.csv`` (differences against the baseline), ``robustness_<label>.csv`` (mean curves),
    ``robustness.png`` and ``comparison.md``."""
    from monai_hyperconv.handlers.noise_sweep import plot_noise_sweeps, write_sweep_csv

    metrics = metric_columns(runner.metric_name, runner.evaluations)
    out = runner.output_dir
    run_columns = ["model", "seed", *metrics, *_TRAINING_COLUMNS, "parameters", "fragment"]
    paths = {"runs_csv": write_csv(rows, os.path.join(out, "comparison_runs.csv"), run_columns)}
    summary = model_summary(runner, rows)
    columns = ["model", "parameters", "receptive_field", "n_seeds", "seeds"]
    columns += [c for m in [*metrics, *_TRAINING_COLUMNS] for c in (m, f"{m}_sd")]
    paths["csv"] = write_csv(
        summary, os.path.join(out, "comparison.csv"), [*columns, "receptive_field_source", "fragment"]
    )
    paired = paired_rows(runner, rows)
    if paired:
        paths["paired_csv"] = write_csv(paired, os.path.join(out, "comparison_paired.csv"))
    curves = _sweep_values(runner, rows)
    if curves:
        means = []
        for label, points in curves.items():
            table = [(noise, level, mean_sd(list(v.values()))[0]) for (noise, level), v in points.items()]
            means.append(
                write_sweep_csv(table, os.path.join(out, f"robustness_{label}.csv"), label, runner.metric_name.lower())
            )
        title = f"{runner.metric_name} under test-time noise, mean over seeds ({os.path.basename(runner.bundle_root)})"
        paths["png"] = plot_noise_sweeps(means, os.path.join(out, "robustness.png"), title)
    curves_by_model = _learning_curves(runner, rows)
    if curves_by_model:
        best = {
            m: [int(r["best_epoch"]) for r in rows if r["model"] == m and r.get("best_epoch")] for m in curves_by_model
        }
        title = f"Learning curves, mean ± sd over seeds ({os.path.basename(runner.bundle_root)})"
        paths["curves_png"] = plot_learning_curves(
            curves_by_model, os.path.join(out, "learning_curves.png"), best, title
        )
    markdown = multi_seed_markdown(runner, rows, summary, paired, curves, paths)
    paths["md"] = atomic_write_text(os.path.join(out, "comparison.md"), markdown)
    return paths


def multi_seed_markdown(
    runner: ComparisonRunner,
    rows: Sequence[Mapping],
    summary: Sequence[Mapping],
    paired: Sequence[Mapping],
    curves: Mapping[str, Mapping],
    paths: Mapping[str, str],
) -> str:
    """The multi-seed report: mean ± sd per model, paired differences, robustness, per-run values, settings."""
    metrics = metric_columns(runner.metric_name, runner.evaluations)
    labels = [f"{ev.name} {runner.metric_name}" for ev in runner.evaluations]
    labels += [f"{ev.name} {label}" for ev in runner.evaluations for label in ev.extra_metrics]
    n = len(runner.seeds)
    lines = [f"# Comparison on `{os.path.basename(os.path.normpath(runner.bundle_root))}`, {n} seeds", ""]
    lines.append(f"Mean ± sd (sample sd, n − 1) over the seeds {', '.join(map(str, runner.seeds))}:")
    lines.append("")
    table = []
    for s in summary:
        runs = [r for r in rows if r["model"] == s["model"]]
        cells = {"model": s["model"], "n": s["n_seeds"], "receptive_field": s.get("receptive_field")}
        cells["params"] = f"{s['parameters'] / 1e6:.3f}M" if s.get("parameters") is not None else None
        for column in metrics:
            cells[column] = _mean_pm_sd([float(r[column]) for r in runs if r.get(column) is not None])
        table.append(cells)
        for column in ("best_epoch", "epochs_run", "kernel_smoothness"):
            values = [float(r[column]) for r in runs if r.get(column) is not None]
            cells[column] = _mean_pm_sd(values) if values else None
    columns = ["model", "params", "receptive_field", "n", *metrics, "best_epoch", "epochs_run", "kernel_smoothness"]
    headers = ["model", "params", "receptive field", "seeds", *labels, "best epoch", "epochs run", "kernel |Laplacian|"]
    lines.append(markdown_table(table, columns, headers))
    lines.append(
        "Every figure is measured with the weights of the run's best validation epoch (`model.pt`), as the paper "
        "reports; 'epochs run' differs from the budget where early stopping ended the run."
    )
    lines.append("")
    if paired:
        t = t_quantile(n - 1) if n > 1 else float("nan")
        lines += [
            (
                f"Paired differences against `{runner.baseline}`: model − baseline at the same seed, mean over the "
                f"seeds [95 % t-interval, t = {t:.2f} for {n - 1} degrees of freedom]. An interval that contains 0 "
                "does not tell the two apart; with few seeds the intervals are wide."
            ),
            "",
        ]
        by_model: dict[str, dict[str, str]] = {}
        for p in paired:
            diff = PairedDifference(p["n"], p["mean_difference"], p["sd_difference"], p["ci95_low"], p["ci95_high"], [])
            by_model.setdefault(p["model"], {"model": p["model"]})[p["metric"]] = _interval(diff)
        lines.append(markdown_table(list(by_model.values()), ["model", *metrics], ["model", *labels]))
    if curves:
        lines += _robustness_markdown(runner, curves, paired)
    if "curves_png" in paths:
        lines += ["", f"![learning curves]({os.path.basename(paths['curves_png'])})", ""]
    if runner.baseline is not None:
        lines += _claims_markdown(runner, rows, curves)
    run_rows = [{**r, **{c: _num(float(r[c])) for c in metrics if r.get(c) is not None}} for r in rows]
    run_columns = ["model", "seed", *metrics, "best_epoch", "epochs_run"]
    lines += [
        "Every run:",
        "",
        markdown_table(run_rows, run_columns, ["model", "seed", *labels, "best epoch", "epochs"]),
    ]
    ids = ", ".join(f"`{i}`" for i in runner.seed_ids)
    lines.append(
        f"Every (model, seed) was trained by `{os.path.relpath(runner.train_config)}` with its network fragment, "
        f"the seed given as {ids}{'' if runner.bundle_has_seed else ' (some NOT passed: missing in the bundle)'} "
        f"and the same overrides: `{json.dumps(runner.overrides, sort_keys=True)}`."
    )
    lines += _settings_lines(runner, rows, paths)
    return "\n".join(lines) + "\n"


def _robustness_markdown(runner: ComparisonRunner, curves: Mapping[str, Mapping], paired: Sequence[Mapping]) -> list:
    names = [m.name for m in runner.models]
    labels = [n for n in names if n in curves] + [c for c in curves if c not in names]  # models first, references after
    points = list(dict.fromkeys(p for label in labels for p in curves[label]))
    diffs = {(p["model"], p["metric"]): p for p in paired}
    others = [m.name for m in runner.models if m.name != runner.baseline and m.name in curves and runner.baseline]
    table = []
    for noise, level in points:
        row = {"noise": noise, "level": f"{level:g}"}
        for label in labels:
            values = curves[label].get((noise, level))
            row[label] = _mean_pm_sd(list(values.values())) if values else None
        for name in others:
            p = diffs.get((name, f"robustness_{noise}_{level:g}"))
            row[f"d_{name}"] = _interval(
                PairedDifference(p["n"], p["mean_difference"], p["sd_difference"], p["ci95_low"], p["ci95_high"], [])
            ) if p else None  # fmt: skip
        table.append(row)
    columns = ["noise", "level", *labels, *(f"d_{n}" for n in others)]
    headers = ["noise", "level", *labels, *(f"{n} − {runner.baseline}" for n in others)]
    return [
        (
            f"Robustness: test {runner.metric_name} with noise added to the test inputs, mean ± sd over the seeds, "
            "and the paired differences against the baseline [95 % t-interval]:"
        ),
        "",
        markdown_table(table, columns, headers),
    ]


def _learning_curves(runner: ComparisonRunner, rows: Sequence[Mapping]) -> dict[str, list]:
    """model -> the learning curve of each of its runs (those that wrote one)."""
    curves: dict[str, list] = {}
    for row in rows:
        rel = row.get("learning_curve")
        path = os.path.join(runner.output_dir, rel) if rel else None
        if path and os.path.isfile(path):
            curves.setdefault(row["model"], []).append(read_learning_curve(path))
    return curves


def _claims_markdown(runner: ComparisonRunner, rows: Sequence[Mapping], curves: Mapping[str, Mapping]) -> list:
    """The paper's claims for every model against the baseline, with the paired interval and the verdict."""
    metric = runner.metric_name.lower()
    claims = paper_claims(rows, [m.name for m in runner.models], runner.baseline, metric, curves)
    table = [
        {"model": c.model, "claim": c.claim, "measure": c.measure, "interval": _interval(c.diff), "verdict": c.verdict}
        for c in claims
    ]
    return [
        f"## The paper's claims against `{runner.baseline}`",
        "",
        (
            "Each claim is a paired difference (model − baseline at the same seed, mean [95 % t-interval]); "
            "'supported': the interval excludes 0 on the claimed side; 'contradicted': it excludes 0 on the other "
            "side; 'not shown': it contains 0."
        ),
        "",
        markdown_table(
            table,
            ["model", "claim", "measure", "interval", "verdict"],
            ["model", "claim", "measure", "difference [95 % CI]", "these runs"],
        ),
        "",
    ]
