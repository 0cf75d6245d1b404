"""Datalists of the real datasets and generators of the embedded (synthetic) ones."""

from monai_hyperconv.data.lits import (
    LITS_LABELS,
    LITS_SPLIT,
    find_lits_pairs,
    lits_inference_files,
    load_lits_datalist,
    prepare_lits_datalist,
    split_counts,
    split_lits,
    write_datalist,
)
from monai_hyperconv.data.synthetic_ct import ensure_synthetic_lits, generate_synthetic_lits, synthetic_ct_volume

__all__ = [
    "LITS_LABELS",
    "LITS_SPLIT",
    "find_lits_pairs",
    "lits_inference_files",
    "load_lits_datalist",
    "prepare_lits_datalist",
    "split_counts",
    "split_lits",
    "write_datalist",
    "ensure_synthetic_lits",
    "generate_synthetic_lits",
    "synthetic_ct_volume",
]
