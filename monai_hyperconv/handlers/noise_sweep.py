"""Robustness sweep: a trained model's metric on test inputs with added noise at increasing levels, CSV and plot.

The paper trains on clean images and adds salt-and-pepper, Gaussian or speckle noise at test time, plotting Dice
against the level for each model. Each level is one run of MONAI's ``SupervisedEvaluator`` whose ``prepare_batch``
(:class:`NoisyBatch`) adds that level's noise, with the metric as its key metric handler. :class:`NoiseSweep` runs
one model over every (kind, level), writes one CSV per model (``model,noise,level,<metric>``), and :func:`plot_noise_sweeps` draws any number of those CSVs in one
figure (one panel per noise kind, one line per model), so models trained by separate runs end up in one plot.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from monai.engines import SupervisedEvaluator
from monai.handlers import IgniteMetricHandler, from_engine
from monai.inferers import SimpleInferer
from monai.metrics import CumulativeIterationMetric
from monai.transforms import Lambdad
from monai.utils import CommonKeys
from torch.utils.data import DataLoader

from monai_hyperconv.transforms.noise import make_test_noise
from monai_hyperconv.utils.atomic import atomic_save_figure, atomic_write_csv
from monai_hyperconv.utils.distributed import is_main_process
from monai_hyperconv.utils.files import ensure_writable_dir
from monai_hyperconv.utils.flags import as_bool
from monai_hyperconv.utils.optional import require_pyplot

__all__ = [
    "NoiseSweep", "NoisyBatch", "plot_noise_sweeps", "read_sweep_csv", "run_noise_sweep", "sweep_evaluator",
    "write_sweep_csv",
]  # fmt: skip

SWEEP_FIELDS = ("model", "noise", "level", "value")


class NoisyBatch:
    """A ``prepare_batch`` for MONAI's ``SupervisedEvaluator``: the batch's input with test-time noise added.

    The evaluator's inputs are ``noise(batch[image_key])`` on its device and its targets ``batch[label_key]``, so a
    sweep is the evaluator run once per (kind, level), each time with this object holding that level's noise.

    Args:
        noise: a transform of the input batch (e.g. from :func:`~monai_hyperconv.transforms.noise.make_test_noise`).
            One that returns ``(inputs, kwargs)`` (:class:`~monai_hyperconv.transforms.kspace.KSpaceMeasurement`)
            also gives the network keyword arguments, e.g. the measured k-space of a data-consistency network.
        image_key: key of the network input in each batch (CS-MRI: the fully sampled ``label``, which the noise
            turns into a noisy zero-filled input).
        label_key: key of the target in each batch.
    """

    def __init__(self, noise: Callable, image_key: str = "image", label_key: str = "label") -> None:
        self.noise = noise
        self.image_key = image_key
        self.label_key = label_key

    def __call__(self, batchdata: Mapping, device=None, non_blocking: bool = False, **kwargs):
        inputs = batchdata[self.image_key].to(device=device, non_blocking=non_blocking, **kwargs)
        targets = batchdata[self.label_key].to(device=device, non_blocking=non_blocking, **kwargs)
        noisy = self.noise(inputs)
        if isinstance(noisy, tuple):
            noisy, network_kwargs = noisy
            return noisy, targets, (), network_kwargs
        return noisy, targets


def sweep_evaluator(
    network: torch.nn.Module,
    data: Iterable[Mapping],
    noise: Callable,
    metric: CumulativeIterationMetric,
    metric_name: str = "metric",
    post_pred: Callable[[torch.Tensor], torch.Tensor] | None = None,
    inferer: Callable | None = None,
    device: str | torch.device = "cpu",
    image_key: str = "image",
    label_key: str = "label",
) -> SupervisedEvaluator:
    """A MONAI ``SupervisedEvaluator`` of ``network`` on ``data`` with ``noise`` added to its inputs.

    ``metric`` (a MONAI cumulative metric, reset at the start of each run) is its key metric ``metric_name``, on the
    batched outputs after ``post_pred``. Arguments as in :func:`run_noise_sweep`.
    """
    epoch_length = None if isinstance(data, DataLoader) else len(data)  # ignite needs it for a plain sequence
    return SupervisedEvaluator(
        device=torch.device(device),
        val_data_loader=data,
        epoch_length=epoch_length,
        network=network,
        prepare_batch=NoisyBatch(noise, image_key, label_key),
        inferer=inferer if inferer is not None else SimpleInferer(),
        postprocessing=Lambdad(CommonKeys.PRED, post_pred) if post_pred is not None else None,
        key_val_metric={
            metric_name: IgniteMetricHandler(metric, output_transform=from_engine([CommonKeys.PRED, CommonKeys.LABEL]))
        },
        decollate=False,  # metrics and post_pred see whole batches, as the network does
    )


def run_noise_sweep(
    network: torch.nn.Module,
    data: Iterable[Mapping],
    noises: Mapping[str, Sequence[float]],
    metric: CumulativeIterationMetric,
    post_pred: Callable[[torch.Tensor], torch.Tensor] | None = None,
    inferer: Callable | None = None,
    noise_factory: Callable[[str, float, int], Callable] = make_test_noise,
    device: str | torch.device = "cpu",
    image_key: str = "image",
    label_key: str = "label",
    seed: int = 0,
) -> list[tuple[str, float, float]]:
    """The aggregated ``metric`` for every noise kind and level: a :func:`sweep_evaluator` run per level.

    Args:
        network: the trained model (evaluated in eval mode, without gradients).
        data: batches (dicts of tensors) of clean test inputs: a ``DataLoader`` or a sequence; iterated once per level.
        noises: noise kind -> levels, e.g. ``{"gaussian": [0, 0.05, 0.1, 0.2, 0.3]}``.
        metric: a MONAI cumulative metric (``DiceMetric``, ``PSNRMetric``...), reset before every level.
        post_pred: applied to the network output before the metric (e.g. sigmoid and threshold).
        inferer: ``inferer(inputs, network)`` (a MONAI inferer); None calls the network.
        noise_factory: ``(kind, level, seed) -> transform`` applied to the input batch; the default makes the
            paper's three image-domain noises. Another task may pass e.g. a k-space noise here.
        device: where the network runs.
        image_key: key of the network input in each batch.
        label_key: key of the target in each batch.
        seed: noise seed, the same for every level and model, so models see identical noise.

    Returns:
        rows ``(kind, level, value)``.
    """
    rows = []
    for kind, levels in noises.items():
        for level in levels:
            noise = noise_factory(kind, float(level), seed)
            evaluator = sweep_evaluator(network, data, noise, metric, "metric", post_pred, inferer, device,
                                        image_key, label_key)  # fmt: skip
            evaluator.run()
            value = evaluator.state.metrics["metric"]
            rows.append((kind, float(level), float(torch.as_tensor(value).float().mean())))
    return rows


def write_sweep_csv(rows: Iterable[tuple[str, float, float]], path: str, model_name: str, metric_name: str) -> str:
    """Write sweep rows as ``model,noise,level,<metric_name>`` (atomically: temp file then rename)."""
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)), "report folder")
    table = [[model_name, kind, f"{level:g}", f"{value:.6f}"] for kind, level, value in rows]
    return atomic_write_csv(path, ["model", "noise", "level", metric_name], table)


def read_sweep_csv(path: str) -> tuple[str, list[dict]]:
    """Read a CSV of :func:`write_sweep_csv`; returns the metric name and rows ``{model, noise, level, value}``."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or len(header) != 4 or header[:3] != ["model", "noise", "level"]:
            raise ValueError(f"{path}: expected a header 'model,noise,level,<metric>', got {header}.")
        rows = [
            {"model": r[0], "noise": r[1], "level": float(r[2]), "value": float(r[3])} for r in reader if len(r) == 4
        ]
    return header[3], rows


