"""Datalists of the real datasets (LiTS, ISBI 2015, T1 MRI folders) and generators of the embedded ones."""

from monai_hyperconv.data.csmri import (
    csmri_inference_files,
    ensure_icbm152_slices,
    find_csmri_images,
    generate_icbm152_slices,
    prepare_csmri_datalist,
)
from monai_hyperconv.data.icbm152 import ICBM152Template, load_icbm152
from monai_hyperconv.data.isbi import ISBI_CONTRASTS, find_isbi_images, gold_standard, isbi_fold, num_isbi_folds
from monai_hyperconv.data.lits import (
    LITS_LABELS,
    LITS_SPLIT,
    find_lits_pairs,
    lits_inference_files,
    check_predictions_spare_inputs,
    load_lits_datalist,
    prepare_lits_datalist,
    split_counts,
    split_lits,
    write_datalist,
)
from monai_hyperconv.data.ms_phantoms import ensure_ms_dataset, generate_ms_phantoms
from monai_hyperconv.data.synthetic_ct import ensure_synthetic_lits, generate_synthetic_lits, synthetic_ct_volume

__all__ = [
    "ICBM152Template",
    "ISBI_CONTRASTS",
    "csmri_inference_files",
    "ensure_icbm152_slices",
    "ensure_ms_dataset",
    "find_csmri_images",
    "find_isbi_images",
    "generate_icbm152_slices",
    "generate_ms_phantoms",
    "gold_standard",
    "isbi_fold",
    "load_icbm152",
    "num_isbi_folds",
    "prepare_csmri_datalist",
    "LITS_LABELS",
    "LITS_SPLIT",
    "find_lits_pairs",
    "lits_inference_files",
    "check_predictions_spare_inputs",
    "load_lits_datalist",
    "prepare_lits_datalist",
    "split_counts",
    "split_lits",
    "write_datalist",
    "ensure_synthetic_lits",
    "generate_synthetic_lits",
    "synthetic_ct_volume",
]
