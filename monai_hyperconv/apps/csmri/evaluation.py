"""Test-set evaluation of the CS-MRI bundle: per-image PSNR / SSIM of a model and of its zero-filled input.

:class:`CSMRITestReport` runs MONAI's ``SupervisedEvaluator`` with PSNR / SSIM metric handlers that keep the
per-image values, and writes them as the report CSV (:mod:`.report`) with its violin plot (:mod:`.plots`). (MONAI's
``MetricsSaver`` writes fixed file names, ``metrics.csv`` and ``<metric>_raw.csv``, so the reports of several models
evaluated into one folder would overwrite each other; the per-model CSV is written here instead.) The k-space
noise sweep reuses :class:`monai_hyperconv.handlers.NoiseSweep` with
:func:`~monai_hyperconv.transforms.kspace.make_kspace_noise`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np
import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator, default_prepare_batch
from monai.handlers import IgniteMetricHandler, from_engine
from monai.inferers import SimpleInferer
from monai.metrics import PSNRMetric, SSIMMetric
from monai.utils import CommonKeys, ImageMetaKey
from torch.utils.data import DataLoader

from monai_hyperconv.apps.csmri.plots import plot_test_violins
from monai_hyperconv.apps.csmri.report import REPORT_FIELDS
from monai_hyperconv.utils.atomic import atomic_write_csv
from monai_hyperconv.utils.distributed import is_main_process
from monai_hyperconv.utils.files import ensure_writable_dir

__all__ = ["CSMRITestReport", "image_name"]


def image_name(meta: Mapping, index: int = 0, root_dir: str | None = None) -> str:
    """A readable name of batch item ``index`` from its collated metadata: the file's path relative to ``root_dir``
    (its base name without one), plus ``_z<k>`` for a slice ``k`` of a volume."""
    names = meta.get(ImageMetaKey.FILENAME_OR_OBJ, None)
    name = names[index] if isinstance(names, (list, tuple)) else names
    if not name:
        name = f"item{index}"
    elif root_dir:
        name = os.path.relpath(str(name), root_dir).replace(os.sep, "/")
    else:
        name = os.path.basename(str(name))
    patch = meta.get(ImageMetaKey.PATCH_INDEX, None)
    if patch is not None:
        k = patch[index] if isinstance(patch, (list, tuple, torch.Tensor)) else patch
        name = f"{name}_z{int(k)}"
    return name


class CSMRITestReport:
    """Per-image test PSNR / SSIM of one model and of its zero-filled input, as CSV, plus a violin plot.

    ``run()`` writes ``<output_dir>/test_psnr_<model_name>.csv`` (``REPORT_FIELDS``) and draws every
    ``test_psnr_*.csv`` of ``output_dir`` into ``test_psnr.png`` (one violin per model and one for the zero-filled
    input), so evaluations of several models into the same ``output_dir`` compare in one figure.

    Args:
        network: the trained model.
        dataloader: test batches with the zero-filled ``image`` and the fully sampled ``label``.
        output_dir: folder of the CSV and PNG.
        model_name: label of this model.
        device: where the network runs.
        spatial_dims: for SSIM.
        inferer: ``inferer(inputs, network)``; None calls the network.
        prepare_batch: the evaluator's ``prepare_batch`` (MONAI's ``PrepareBatchExtraInput`` passes a
            data-consistency network its ``kspace`` and ``mask``); None: MONAI's default.
        root_dir: image names in the CSV are file paths relative to it (the dataset folder); None: base names.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        dataloader,
        output_dir: str,
        model_name: str = "model",
        device: str | torch.device = "cpu",
        spatial_dims: int = 2,
        inferer=None,
        root_dir: str | None = None,
        prepare_batch=None,
    ) -> None:
        self.network = network
        self.prepare_batch = prepare_batch if prepare_batch is not None else default_prepare_batch
        self.root_dir = root_dir
        self.dataloader = dataloader
        self.output_dir = output_dir
        self.model_name = model_name
        self.device = torch.device(device)
        self.spatial_dims = spatial_dims
        self.inferer = inferer
        self.logger = logging.getLogger(self.__class__.__name__)

    @property
    def csv_path(self) -> str:
        return os.path.join(self.output_dir, f"test_psnr_{self.model_name}.csv")

    @property
    def png_path(self) -> str:
        return os.path.join(self.output_dir, "test_psnr.png")

    def evaluator(self) -> SupervisedEvaluator:
        """MONAI's ``SupervisedEvaluator`` of the report: PSNR and SSIM of the reconstruction (``pred``) and of the
        zero-filled input (``image``) against ``label``, per image (the handlers' details), and the image names."""
        metrics = {
            "psnr": (PSNRMetric(max_val=1.0), CommonKeys.PRED),
            "ssim": (SSIMMetric(spatial_dims=self.spatial_dims, data_range=1.0), CommonKeys.PRED),
            "zero_filled_psnr": (PSNRMetric(max_val=1.0), CommonKeys.IMAGE),
            "zero_filled_ssim": (SSIMMetric(spatial_dims=self.spatial_dims, data_range=1.0), CommonKeys.IMAGE),
        }
        handlers = {
            name: IgniteMetricHandler(metric, output_transform=from_engine([key, CommonKeys.LABEL]), save_details=True)
            for name, (metric, key) in metrics.items()
        }
        evaluator = SupervisedEvaluator(
            device=self.device,
            val_data_loader=self.dataloader,
            epoch_length=None if isinstance(self.dataloader, DataLoader) else len(self.dataloader),
            network=self.network,
            prepare_batch=self.prepare_batch,
            inferer=self.inferer if self.inferer is not None else SimpleInferer(),
            key_val_metric={"psnr": handlers.pop("psnr")},
            additional_metrics=handlers,
            decollate=False,
        )
        evaluator.state.image_names = []
        evaluator.add_event_handler(Events.ITERATION_COMPLETED, self._record_names)
        return evaluator

    def _record_names(self, engine) -> None:
        label = engine.state.batch[CommonKeys.LABEL]
        meta = getattr(label, "meta", None) or engine.state.batch.get("label_meta_dict", {}) or {}
        engine.state.image_names += [image_name(meta, i, self.root_dir) for i in range(label.shape[0])]

    def evaluate(self) -> list[tuple]:
        """Rows ``REPORT_FIELDS`` for every test image (one evaluator run)."""
        evaluator = self.evaluator()
        evaluator.run()
        details = evaluator.state.metric_details or {}
        columns = [details[name].reshape(-1) for name in REPORT_FIELDS[2:]] if details else []
        names = evaluator.state.image_names
        return [(self.model_name, name, *(float(c[i]) for c in columns)) for i, name in enumerate(names)]

    def run(self) -> list[tuple]:
        rows = self.evaluate()
        if not rows:
            raise ValueError("CSMRITestReport: the test dataloader yielded no image.")
        mean = np.mean([r[2:] for r in rows], axis=0)
        self.logger.info(
            f"test {self.model_name}: {len(rows)} images, PSNR {mean[0]:.2f} dB, SSIM {mean[1]:.4f}; "
            f"zero-filled PSNR {mean[2]:.2f} dB, SSIM {mean[3]:.4f}"
        )
        if is_main_process():
            fmt = [(m, n, *(f"{v:.6f}" for v in vals)) for m, n, *vals in rows]
            ensure_writable_dir(self.output_dir, "report folder")
            atomic_write_csv(self.csv_path, REPORT_FIELDS, fmt)
            plot_test_violins(os.path.join(self.output_dir, "test_psnr_*.csv"), self.png_path)
        return rows
