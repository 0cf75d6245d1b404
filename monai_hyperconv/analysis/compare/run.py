"""The comparison runner: trains and evaluates every model through the bundle, resumable, then writes the report."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from monai.bundle import ConfigParser

from monai_hyperconv.analysis.checkpoint import build_bundle_network, load_bundle_network
from monai_hyperconv.analysis.compare.curves import curve_summary
from monai_hyperconv.analysis.compare.launch import Launcher, inprocess_launcher, subprocess_launcher
from monai_hyperconv.analysis.compare.plan import Evaluation, ModelSpec, load_experiment, parse_mapping
from monai_hyperconv.analysis.compare.report import comparison_markdown, metric_columns, read_metric, write_report
from monai_hyperconv.analysis.receptive_field import network_receptive_field
from monai_hyperconv.analysis.smoothness import layer_smoothness
from monai_hyperconv.utils.atomic import atomic_write_text

__all__ = ["ComparisonRunner", "make_runner", "run_comparison"]

logger = logging.getLogger(__name__)


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
        seed: the seed, passed to every run as ``seed_id`` when the bundle defines that id (one seed).
        seeds: several seeds instead of ``seed``: every model is trained and evaluated once per seed, each (model,
            seed) a separate resumable run in ``<output_dir>/<model>/seed<k>/``; the report gives mean ± sd per
            model and the paired differences against ``baseline``.
        baseline: the model (name) that the others are compared with, seed by seed; None: no paired differences.
        train_config: the training config, relative to ``bundle_root``.
        evaluate_config: the evaluation config relative to ``bundle_root``, or a list of them merged in order
            (e.g. ``[configs/train.yaml, configs/evaluate.yaml]`` for an evaluate.yaml that extends train.yaml).
            The network fragment is merged last.
        metric_name: the metric's name in the report (``"Dice"``, ``"PSNR"``).
        resume_override: overrides that make the bundle continue from ``checkpoint_last.pt``
            (e.g. ``{"resume": True}``).
        last_checkpoint: file name of the resumable checkpoint in ``ckpt_dir``.
        seed_id: the bundle's id of the seed, or a list of ids all set to the seed (e.g. ``[seed, split_seed]``:
            each seed then also draws its own data split, the same for every model at that seed).
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
        seeds: Sequence[int] | None = None,
        baseline: str | None = None,
        train_config: str = "configs/train.yaml",
        evaluate_config: str | Sequence[str] = "configs/evaluate.yaml",
        metric_name: str = "Dice",
        resume_override: Mapping[str, Any] | None = None,
        last_checkpoint: str = "checkpoint_last.pt",
        seed_id: str | Sequence[str] = "seed",
        launcher: Launcher = subprocess_launcher,
        receptive_field_size: int = 256,
        command: str | None = None,
    ) -> None:
        self.bundle_root = str(bundle_root)
        self.models = [ModelSpec.parse(n) for n in networks]
        self.output_dir = str(output_dir)
        self.evaluations = list(evaluations)
        self.overrides = dict(overrides or {})
        # one seed keeps the single-run layout (<output_dir>/<model>/); a list of seeds gives <model>/seed<k>/
        self.multi_seed = seeds is not None
        self.seeds = [int(s) for s in seeds] if seeds is not None else [int(seed)]
        self.seed = self.seeds[0]
        self.baseline = baseline
        self.train_config = os.path.join(self.bundle_root, train_config)
        configs = [evaluate_config] if isinstance(evaluate_config, str) else list(evaluate_config)
        self.evaluate_configs = [os.path.join(self.bundle_root, c) for c in configs]
        self.metric_name = metric_name
        self.resume_override = dict(resume_override or {})
        self.last_checkpoint = last_checkpoint
        self.seed_ids = [seed_id] if isinstance(seed_id, str) else list(seed_id)
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
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be a non-empty list of distinct integers, got {self.seeds}.")
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not one of the models {names}.")
        parser = ConfigParser()
        parser.read_config(self.train_config)
        missing = [i for i in self.seed_ids if i not in parser]
        self._seed_ids_found = [i for i in self.seed_ids if i in parser]
        self.bundle_has_seed = not missing
        parser = ConfigParser()
        parser.read_config(self.evaluate_configs)
        self._evaluate_has_model_name = "model_name" in parser
        if missing:
            logger.warning(f"{self.train_config} has no id {missing}: those keep the bundle's own value in every run.")

    def model_dir(self, model: ModelSpec, seed: int | None = None) -> str:
        """The folder of one run: ``<output_dir>/<model>`` (one seed) or ``<output_dir>/<model>/seed<k>``."""
        if not self.multi_seed:
            return os.path.join(self.output_dir, model.name)
        return os.path.join(self.output_dir, model.name, f"seed{self.seed if seed is None else seed}")

    def run_overrides(self, model: ModelSpec, seed: int | None = None) -> dict[str, Any]:
        """Overrides shared by the training and evaluation runs of one model at one seed (default: the first)."""
        folder = os.path.abspath(self.model_dir(model, seed))
        shared = {"bundle_root": os.path.abspath(self.bundle_root), "ckpt_dir": os.path.join(folder, "models")}
        for seed_id in self._seed_ids_found:
            shared[seed_id] = self.seed if seed is None else seed
        return {**shared, **self.overrides, **model.overrides}

    def signature(self, model: ModelSpec, stage: str = "result", seed: int | None = None) -> dict[str, Any]:
        """Everything that decides a run's training (``stage="trained"``) or result; other markers are not reused."""
        sig = {
            "train_config": _sha256_file(self.train_config),
            "fragment": _sha256_file(model.fragment),
            "overrides": self.overrides,
            "seed": self.seed if seed is None else seed,
        }
        if self.seed_ids != ["seed"]:
            sig["seed_ids"] = self.seed_ids
        if model.overrides:
            sig["model_overrides"] = model.overrides
        if stage != "trained":
            sig["evaluate_config"] = [_sha256_file(c) for c in self.evaluate_configs]
            sig["evaluations"] = [e.__dict__ for e in self.evaluations]
        return json.loads(json.dumps(sig, sort_keys=True, default=str))  # as it reads back from JSON

    def _marker(self, model: ModelSpec, name: str, strict: bool = True, seed: int | None = None) -> dict | None:
        """The marker ``name`` of a model when it exists and was made with these settings.

        Otherwise: None when the marker is missing, or stale and not ``strict`` (that step is redone); an error when
        it is stale and ``strict`` (a training made with other settings is never silently replaced or reused).
        """
        folder = self.model_dir(model, seed)
        marker = _read_json(os.path.join(folder, name))
        if marker is None:
            return None
        if marker.get("signature") != self.signature(model, os.path.splitext(name)[0], seed):
            if not strict:
                logger.info(f"{model.name}: {name} made with other evaluation settings, redone")
                return None
            raise RuntimeError(
                f"{os.path.join(folder, name)} was made with other settings (configs, fragment, "
                f"budget or seed changed). Use a new output_dir, or delete {folder!r} to retrain."
            )
        return marker

    # -- steps -------------------------------------------------------------------------------------------------
    def train(self, model: ModelSpec, seed: int | None = None) -> dict:
        """Train one model (at one seed) unless done; resumes an interrupted training. Returns ``trained.json``."""
        folder = self.model_dir(model, seed)
        done = self._marker(model, "trained.json", seed=seed)
        if done is not None:
            logger.info(f"{folder}: already trained, skipped")
            return done
        overrides = self.run_overrides(model, seed)
        overrides["output_dir"] = os.path.join(os.path.abspath(folder), "train_outputs")
        last = os.path.join(overrides["ckpt_dir"], self.last_checkpoint)
        resumed = os.path.isfile(last) and bool(self.resume_override)
        if resumed:
            overrides.update(self.resume_override)
            logger.info(f"{model.name}: resuming from {last}")
        start = time.time()
        self.launcher([self.train_config, model.fragment], overrides, os.path.join(folder, "train.log"))
        marker = {
            "signature": self.signature(model, "trained", seed),
            "train_seconds": time.time() - start,
            "resumed": resumed,
            **curve_summary(os.path.join(overrides["output_dir"], "learning_curve.csv"), self.output_dir),
        }
        _write_json(os.path.join(folder, "trained.json"), marker)
        return marker

    def evaluate(self, model: ModelSpec, trained: Mapping, seed: int | None = None) -> dict:
        """Run every evaluation of a trained run unless done. Returns the ``result.json`` marker (the report row)."""
        done = self._marker(model, "result.json", strict=False, seed=seed)  # trained with these settings: re-evaluate
        if done is not None:
            logger.info(f"{self.model_dir(model, seed)}: already evaluated, skipped")
            return done
        seed = self.seed if seed is None else seed
        folder = os.path.abspath(self.model_dir(model, seed))
        row: dict[str, Any] = {"model": model.name, "seed": seed, "fragment": model.fragment}
        sweeps: list[str] = []
        for ev in self.evaluations:
            out = os.path.join(folder, f"eval_{ev.name}")
            if os.path.isdir(out):  # the runner's own folder: files of an earlier evaluation must not be read as new
                shutil.rmtree(out)
            overrides = {**self.run_overrides(model, seed), **ev.overrides, "output_dir": out}
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
                pattern = os.path.join(out, ev.sweep_glob.format(**fields))
                sweeps += self._collect_sweeps(model, pattern, ev.name, seed)
        row.update(self.describe_network(model))
        row.update(self.kernel_smoothness(model, seed))
        for key in ("train_seconds", "best_epoch", "epochs_run", "best_val_loss", "learning_curve"):
            row[key] = trained.get(key)
        row["sweep_csvs"] = [os.path.relpath(s, self.output_dir) for s in sweeps]
        marker = {**row, "signature": self.signature(model, "result", seed)}
        _write_json(os.path.join(folder, "result.json"), marker)
        return marker

    def _collect_sweeps(self, model: ModelSpec, pattern: str, evaluation: str, seed: int | None = None) -> list[str]:
        """Copy the robustness sweep CSVs an evaluation wrote next to the report, one file per curve label.

        When the evaluation config has a ``model_name`` id the runner set it, so each CSV keeps its own label (a
        reference curve such as ``zero_filled`` stays one curve however many models write it); otherwise every
        curve is labelled with this model's name. With several seeds the copies go to ``sweeps/`` as
        ``robustness_<label>_seed<k>.csv`` (the report averages them per label).
        """
        from monai_hyperconv.handlers.noise_sweep import read_sweep_csv, write_sweep_csv

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
            if self.multi_seed:
                target = os.path.join(self.output_dir, "sweeps", f"robustness_{label}_seed{seed}.csv")
            else:
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

    def kernel_smoothness(self, model: ModelSpec, seed: int | None = None) -> dict[str, float]:
        """The paper's kernel smoothness of the trained ``model.pt``: mean absolute Laplacian, mean over the layers
        (lower is smoother), and the scale-free variant (Laplacian relative to the kernel's magnitude)."""
        checkpoint = os.path.join(self.run_overrides(model, seed)["ckpt_dir"], "model.pt")
        if not os.path.isfile(checkpoint):
            return {}
        overrides = {**self.overrides, **model.overrides}
        network = load_bundle_network([self.train_config, model.fragment], checkpoint, **overrides)
        layers = layer_smoothness(network)
        if not layers:
            return {}
        return {
            "kernel_smoothness": sum(r["mean_abs_laplacian"] for r in layers) / len(layers),
            "kernel_smoothness_rel": sum(r["mean_abs_laplacian_rel"] for r in layers) / len(layers),
        }

    # -- the whole comparison ----------------------------------------------------------------------------------
    def run(self) -> dict[str, str]:
        """Train and evaluate every model (skipping finished ones), then write the report; returns its paths."""
        os.makedirs(self.output_dir, exist_ok=True)
        self.rows = []
        for seed in self.seeds:  # seed-major: an interrupted comparison already has every model at the first seeds
            for model in self.models:
                trained = self.train(model, seed)
                self.rows.append(self.evaluate(model, trained, seed))
        return self.write_report(self.rows)

    def write_report(self, rows: Sequence[Mapping]) -> dict[str, str]:
        """``comparison.csv``, ``comparison.md`` and (when the evaluations made sweeps) ``robustness.png``."""
        return write_report(self, rows)

    def metric_columns(self) -> list[str]:
        """The report's metric columns: each evaluation's main metric, then its extra ones."""
        return metric_columns(self.metric_name, self.evaluations)

    def markdown(self, rows: Sequence[Mapping], paths: Mapping[str, str]) -> str:
        """The report: the table, the settings that produced it and the command to reproduce it."""
        return comparison_markdown(self, rows, paths)


