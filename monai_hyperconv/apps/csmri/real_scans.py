"""The real-scan check of the CS-MRI bundle: a folder of T1 volumes as a test set, summarised per volume.

Every NIfTI file of the folder is test data (no split): each 3D volume gives ``slices_per_volume`` axial slices
evenly spaced over ``slice_range`` of its axial extent, each 2D file one slice (:func:`real_scan_items`). The
bundle's ``configs/real_scans.yaml`` runs the usual test report (per-slice PSNR / SSIM of the model and of its
zero-filled input), the k-space noise sweep and the example panel on them, then :class:`RealScanSummary` writes the
per-volume means.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence

import numpy as np

from monai_hyperconv.apps.csmri.discovery import find_csmri_images
from monai_hyperconv.apps.csmri.report import read_test_report
from monai_hyperconv.utils.atomic import atomic_write_csv
from monai_hyperconv.utils.distributed import is_main_process

__all__ = ["VOLUME_FIELDS", "RealScanSummary", "real_scan_items", "summarize_by_volume"]

#: columns of the per-volume summary CSV
VOLUME_FIELDS = (
    "model",
    "volume",
    "slices",
    "psnr",
    "zero_filled_psnr",
    "psnr_gain",
    "min_slice_psnr_gain",
    "ssim",
    "zero_filled_ssim",
    "slices_above_zero_filled",
)

logger = logging.getLogger(__name__)


def real_scan_items(
    folder: str | None, slices_per_volume: int = 9, slice_range: Sequence[float] = (0.3, 0.7)
) -> list[dict]:
    """Test items for every T1 NIfTI file under ``folder`` (all of them test: no split).

    Raises:
        ValueError: when ``folder`` is not given (``real_scans_dir`` of the bundle).
        FileNotFoundError: naming ``folder`` when it does not exist or holds no ``.nii`` / ``.nii.gz`` file.
    """
    if not folder:
        raise ValueError("real_scans_dir is not set: give --real_scans_dir /folder/of/T1 (NIfTI volumes or slices).")
    items = find_csmri_images(str(folder), int(slices_per_volume), slice_range)
    if not items:
        raise FileNotFoundError(f"No .nii / .nii.gz file under the real-scan folder {folder!r}.")
    return items


def _volume_of(image: str) -> str:
    return re.sub(r"_z\d+$", "", image)


def summarize_by_volume(report_csv: str) -> list[dict]:
    """Per-volume means of a test report CSV (:class:`~monai_hyperconv.apps.csmri.evaluation.CSMRITestReport`).

    A slice name ``<file>_z<k>`` belongs to volume ``<file>``. ``psnr_gain`` is the mean PSNR of the model minus that
    of the zero-filled input (dB), ``min_slice_psnr_gain`` the smallest gain of one slice.
    """
    rows = read_test_report(report_csv)
    volumes: dict[str, list[dict]] = {}
    for r in rows:
        volumes.setdefault(_volume_of(r["image"]), []).append(r)
    out = []
    for volume, rs in volumes.items():
        col = {k: np.array([r[k] for r in rs]) for k in ("psnr", "ssim", "zero_filled_psnr", "zero_filled_ssim")}
        gain = col["psnr"] - col["zero_filled_psnr"]
        out.append(
            {
                "model": rs[0]["model"],
                "volume": volume,
                "slices": len(rs),
                "psnr": float(col["psnr"].mean()),
                "zero_filled_psnr": float(col["zero_filled_psnr"].mean()),
                "psnr_gain": float(gain.mean()),
                "min_slice_psnr_gain": float(gain.min()),
                "ssim": float(col["ssim"].mean()),
                "zero_filled_ssim": float(col["zero_filled_ssim"].mean()),
                "slices_above_zero_filled": int((gain > 0).sum()),
            }
        )
    return out


class RealScanSummary:
    """``run()`` writes ``<output_dir>/real_scans_<model_name>.csv``: :func:`summarize_by_volume` of the test report
    ``<output_dir>/test_psnr_<model_name>.csv``, and logs it as a table.

    Args:
        output_dir: folder of the report and of the summary.
        model_name: the report's model.
    """

    def __init__(self, output_dir: str, model_name: str = "model") -> None:
        self.output_dir = output_dir
        self.model_name = model_name

    @property
    def csv_path(self) -> str:
        return os.path.join(self.output_dir, f"real_scans_{self.model_name}.csv")

    def run(self) -> list[dict] | None:
        if not is_main_process():
            return None
        report = os.path.join(self.output_dir, f"test_psnr_{self.model_name}.csv")
        rows = summarize_by_volume(report)
        fmt = [[f"{r[k]:.4f}" if isinstance(r[k], float) else r[k] for k in VOLUME_FIELDS] for r in rows]
        atomic_write_csv(self.csv_path, VOLUME_FIELDS, fmt)
        for r in rows:
            logger.info(
                f"real scan {r['volume']} ({r['slices']} slices), {self.model_name}: PSNR {r['psnr']:.2f} dB vs "
                f"zero-filled {r['zero_filled_psnr']:.2f} dB (gain {r['psnr_gain']:+.2f}, worst slice "
                f"{r['min_slice_psnr_gain']:+.2f}); SSIM {r['ssim']:.3f} vs {r['zero_filled_ssim']:.3f}"
            )
        return rows
