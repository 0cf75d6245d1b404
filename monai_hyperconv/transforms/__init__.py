"""MONAI-style transforms of the plugin: test-time noise (robustness sweeps)."""

from monai_hyperconv.transforms.noise import (
    TEST_NOISE_KINDS,
    RandSaltPepperNoise,
    RandSaltPepperNoised,
    RandSpeckleNoise,
    RandSpeckleNoised,
    make_test_noise,
)

__all__ = [
    "RandSaltPepperNoise",
    "RandSaltPepperNoised",
    "RandSpeckleNoise",
    "RandSpeckleNoised",
    "TEST_NOISE_KINDS",
    "make_test_noise",
]
