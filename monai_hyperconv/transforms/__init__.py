"""MONAI-style transforms of the plugin: test-time noise, k-space under-sampling (CS-MRI), MS slicing, resizing
with a smooth inverse."""

from monai_hyperconv.transforms.kspace import (
    PoissonUndersample,
    PoissonUndersampled,
    centered_kspace,
    kspace_noise_factory,
    make_kspace_noise,
    poisson_disk_mask,
    zero_filled_recon,
)
from monai_hyperconv.transforms.ms import (
    CheckISBIFilesd,
    GoldStandardd,
    OrthogonalPlaneInferer,
    OrthogonalSliced,
    RandOrthogonalSliced,
)
from monai_hyperconv.transforms.resize import SmoothInverseResize, SmoothInverseResized
from monai_hyperconv.transforms.noise import (
    TEST_NOISE_KINDS,
    RandSaltPepperNoise,
    RandSaltPepperNoised,
    RandSpeckleNoise,
    RandSpeckleNoised,
    make_test_noise,
)

__all__ = [
    "CheckISBIFilesd",
    "GoldStandardd",
    "OrthogonalPlaneInferer",
    "OrthogonalSliced",
    "PoissonUndersample",
    "PoissonUndersampled",
    "RandOrthogonalSliced",
    "RandSaltPepperNoise",
    "RandSaltPepperNoised",
    "RandSpeckleNoise",
    "RandSpeckleNoised",
    "SmoothInverseResize",
    "SmoothInverseResized",
    "TEST_NOISE_KINDS",
    "centered_kspace",
    "kspace_noise_factory",
    "make_kspace_noise",
    "make_test_noise",
    "poisson_disk_mask",
    "zero_filled_recon",
]
