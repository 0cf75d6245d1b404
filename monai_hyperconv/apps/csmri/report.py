"""The CS-MRI test report file: per-image PSNR / SSIM of a model and of its zero-filled input (CSV)."""

from __future__ import annotations

import csv

__all__ = ["REPORT_FIELDS", "read_test_report"]

REPORT_FIELDS = ("model", "image", "psnr", "ssim", "zero_filled_psnr", "zero_filled_ssim")


def read_test_report(path: str) -> list[dict]:
    """Rows of a CSV of :class:`~monai_hyperconv.apps.csmri.evaluation.CSMRITestReport` (numbers as floats).

    Raises:
        ValueError: naming the file when its header is not ``REPORT_FIELDS``.
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != REPORT_FIELDS:
            raise ValueError(f"{path}: expected the header {','.join(REPORT_FIELDS)}, got {reader.fieldnames}.")
        return [{k: (v if k in ("model", "image") else float(v)) for k, v in row.items()} for row in reader]
