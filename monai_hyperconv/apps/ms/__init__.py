"""MS lesion segmentation (ISBI 2015): layout and folds, MRI phantoms, orthogonal-plane slicing, the
three-plane inferer, fold reports.
"""

from monai_hyperconv.apps.ms.datalist import prepare_ms_datalist
from monai_hyperconv.apps.ms.inferer import OrthogonalPlaneInferer
from monai_hyperconv.apps.ms.isbi import (
    ISBI_CONTRASTS,
    find_isbi_images,
    gold_standard,
    image_id,
    isbi_fold,
    isbi_has_data,
    labelled_subjects,
    num_isbi_folds,
    prediction_name,
    select_isbi_images,
)
from monai_hyperconv.apps.ms.phantoms import (
    TISSUE_INTENSITIES,
    Lesion,
    PhantomSubject,
    ensure_ms_dataset,
    generate_ms_phantoms,
    lesion_map,
    make_phantom_subject,
    rater_masks,
    synthesize,
)
from monai_hyperconv.apps.ms.planes import as_plain_tensor, pad_to_square, plane_slices, square_slice_size, unpad_square
from monai_hyperconv.apps.ms.reports import (
    batch_image_meta,
    evaluation_dir,
    read_metric_details,
    summarize_folds,
    write_fold_dice,
    write_fold_dice_report,
)
from monai_hyperconv.apps.ms.transforms import CheckISBIFilesd, GoldStandardd, OrthogonalSliced, RandOrthogonalSliced

__all__ = [
    "ISBI_CONTRASTS",
    "TISSUE_INTENSITIES",
    "CheckISBIFilesd",
    "GoldStandardd",
    "Lesion",
    "OrthogonalPlaneInferer",
    "OrthogonalSliced",
    "PhantomSubject",
    "RandOrthogonalSliced",
    "as_plain_tensor",
    "batch_image_meta",
    "ensure_ms_dataset",
    "evaluation_dir",
    "find_isbi_images",
    "generate_ms_phantoms",
    "gold_standard",
    "image_id",
    "isbi_fold",
    "isbi_has_data",
    "labelled_subjects",
    "lesion_map",
    "make_phantom_subject",
    "num_isbi_folds",
    "pad_to_square",
    "plane_slices",
    "prediction_name",
    "prepare_ms_datalist",
    "rater_masks",
    "read_metric_details",
    "select_isbi_images",
    "square_slice_size",
    "summarize_folds",
    "synthesize",
    "unpad_square",
    "write_fold_dice",
    "write_fold_dice_report",
]