def plot_noise_sweeps(csv_paths: str | Sequence[str], path: str, title: str | None = None) -> str:
    """One figure with a panel per noise kind and a line per model, from one or more sweep CSVs.

    Args:
        csv_paths: CSV files, or a glob pattern such as ``"outputs/noise_sweep_*.csv"``.
        path: the PNG to write (atomically).
        title: figure title.
    """
    plt = require_pyplot("noise-sweep figures")

    paths = sorted(glob.glob(csv_paths)) if isinstance(csv_paths, str) else list(csv_paths)
    if not paths:
        raise FileNotFoundError(f"No sweep CSV matches {csv_paths!r}.")
    metric_name, rows = None, []
    for p in paths:
        name, r = read_sweep_csv(p)
        metric_name = metric_name or name
        rows += r
    kinds = list(dict.fromkeys(r["noise"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for model in models:
            pts = sorted((r["level"], r["value"]) for r in rows if r["noise"] == kind and r["model"] == model)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=model)
        ax.set_title(kind.replace("_", "-"))
        ax.set_xlabel("noise level")
        ax.set_ylabel(metric_name)
        ax.grid(alpha=0.3)
        if all(0.0 <= r["value"] <= 1.0 for r in rows):  # Dice-like metrics: the full [0, 1] scale
            ax.set_ylim(0.0, 1.02)
    axes[0][0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)), "figure folder")
    return atomic_save_figure(fig, path, dpi=120)


