"""Figures of the CS-MRI bundle: violins of the per-image test PSNR / SSIM, and example reconstructions at several
k-space noise levels (the paper's Figure 9)."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

import torch
from monai.metrics import PSNRMetric

from monai_hyperconv.apps.csmri.report import read_test_report
from monai_hyperconv.transforms.kspace import make_kspace_noise
from monai_hyperconv.utils.atomic import atomic_save_figure
from monai_hyperconv.utils.distributed import is_main_process
from monai_hyperconv.utils.files import ensure_writable_dir
from monai_hyperconv.utils.flags import as_bool
from monai_hyperconv.utils.optional import require_pyplot

__all__ = ["NoiseExamples", "plot_noise_examples", "plot_test_violins"]


def _savefig(fig, path: str) -> str:
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)), "figure folder")
    return atomic_save_figure(fig, path, dpi=120)


def plot_test_violins(csv_paths: str | Sequence[str], path: str, metric: str = "psnr") -> str:
    """Violin plot of the per-image ``metric`` of every model in the report CSVs, the zero-filled input first."""
    plt = require_pyplot("CS-MRI figures")

    paths = sorted(glob.glob(csv_paths)) if isinstance(csv_paths, str) else list(csv_paths)
    if not paths:
        raise FileNotFoundError(f"No test report CSV matches {csv_paths!r}.")
    reports = [read_test_report(p) for p in paths]
    groups = {"zero-filled": [r[f"zero_filled_{metric}"] for r in reports[0]]}
    for rows in reports:
        if rows:
            groups[rows[0]["model"]] = [r[metric] for r in rows]
    fig, ax = plt.subplots(figsize=(1.8 + 1.4 * len(groups), 3.6))
    ax.violinplot(list(groups.values()), showmedians=True)
    ax.set_xticks(range(1, len(groups) + 1), list(groups), rotation=20)
    ax.set_ylabel(f"test {metric.upper()}" + (" (dB)" if metric == "psnr" else ""))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _savefig(fig, path)


def plot_noise_examples(
    network: torch.nn.Module,
    dataset,
    levels: Sequence[float],
    path: str,
    index: int = 0,
    acceleration: float = 8.0,
    mask_seed: int = 0,
    seed: int = 0,
    model_name: str = "model",
    device: str | torch.device = "cpu",
    data_consistency: bool = False,
) -> str:
    """Panel of one test image at several k-space noise levels (the paper's Figure 9).

    Rows: noise levels; columns: fully sampled target, zero-filled input and the model's reconstruction, each titled
    with its PSNR against the target. The noise is that of the sweep (:func:`make_kspace_noise`, same seed).

    Args:
        network: the trained model.
        dataset: test items with the fully sampled ``label`` (``dataset[index]``).
        levels: k-space noise standard deviations.
        path: the PNG to write.
        index: which test item.
        acceleration, mask_seed: the mask, as in training.
        seed: noise seed.
        model_name: column title of the model.
        device: where the network runs.
        data_consistency: also pass the measured ``kspace`` and ``mask`` to the network (a data-consistency network).
    """
    plt = require_pyplot("CS-MRI figures")

    if not len(dataset):
        raise ValueError("plot_noise_examples: the test dataset is empty.")
    target = torch.as_tensor(dataset[index % len(dataset)]["label"]).float()[None].to(device)
    psnr = PSNRMetric(max_val=1.0)
    network.eval()
    fig, axes = plt.subplots(len(levels), 3, figsize=(7.5, 2.6 * len(levels)), squeeze=False)
    spatial_dims = target.ndim - 2
    for row, level in zip(axes, levels):
        measure = make_kspace_noise("kspace_gaussian", float(level), seed, acceleration, spatial_dims, mask_seed,
                                    data_consistency=True)  # fmt: skip
        noisy, kwargs = measure(target)
        with torch.no_grad():
            pred = network(noisy, **kwargs) if data_consistency else network(noisy)
        panels = [("fully sampled", target, None), ("zero-filled", noisy, None), (model_name, pred, None)]
        for ax, (title, img, _) in zip(row, panels):
            ax.imshow(img[0, 0].detach().cpu().numpy().T, cmap="gray", vmin=0, vmax=1, origin="lower")
            if img is not target:
                title = f"{title}: {float(psnr(y_pred=img, y=target).mean()):.2f} dB"
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        row[0].set_ylabel(f"sigma = {level:g}")
        row[0].axis("on")
        row[0].set_xticks([])
        row[0].set_yticks([])
    fig.tight_layout()
    return _savefig(fig, path)


class NoiseExamples:
    """The bundle's example panel: ``run()`` draws :func:`plot_noise_examples` into
    ``<output_dir>/noise_examples_<model_name>.png``.

    Args:
        network, dataset, levels, index, acceleration, mask_seed, seed, model_name, device, data_consistency: as in
            :func:`plot_noise_examples`.
        output_dir: folder of the PNG.
        enabled: False (or a flag string such as ``"false"``) makes ``run()`` do nothing (the bundle's
            ``run_noise_sweep``).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        dataset,
        levels: Sequence[float],
        output_dir: str,
        model_name: str = "model",
        index: int = 0,
        acceleration: float = 8.0,
        mask_seed: int = 0,
        seed: int = 0,
        device: str | torch.device = "cpu",
        enabled: bool | str = True,
        data_consistency: bool | str = False,
    ) -> None:
        self.network = network
        self.dataset = dataset
        self.levels = list(levels)
        self.output_dir = output_dir
        self.model_name = model_name
        self.options = {
            "index": index, "acceleration": acceleration, "mask_seed": mask_seed, "seed": seed,
            "data_consistency": as_bool(data_consistency, "data_consistency"),
        }  # fmt: skip
        self.device = device
        self.enabled = as_bool(enabled, "enabled (run_noise_sweep)")

    @property
    def png_path(self) -> str:
        return os.path.join(self.output_dir, f"noise_examples_{self.model_name}.png")

    def run(self) -> str | None:
        """Write the panel (main process only); returns its path, or None when not enabled or not the main process."""
        if not self.enabled or not is_main_process():
            return None
        return plot_noise_examples(
            self.network, self.dataset, self.levels, self.png_path, model_name=self.model_name, device=self.device,
            **self.options,
        )  # fmt: skip
