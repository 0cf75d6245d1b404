"""CS-MRI reconstruction: T1 slice discovery and split by subject, the embedded ICBM152 slices, datalists,
the slice-loading transform, test-set evaluation and its figures.
"""

from monai_hyperconv.apps.csmri.datalist import (
    csmri_inference_files,
    load_csmri_datalist,
    prepare_csmri_datalist,
    write_csmri_datalist,
)
from monai_hyperconv.apps.csmri.discovery import (
    CSMRI_SPLIT,
    NIFTI_PATTERNS,
    find_csmri_images,
    nifti_files,
    split_by_subject,
    subject_of,
)
from monai_hyperconv.apps.csmri.evaluation import CSMRITestReport, image_name
from monai_hyperconv.apps.csmri.head_slices import (
    HEAD_MANIFEST,
    HEAD_TEMPLATE,
    ensure_head_slices,
    find_head_template,
    generate_head_slices,
)
from monai_hyperconv.apps.csmri.icbm152_slices import EMBEDDED_MANIFEST, ensure_icbm152_slices, generate_icbm152_slices
from monai_hyperconv.apps.csmri.plots import NoiseExamples, plot_noise_examples, plot_test_violins
from monai_hyperconv.apps.csmri.real_scans import RealScanSummary, real_scan_items, summarize_by_volume
from monai_hyperconv.apps.csmri.report import REPORT_FIELDS, read_test_report
from monai_hyperconv.apps.csmri.transforms import (
    LoadMRISliced,
    axial_slice_index,
    check_measured_kspace,
    measurement_prepare_batch,
    undersampling_probability,
    with_slice_indices,
)

__all__ = [
    "CSMRI_SPLIT",
    "EMBEDDED_MANIFEST",
    "HEAD_MANIFEST",
    "HEAD_TEMPLATE",
    "NIFTI_PATTERNS",
    "REPORT_FIELDS",
    "CSMRITestReport",
    "LoadMRISliced",
    "NoiseExamples",
    "RealScanSummary",
    "axial_slice_index",
    "check_measured_kspace",
    "csmri_inference_files",
    "ensure_head_slices",
    "ensure_icbm152_slices",
    "find_csmri_images",
    "find_head_template",
    "generate_head_slices",
    "generate_icbm152_slices",
    "image_name",
    "load_csmri_datalist",
    "measurement_prepare_batch",
    "nifti_files",
    "plot_noise_examples",
    "plot_test_violins",
    "prepare_csmri_datalist",
    "read_test_report",
    "real_scan_items",
    "split_by_subject",
    "subject_of",
    "summarize_by_volume",
    "undersampling_probability",
    "with_slice_indices",
    "write_csmri_datalist",
]