class NoiseSweep:
    """A bundle-friendly robustness sweep: ``run()`` evaluates, writes ``<output_dir>/noise_sweep_<model>.csv`` and
    plots every ``noise_sweep_*.csv`` found in ``output_dir`` into ``noise_sweep.png``.

    Running the evaluation of several models (e.g. Hyper-UNet and UNet 5×5, each with its ``ckpt_dir`` and
    network fragment) into the same ``output_dir`` with different ``model_name`` puts them in one plot.

    Args:
        network: the trained model.
        dataloader: clean test batches.
        noises: noise kind -> levels.
        metric: a MONAI cumulative metric.
        output_dir: folder of the CSV and PNG.
        model_name: label of this model in the CSV and plot.
        metric_name: column / axis name of the metric.
        enabled: False (or a flag string such as ``"false"`` from the command line) makes ``run()`` do nothing, so
            a bundle's ``--run_noise_sweep false`` reaches the sweep without a conditional in the config.
        kwargs: further arguments of :func:`run_noise_sweep` (``post_pred``, ``inferer``, ``noise_factory``,
            ``device``, ``image_key``, ``label_key``, ``seed``).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        dataloader: Iterable[Mapping],
        noises: Mapping[str, Sequence[float]],
        metric: CumulativeIterationMetric,
        output_dir: str,
        model_name: str = "model",
        metric_name: str = "dice",
        enabled: bool | str = True,
        **kwargs,
    ) -> None:
        self.network = network
        self.dataloader = dataloader
        self.noises = {k: [float(v) for v in levels] for k, levels in noises.items()}
        self.metric = metric
        self.output_dir = output_dir
        self.model_name = model_name
        self.metric_name = metric_name
        self.enabled = as_bool(enabled, "enabled (run_noise_sweep)")
        self.kwargs = kwargs
        self.logger = logging.getLogger(self.__class__.__name__)

    @property
    def csv_path(self) -> str:
        return os.path.join(self.output_dir, f"noise_sweep_{self.model_name}.csv")

    @property
    def png_path(self) -> str:
        return os.path.join(self.output_dir, "noise_sweep.png")

    def run(self) -> list[tuple[str, float, float]]:
        """Evaluate every level, then write the CSV and the plot (main process only); returns the rows.

        Returns no row and writes nothing when the sweep is not ``enabled``.
        """
        if not self.enabled:
            self.logger.info(f"noise sweep {self.model_name}: skipped (not enabled)")
            return []
        rows = run_noise_sweep(self.network, self.dataloader, self.noises, self.metric, **self.kwargs)
        for kind, level, value in rows:
            self.logger.info(f"noise sweep {self.model_name}: {kind} level {level:g}: {self.metric_name} {value:.4f}")
        if is_main_process():
            write_sweep_csv(rows, self.csv_path, self.model_name, self.metric_name)
            plot_noise_sweeps(os.path.join(self.output_dir, "noise_sweep_*.csv"), self.png_path)
        return rows
