"""Comparison runner: train several network fragments on one bundle with the same seed and budget, then report.

Every model is trained and evaluated by the bundle itself through ``python -m monai.bundle run`` (a subprocess per
run, so a crash or a kill loses one run, never the comparison), with the network swapped by merging a fragment
``configs/networks/<variant>.yaml`` and the budget given as config overrides. Each model works in its own folder::

    <output_dir>/<model>/models/        ckpt_dir of its training (model.pt, checkpoint_last.pt)
    <output_dir>/<model>/eval_<name>/   output_dir of each evaluation (metrics, noise sweep CSV)
    <output_dir>/<model>/*.log          everything the bundle printed
    <output_dir>/<model>/trained.json   written once training finished
    <output_dir>/<model>/result.json    written once every evaluation finished: the model's report row

Markers are written atomically and carry a signature of everything that decides the result (the bundle configs,
the fragment, the overrides, the seed). A rerun skips models whose ``result.json`` matches, evaluates models that
are trained but not evaluated, resumes a model whose training was interrupted (``checkpoint_last.pt`` present)
with the bundle's resume override, and refuses to mix results of different settings in one folder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monai.bundle import ConfigParser

from monai_hyperconv.analysis.checkpoint import build_bundle_network
from monai_hyperconv.analysis.receptive_field import network_receptive_field
from monai_hyperconv.analysis.reports import markdown_table, write_csv
from monai_hyperconv.utils.atomic import atomic_write_text

__all__ = [
    "ComparisonRunner",
    "Evaluation",
    "ModelSpec",
    "bundle_command",
    "inprocess_launcher",
    "load_experiment",
    "make_runner",
    "read_metric",
    "run_comparison",
    "subprocess_launcher",
]

logger = logging.getLogger(__name__)

# (config files, overrides, log file) -> None; raises on failure.
Launcher = Callable[[Sequence[str], Mapping[str, Any], str], None]


# -- launching the bundle ------------------------------------------------------------------------------------------
def _cli_value(value: Any) -> str:
    """A config override as ``python -m monai.bundle run`` (fire) parses it back to the same value."""
    if isinstance(value, str):
        return value
    return repr(value)  # ints, floats, bools, lists and dicts are Python literals to fire


def bundle_command(
    config_files: Sequence[str], overrides: Mapping[str, Any], python: str = sys.executable
) -> list[str]:
    """The ``python -m monai.bundle run`` command line that runs ``config_files`` (merged) with ``overrides``."""
    cmd = [python, "-m", "monai.bundle", "run", "--config_file", repr([str(f) for f in config_files])]
    for key, value in overrides.items():
        cmd += [f"--{key}", _cli_value(value)]
    return cmd


def subprocess_launcher(config_files: Sequence[str], overrides: Mapping[str, Any], log_path: str) -> None:
    """Run the bundle in a fresh Python process, its output appended to ``log_path``.

    Raises:
        RuntimeError: when the run fails, with the command, the log file and its last lines.
    """
    cmd = bundle_command(config_files, overrides)
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {shlex.join(cmd)}\n")
        log.flush()
        status = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if status != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            tail = "".join(log.readlines()[-25:])
        raise RuntimeError(f"bundle run failed (exit {status}), log {log_path!r}:\n$ {shlex.join(cmd)}\n{tail}")


def inprocess_launcher(config_files: Sequence[str], overrides: Mapping[str, Any], log_path: str) -> None:
    """Run the bundle with ``monai.bundle.run`` in this process (faster to start; no isolation). Logs the call only."""
    from monai.bundle import run

    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {shlex.join(bundle_command(config_files, overrides))}  (in process)\n")
    run(config_file=[str(f) for f in config_files], **overrides)


# -- reading results -----------------------------------------------------------------------------------------------
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


@dataclass
class Evaluation:
    """One evaluation run of each trained model, and where its metrics are read.

    Attributes:
        name: the report columns' stem (``"train"``, ``"test"``).
        metric_key: the main metric's name in ``metrics_file``; reported as ``<name>_<metric name>``.
        metrics_file: file in the evaluation's ``output_dir`` holding the metrics (see :func:`read_metric`);
            ``{model}`` stands for the model's name (e.g. ``test_psnr_{model}.csv``), ``{<id>}`` for the value of
            any override of the run (e.g. ``fold{fold}/metrics.csv``).
        overrides: config overrides of this evaluation on top of the comparison's (e.g. the split to evaluate).
        sweep_glob: optional glob (in the evaluation's ``output_dir``) of robustness sweep CSVs to collect; the same
            placeholders.
        extra_metric_keys: further metrics of the same file: a list of keys, reported as ``<name>_<key>``, or a
            mapping ``{label: key}``, reported as ``<name>_<label>``.
    """

    name: str
    metric_key: str
    metrics_file: str = "metrics.csv"
    overrides: dict[str, Any] = field(default_factory=dict)
    sweep_glob: str | None = None
    extra_metric_keys: list[str] | dict[str, str] = field(default_factory=list)

    @property
    def extra_metrics(self) -> dict[str, str]:
        """``{label: key}`` of the extra metrics."""
        keys = self.extra_metric_keys
        return dict(keys) if isinstance(keys, Mapping) else {k: k for k in keys}


@dataclass
class ModelSpec:
    """One model of a comparison: a network fragment, its name and its own overrides (on top of the budget's).

    Attributes:
        fragment: path of the network fragment (``configs/networks/<variant>.yaml``).
        name: the model's name in the report and its folder; default: the fragment's file stem.
        overrides: config overrides of this model only, e.g. ``{"network_def#hidden_channels": [16, 16, 8]}``.
    """

    fragment: str
    name: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fragment = str(self.fragment)
        self.name = self.name or os.path.splitext(os.path.basename(self.fragment))[0]
        self.overrides = dict(self.overrides or {})

    @classmethod
    def parse(cls, value: str | os.PathLike | Mapping | ModelSpec) -> ModelSpec:
        """A spec from a fragment path, a mapping (``fragment``, ``name``, ``overrides``) or a spec."""
        if isinstance(value, ModelSpec):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"fragment", "name", "overrides"}
            if "fragment" not in value or unknown:
                raise ValueError(f"a model needs 'fragment' (and optionally 'name', 'overrides'), got {dict(value)}.")
            return cls(value["fragment"], value.get("name", ""), value.get("overrides") or {})
        return cls(str(value))


# -- the runner ----------------------------------------------------------------------------------------------------
def _sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _read_json(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None  # a marker that cannot be read is no marker: redo that step


def _write_json(path: str, obj: Mapping) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


class ComparisonRunner:
    """Train every network fragment on one bundle with the same seed and budget, evaluate, and write a report.

    Args:
        bundle_root: the bundle folder (e.g. ``bundles/liver_lesion_seg``).
        networks: the models: network fragment paths (``configs/networks/<variant>.yaml``, named by their file
            stems), or :class:`ModelSpec` / mappings with ``fragment`` and optionally ``name`` and ``overrides``
            (e.g. one fragment at several N_L).
        output_dir: the comparison's folder (one subfolder per model, the report at the top).
        evaluations: the evaluation runs per model (see :class:`Evaluation`), e.g. test and train Dice.
        overrides: config overrides for every run, training and evaluation: the budget (``max_epochs``,
            ``image_size``, ``batch_size``...) and anything else that must be the same for all models.
        seed: the seed, passed to every run as ``seed_id`` when the bundle defines that id.
        train_config: the training config, relative to ``bundle_root``.
        evaluate_config: the evaluation config relative to ``bundle_root``, or a list of them merged in order
            (e.g. ``[configs/train.yaml, configs/evaluate.yaml]`` for an evaluate.yaml that extends train.yaml).
            The network fragment is merged last.
        metric_name: the metric's name in the report (``"Dice"``, ``"PSNR"``).
        resume_override: overrides that make the bundle continue from ``checkpoint_last.pt``
            (e.g. ``{"resume": True}``).
        last_checkpoint: file name of the resumable checkpoint in ``ckpt_dir``.
        seed_id: the bundle's id of the seed.
        launcher: runs one bundle command (:func:`subprocess_launcher` by default).
        receptive_field_size: input size (pixels per axis) of the measured receptive field fallback.
        command: the command line that started the comparison, quoted in the report.
    """

    def __init__(
        self,
        bundle_root: str,
        networks: Sequence[str | Mapping | ModelSpec],
        output_dir: str,
        evaluations: Sequence[Evaluation],
        overrides: Mapping[str, Any] | None = None,
        seed: int = 0,
        train_config: str = "configs/train.yaml",
        evaluate_config: str | Sequence[str] = "configs/evaluate.yaml",
        metric_name: str = "Dice",
        resume_override: Mapping[str, Any] | None = None,
        last_checkpoint: str = "checkpoint_last.pt",
        seed_id: str = "seed",
        launcher: Launcher = subprocess_launcher,
        receptive_field_size: int = 256,
        command: str | None = None,
    ) -> None:
        self.bundle_root = str(bundle_root)
        self.models = [ModelSpec.parse(n) for n in networks]
        self.output_dir = str(output_dir)
        self.evaluations = list(evaluations)
        self.overrides = dict(overrides or {})
        self.seed = int(seed)
        self.train_config = os.path.join(self.bundle_root, train_config)
        configs = [evaluate_config] if isinstance(evaluate_config, str) else list(evaluate_config)
        self.evaluate_configs = [os.path.join(self.bundle_root, c) for c in configs]
        self.metric_name = metric_name
        self.resume_override = dict(resume_override or {})
        self.last_checkpoint = last_checkpoint
        self.seed_id = seed_id
        self.launcher = launcher
        self.receptive_field_size = receptive_field_size
        self.command = command
        self._check_inputs()

    # -- set-up ------------------------------------------------------------------------------------------------
    def _check_inputs(self) -> None:
        if not os.path.isdir(self.bundle_root):
            raise FileNotFoundError(f"bundle folder {self.bundle_root!r} does not exist.")
        for path in (self.train_config, *self.evaluate_configs, *(m.fragment for m in self.models)):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"config {path!r} does not exist (expected a bundle config or network fragment)."
                )
        if not self.models:
            raise ValueError("no network fragment to compare: pass at least one configs/networks/<variant>.yaml.")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models must have distinct names (fragment file names or 'name'), got {names}.")
        if not self.evaluations:
            raise ValueError("no evaluation: pass at least one (e.g. the test split).")
        parser = ConfigParser()
        parser.read_config(self.train_config)
        self._bundle_has_seed = self.seed_id in parser
        parser = ConfigParser()
        parser.read_config(self.evaluate_configs)
        self._evaluate_has_model_name = "model_name" in parser
        if not self._bundle_has_seed:
            logger.warning(
                f"{self.train_config} has no id {self.seed_id!r}: every model runs with the bundle's own seed."
            )

    def model_dir(self, model: ModelSpec) -> str:
        return os.path.join(self.output_dir, model.name)

    def run_overrides(self, model: ModelSpec) -> dict[str, Any]:
        """Overrides shared by the training and evaluation runs of one model."""
        folder = os.path.abspath(self.model_dir(model))
        shared = {"bundle_root": os.path.abspath(self.bundle_root), "ckpt_dir": os.path.join(folder, "models")}
        if self._bundle_has_seed:
            shared[self.seed_id] = self.seed
        return {**shared, **self.overrides, **model.overrides}

    def signature(self, model: ModelSpec, stage: str = "result") -> dict[str, Any]:
        """Everything that decides a model's training (``stage="trained"``) or result; other markers are not reused."""
        sig = {
            "train_config": _sha256_file(self.train_config),
            "fragment": _sha256_file(model.fragment),
            "overrides": self.overrides,
            "seed": self.seed,
        }
        if model.overrides:
            sig["model_overrides"] = model.overrides
        if stage != "trained":
            sig["evaluate_config"] = [_sha256_file(c) for c in self.evaluate_configs]
            sig["evaluations"] = [e.__dict__ for e in self.evaluations]
        return json.loads(json.dumps(sig, sort_keys=True, default=str))  # as it reads back from JSON

    def _marker(self, model: ModelSpec, name: str, strict: bool = True) -> dict | None:
        """The marker ``name`` of a model when it exists and was made with these settings.

        Otherwise: None when the marker is missing, or stale and not ``strict`` (that step is redone); an error when
        it is stale and ``strict`` (a training made with other settings is never silently replaced or reused).
        """
        marker = _read_json(os.path.join(self.model_dir(model), name))
        if marker is None:
            return None
        if marker.get("signature") != self.signature(model, os.path.splitext(name)[0]):
            if not strict:
                logger.info(f"{model.name}: {name} made with other evaluation settings, redone")
                return None
            raise RuntimeError(
                f"{os.path.join(self.model_dir(model), name)} was made with other settings (configs, fragment, "
                f"budget or seed changed). Use a new output_dir, or delete {self.model_dir(model)!r} to retrain."
            )
        return marker

    # -- steps -------------------------------------------------------------------------------------------------
    def train(self, model: ModelSpec) -> dict:
        """Train one model unless done; resumes an interrupted training. Returns the ``trained.json`` marker."""
        done = self._marker(model, "trained.json")
        if done is not None:
            logger.info(f"{model.name}: already trained, skipped")
            return done
        overrides = self.run_overrides(model)
        overrides["output_dir"] = os.path.join(os.path.abspath(self.model_dir(model)), "train_outputs")
        last = os.path.join(overrides["ckpt_dir"], self.last_checkpoint)
        resumed = os.path.isfile(last) and bool(self.resume_override)
        if resumed:
            overrides.update(self.resume_override)
            logger.info(f"{model.name}: resuming from {last}")
        start = time.time()
        self.launcher([self.train_config, model.fragment], overrides, os.path.join(self.model_dir(model), "train.log"))
        marker = {
            "signature": self.signature(model, "trained"),
            "train_seconds": time.time() - start,
            "resumed": resumed,
        }
        _write_json(os.path.join(self.model_dir(model), "trained.json"), marker)
        return marker

    def evaluate(self, model: ModelSpec, trained: Mapping) -> dict:
        """Run every evaluation of a trained model unless done. Returns the ``result.json`` marker (the report row)."""
        done = self._marker(model, "result.json", strict=False)  # trained with these settings: re-evaluate
        if done is not None:
            logger.info(f"{model.name}: already evaluated, skipped")
            return done
        folder = os.path.abspath(self.model_dir(model))
        row: dict[str, Any] = {"model": model.name, "fragment": model.fragment}
        sweeps: list[str] = []
        for ev in self.evaluations:
            out = os.path.join(folder, f"eval_{ev.name}")
            if os.path.isdir(out):  # the runner's own folder: files of an earlier evaluation must not be read as new
                shutil.rmtree(out)
            overrides = {**self.run_overrides(model), **ev.overrides, "output_dir": out}
            if self._evaluate_has_model_name:  # the bundle's label of this model in its sweep files
                overrides["model_name"] = model.name
            configs = [*self.evaluate_configs, model.fragment]
            self.launcher(configs, overrides, os.path.join(folder, f"eval_{ev.name}.log"))
            fields = {**overrides, "model": model.name}  # placeholders of metrics_file / sweep_glob, e.g. {fold}
            metrics_file = os.path.join(out, ev.metrics_file.format(**fields))
            row[f"{ev.name}_{self.metric_name.lower()}"] = read_metric(metrics_file, ev.metric_key)
            for label, key in ev.extra_metrics.items():
                row[f"{ev.name}_{label}"] = read_metric(metrics_file, key)
            if ev.sweep_glob:
                sweeps += self._collect_sweeps(model, os.path.join(out, ev.sweep_glob.format(**fields)), ev.name)
        row.update(self.describe_network(model))
        row["train_seconds"] = trained.get("train_seconds")
        row["sweep_csvs"] = [os.path.relpath(s, self.output_dir) for s in sweeps]
        marker = {**row, "signature": self.signature(model, "result")}
        _write_json(os.path.join(folder, "result.json"), marker)
        return marker

    def _collect_sweeps(self, model: ModelSpec, pattern: str, evaluation: str) -> list[str]:
        """Copy the robustness sweep CSVs an evaluation wrote next to the report, one file per curve label.

        When the evaluation config has a ``model_name`` id the runner set it, so each CSV keeps its own label (a
        reference curve such as ``zero_filled`` stays one curve however many models write it); otherwise every
        curve is labelled with this model's name.
        """
        from monai_hyperconv.engines.noise_sweep import read_sweep_csv, write_sweep_csv

        paths = sorted(glob.glob(pattern))
        if not paths:
            raise FileNotFoundError(f"the {evaluation!r} evaluation of {model.name} wrote no {pattern!r}.")
        copies = []
        for i, path in enumerate(paths):
            metric, rows = read_sweep_csv(path)
            labels = {r["model"] for r in rows}
            if self._evaluate_has_model_name and len(labels) == 1:
                label = labels.pop()
            else:
                label = model.name + (f"_{i}" if len(paths) > 1 else "")
            target = os.path.join(self.output_dir, f"robustness_{label}.csv")
            write_sweep_csv([(r["noise"], r["level"], r["value"]) for r in rows], target, label, metric)
            copies.append(target)
        return copies

    def describe_network(self, model: ModelSpec) -> dict[str, Any]:
        """Parameters and receptive field of the network the fragment builds under the comparison's overrides."""
        overrides = {**self.overrides, **model.overrides}
        network = build_bundle_network([self.train_config, model.fragment], **overrides)
        parser = ConfigParser()
        parser.read_config([self.train_config, model.fragment])
        parser.update(overrides)
        spatial_dims = int(parser.get_parsed_content("spatial_dims", default=2))
        in_channels = int(parser.get_parsed_content("in_channels", default=1))
        rf, how = network_receptive_field(network, spatial_dims, in_channels, self.receptive_field_size)
        params = sum(p.numel() for p in network.parameters() if p.requires_grad)
        return {"parameters": params, "receptive_field": rf, "receptive_field_source": how}

    # -- the whole comparison ----------------------------------------------------------------------------------
    def run(self) -> dict[str, str]:
        """Train and evaluate every model (skipping finished ones), then write the report; returns its paths."""
        os.makedirs(self.output_dir, exist_ok=True)
        self.rows = []
        for model in self.models:
            trained = self.train(model)
            self.rows.append(self.evaluate(model, trained))
        return self.write_report(self.rows)

    def write_report(self, rows: Sequence[Mapping]) -> dict[str, str]:
        """``comparison.csv``, ``comparison.md`` and (when the evaluations made sweeps) ``robustness.png``."""
        columns = ["model", "parameters", "receptive_field", *self.metric_columns()]
        columns += ["train_seconds", "receptive_field_source", "fragment"]
        paths = {"csv": write_csv(rows, os.path.join(self.output_dir, "comparison.csv"), columns)}
        sweeps = [os.path.join(self.output_dir, s) for row in rows for s in row.get("sweep_csvs", [])]
        sweeps = list(dict.fromkeys(sweeps))  # a reference curve written by every model is drawn once
        if sweeps:
            from monai_hyperconv.engines.noise_sweep import plot_noise_sweeps

            title = f"{self.metric_name} under test-time noise ({os.path.basename(self.bundle_root)})"
            paths["png"] = plot_noise_sweeps(sweeps, os.path.join(self.output_dir, "robustness.png"), title)
        paths["md"] = atomic_write_text(os.path.join(self.output_dir, "comparison.md"), self.markdown(rows, paths))
        return paths

    def metric_columns(self) -> list[str]:
        """The report's metric columns: each evaluation's main metric, then its extra ones."""
        metric = self.metric_name.lower()
        columns = [f"{ev.name}_{metric}" for ev in self.evaluations]
        return columns + [f"{ev.name}_{label}" for ev in self.evaluations for label in ev.extra_metrics]

    def markdown(self, rows: Sequence[Mapping], paths: Mapping[str, str]) -> str:
        """The report: the table, the settings that produced it and the command to reproduce it."""
        table_rows = [
            {**r, "parameters": f"{r['parameters'] / 1e6:.3f}M" if r.get("parameters") is not None else None}
            for r in rows
        ]
        columns = ["model", "parameters", "receptive_field", *self.metric_columns()]
        headers = ["model", "params", "receptive field"] + [f"{ev.name} {self.metric_name}" for ev in self.evaluations]
        headers += [f"{ev.name} {label}" for ev in self.evaluations for label in ev.extra_metrics]
        sources = sorted({str(r.get("receptive_field_source")) for r in rows})
        lines = [
            f"# Comparison on `{os.path.basename(os.path.normpath(self.bundle_root))}`",
            "",
            markdown_table(table_rows, columns, headers),
            (
                f"Every model was trained by `{os.path.relpath(self.train_config)}` with its network fragment, seed "
                f"{self.seed}{'' if self._bundle_has_seed else ' (NOT passed: the bundle has no seed id)'} and the "
                f"same overrides: `{json.dumps(self.overrides, sort_keys=True)}`."
            ),
            f"Receptive field: {', '.join(sources)}.",
            "",
        ]
        for model in self.models:
            if model.overrides:
                own = json.dumps(model.overrides, sort_keys=True)
                lines.append(f"- `{model.name}`: `{model.fragment}` with `{own}`.")
        for ev in self.evaluations:
            lines.append(
                f"- {ev.name} {self.metric_name}: `{' + '.join(os.path.relpath(c) for c in self.evaluate_configs)}` + "
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
        if self.command:
            lines += ["", "Produced by:", "", "```bash", self.command, "```"]
        return "\n".join(lines) + "\n"


# -- experiment files and the command line -------------------------------------------------------------------------
def load_experiment(path: str) -> dict[str, Any]:
    """Read an experiment definition (``configs/experiments/*.yaml``), checking its keys.

    Keys: ``bundle_root``, ``networks`` (fragment paths), ``evaluations`` (list of :class:`Evaluation` fields),
    and optionally ``overrides``, ``seed``, ``train_config``, ``evaluate_config``, ``metric_name``,
    ``resume_override``, ``last_checkpoint``, ``seed_id``, ``output_dir``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"experiment file {path!r} does not exist.")
    spec = ConfigParser.load_config_file(path)
    if not isinstance(spec, Mapping):
        # a bad setting, not a programming error: ValueError like every other check of the experiment file
        raise ValueError(f"experiment file {path!r} must hold a mapping, got {type(spec).__name__}.")  # noqa: TRY004
    allowed = {
        "bundle_root", "networks", "evaluations", "overrides", "seed", "train_config", "evaluate_config",
        "metric_name", "resume_override", "last_checkpoint", "seed_id", "output_dir", "description",
    }  # fmt: skip
    unknown = set(spec) - allowed
    missing = {"bundle_root", "networks", "evaluations"} - set(spec)
    if unknown or missing:
        raise ValueError(f"experiment file {path!r}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}.")
    return dict(spec)


def _parse_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping, got {value!r}.")  # noqa: TRY004  (a bad setting, as above)
    return dict(value)


def _command_line() -> str | None:
    """This process's command line when it is ``python -m monai_hyperconv.analysis``, for the report."""
    if not sys.argv or not sys.argv[0].endswith(os.path.join("analysis", "__main__.py")):
        return None
    return shlex.join(["python", "-m", "monai_hyperconv.analysis", *sys.argv[1:]])


def make_runner(
    experiment: str | None = None,
    output_dir: str | None = None,
    networks: Sequence[str] | str | None = None,
    bundle_root: str | None = None,
    seed: int | None = None,
    inprocess: bool = False,
    **override: Any,
) -> ComparisonRunner:
    """The :class:`ComparisonRunner` of an experiment file, with command-line replacements (see run_comparison)."""
    spec = load_experiment(experiment) if experiment else {}
    if networks is not None:
        spec["networks"] = networks.split(",") if isinstance(networks, str) else list(networks)
    for key, value in (("bundle_root", bundle_root), ("seed", seed), ("output_dir", output_dir)):
        if value is not None:
            spec[key] = value
    for key in ("bundle_root", "networks", "evaluations", "output_dir"):
        if key not in spec:
            raise ValueError(f"missing {key!r}: give it in the experiment file or on the command line.")
    return ComparisonRunner(
        bundle_root=spec["bundle_root"],
        networks=spec["networks"],
        output_dir=spec["output_dir"],
        evaluations=[Evaluation(**e) for e in spec["evaluations"]],
        overrides={**_parse_mapping(spec.get("overrides"), "overrides"), **override},
        seed=spec.get("seed", 0),
        train_config=spec.get("train_config", "configs/train.yaml"),
        evaluate_config=spec.get("evaluate_config", "configs/evaluate.yaml"),
        metric_name=spec.get("metric_name", "Dice"),
        resume_override=_parse_mapping(spec.get("resume_override"), "resume_override"),
        last_checkpoint=spec.get("last_checkpoint", "checkpoint_last.pt"),
        seed_id=spec.get("seed_id", "seed"),
        launcher=inprocess_launcher if inprocess else subprocess_launcher,
        command=_command_line(),
    )


def run_comparison(
    experiment: str | None = None,
    output_dir: str | None = None,
    networks: Sequence[str] | str | None = None,
    bundle_root: str | None = None,
    seed: int | None = None,
    inprocess: bool = False,
    **override: Any,
) -> dict[str, str]:
    """Train and compare network fragments on one bundle; write ``comparison.{csv,md}`` and ``robustness.png``.

    ``python -m monai_hyperconv.analysis compare --experiment configs/experiments/liver_table1.yaml
    --output_dir outputs/liver_table1 [--max_epochs 2 --image_size 64 ...]``

    Args:
        experiment: an experiment file (see :func:`load_experiment`).
        output_dir: the comparison's folder (overrides the experiment's). Rerunning with the same folder resumes.
        networks: fragment paths (a list or comma-separated), replacing the experiment's list.
        bundle_root: replaces the experiment's bundle.
        seed: replaces the experiment's seed.
        inprocess: run the bundle inside this process instead of a subprocess per run.
        override: further bundle config overrides for every run (the budget), on top of the experiment's.

    Returns:
        The report's paths: ``{"csv", "md"}`` and ``"png"`` when the evaluations made robustness sweeps.
    """
    return make_runner(experiment, output_dir, networks, bundle_root, seed, inprocess, **override).run()
