"""Generic MONAI-style transforms of the plugin: test-time noise, k-space under-sampling and zero-filled
reconstruction, resizing with a smooth inverse, and the bundles' input checks: :class:`CheckedLoadImaged` (MONAI's
``LoadImaged`` whose errors name the file, safe from any number of threads) and :class:`CheckImageLabeld` with the
``check_*`` functions it applies (every error names the file or key and what was expected). Task-only transforms live with their task in
:mod:`monai_hyperconv.apps` (e.g. the MS orthogonal-plane slicing in :mod:`monai_hyperconv.apps.ms.transforms`)."""

from monai_hyperconv.transforms.io import CheckedLoadImaged
from monai_hyperconv.transforms.kspace import (
    PoissonUndersample,
    PoissonUndersampled,
    centered_kspace,
    kspace_noise_factory,
    make_kspace_noise,
    poisson_disk_mask,
    zero_filled_recon,
)
from monai_hyperconv.transforms.noise import (
    TEST_NOISE_KINDS,
    RandSaltPepperNoise,
    RandSaltPepperNoised,
    RandSpeckleNoise,
    RandSpeckleNoised,
    make_test_noise,
)
from monai_hyperconv.transforms.resize import SmoothInverseResize, SmoothInverseResized
from monai_hyperconv.transforms.validation import (
    CheckImageLabeld,
    check_affine,
    check_dimensions,
    check_finite,
    check_label_values,
    check_same_spatial_shape,
)

__all__ = [
    "TEST_NOISE_KINDS",
    "CheckImageLabeld",
    "CheckedLoadImaged",
    "PoissonUndersample",
    "PoissonUndersampled",
    "RandSaltPepperNoise",
    "RandSaltPepperNoised",
    "RandSpeckleNoise",
    "RandSpeckleNoised",
    "SmoothInverseResize",
    "SmoothInverseResized",
    "centered_kspace",
    "check_affine",
    "check_dimensions",
    "check_finite",
    "check_label_values",
    "check_same_spatial_shape",
    "kspace_noise_factory",
    "make_kspace_noise",
    "make_test_noise",
    "poisson_disk_mask",
    "zero_filled_recon",
]
