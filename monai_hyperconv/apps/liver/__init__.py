"""Liver lesion segmentation (LiTS): dataset layout, seeded split and datalists, the synthetic CT generator."""

from monai_hyperconv.apps.liver.lits import (
    LITS_LABELS,
    LITS_SPLIT,
    find_lits_pairs,
    lits_inference_files,
    lits_output_postfix,
    load_lits_datalist,
    prepare_lits_datalist,
    split_counts,
    split_lits,
    write_datalist,
)
from monai_hyperconv.apps.liver.synthetic_ct import (
    MARKER_FILENAME,
    ensure_synthetic_lits,
    generate_synthetic_lits,
    synthetic_ct_volume,
)

__all__ = [
    "LITS_LABELS",
    "LITS_SPLIT",
    "MARKER_FILENAME",
    "ensure_synthetic_lits",
    "find_lits_pairs",
    "generate_synthetic_lits",
    "lits_inference_files",
    "lits_output_postfix",
    "load_lits_datalist",
    "prepare_lits_datalist",
    "split_counts",
    "split_lits",
    "synthetic_ct_volume",
    "write_datalist",
]
