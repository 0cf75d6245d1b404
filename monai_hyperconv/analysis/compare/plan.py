"""What a comparison runs: the models (network fragments), the evaluations, and the experiment file defining them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monai.bundle import ConfigParser

__all__ = ["Evaluation", "ModelSpec", "load_experiment", "parse_mapping"]


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


def load_experiment(path: str) -> dict[str, Any]:
    """Read an experiment definition (``configs/experiments/*.yaml``), checking its keys.

    Keys: ``bundle_root``, ``networks`` (fragment paths), ``evaluations`` (list of :class:`Evaluation` fields),
    and optionally ``overrides``, ``seed`` or ``seeds`` (a list: every model at every seed), ``baseline`` (the model
    that paired differences are taken against), ``train_config``, ``evaluate_config``, ``metric_name``,
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
        "seeds", "baseline",
    }  # fmt: skip
    unknown = set(spec) - allowed
    missing = {"bundle_root", "networks", "evaluations"} - set(spec)
    if unknown or missing:
        raise ValueError(f"experiment file {path!r}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}.")
    return dict(spec)


def parse_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping, got {value!r}.")  # noqa: TRY004  (a bad setting, as above)
    return dict(value)