def _command_line() -> str | None:
    """This process's command line when it is ``python -m monai_hyperconv.analysis``, for the report."""
    if not sys.argv or not sys.argv[0].endswith(os.path.join("analysis", "__main__.py")):
        return None
    return shlex.join(["python", "-m", "monai_hyperconv.analysis", *sys.argv[1:]])


def _seed_list(value: Any, experiment: str | None) -> list[int]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Sequence) or not value or not all(isinstance(v, int) for v in value):
        raise ValueError(f"experiment {experiment!r}: 'seeds' must be a non-empty list of integers, got {value!r}.")
    return list(value)


def make_runner(
    experiment: str | None = None,
    output_dir: str | None = None,
    networks: Sequence[str] | str | None = None,
    bundle_root: str | None = None,
    seed: int | None = None,
    inprocess: bool = False,
    seeds: Sequence[int] | None = None,
    baseline: str | None = None,
    **override: Any,
) -> ComparisonRunner:
    """The :class:`ComparisonRunner` of an experiment file, with command-line replacements (see run_comparison)."""
    spec = load_experiment(experiment) if experiment else {}
    if networks is not None:
        spec["networks"] = networks.split(",") if isinstance(networks, str) else list(networks)
    if seed is not None or seeds is not None:  # a seed given on the command line replaces the experiment's seed(s)
        spec.pop("seed", None)
        spec.pop("seeds", None)
    for key, value in (
        ("bundle_root", bundle_root), ("seed", seed), ("seeds", seeds), ("output_dir", output_dir),
        ("baseline", baseline),
    ):  # fmt: skip
        if value is not None:
            spec[key] = value
    if "seed" in spec and "seeds" in spec:
        raise ValueError(f"experiment {experiment!r}: give 'seed' (one run per model) or 'seeds' (a list), not both.")
    for key in ("bundle_root", "networks", "evaluations", "output_dir"):
        if key not in spec:
            raise ValueError(f"missing {key!r}: give it in the experiment file or on the command line.")
    return ComparisonRunner(
        bundle_root=spec["bundle_root"],
        networks=spec["networks"],
        output_dir=spec["output_dir"],
        evaluations=[Evaluation(**e) for e in spec["evaluations"]],
        overrides={**parse_mapping(spec.get("overrides"), "overrides"), **override},
        seed=spec.get("seed", 0),
        seeds=_seed_list(spec["seeds"], experiment) if "seeds" in spec else None,
        baseline=spec.get("baseline"),
        train_config=spec.get("train_config", "configs/train.yaml"),
        evaluate_config=spec.get("evaluate_config", "configs/evaluate.yaml"),
        metric_name=spec.get("metric_name", "Dice"),
        resume_override=parse_mapping(spec.get("resume_override"), "resume_override"),
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
    seeds: Sequence[int] | None = None,
    baseline: str | None = None,
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
        seed: replaces the experiment's seed (or seeds) by this one seed.
        inprocess: run the bundle inside this process instead of a subprocess per run.
        seeds: replaces the experiment's seed(s) by a list, e.g. ``--seeds "[0, 1, 2]"``: every model at every seed.
        baseline: replaces the experiment's baseline, the model the paired differences are taken against.
        override: further bundle config overrides for every run (the budget), on top of the experiment's.

    Returns:
        The report's paths: ``{"csv", "md"}``, ``"png"`` when the evaluations made robustness sweeps, and with
        several seeds ``"runs_csv"`` (one row per run) and ``"paired_csv"`` (differences against the baseline).
    """
    return make_runner(
        experiment, output_dir, networks, bundle_root, seed, inprocess, seeds, baseline, **override
    ).run()
