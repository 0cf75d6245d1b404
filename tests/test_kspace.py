"""Poisson-disk masks, zero-filled reconstruction and the k-space noise model (monai_hyperconv.transforms.kspace)."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_hyperconv.transforms.kspace import (
    PoissonUndersample,
    PoissonUndersampled,
    default_calibration,
    make_kspace_noise,
    poisson_disk_mask,
)


def _numpy_zero_filled(image: np.ndarray, mask: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
    """Reference: |ifftshift∘ifft2∘fftshift (mask · (fftshift∘fft2∘ifftshift(image) + noise))| with orthonormal FFTs."""
    axes = tuple(range(-mask.ndim, 0))
    k = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(image, axes=axes), axes=axes, norm="ortho"), axes=axes)
    if noise is not None:
        k = k + noise
    x = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(k * mask, axes=axes), axes=axes, norm="ortho"), axes=axes)
    return np.abs(x)


def _radius(shape):
    grids = np.meshgrid(*[(np.arange(s) - s // 2) / (s / 2) for s in shape], indexing="ij")
    return np.sqrt(sum(g**2 for g in grids))


def test_mask_sampling_fraction_calibration_and_centre_density():
    shape = (128, 128)
    mask = poisson_disk_mask(shape, acceleration=8, seed=0)
    assert mask.dtype == bool and mask.shape == shape
    # sigpy stops within 0.1 of the requested acceleration: 1/8.1 .. 1/7.9 of k-space
    assert 1 / 8.1 <= mask.mean() <= 1 / 7.9
    cy, cx = default_calibration(shape)
    assert (cy, cx) == (12, 12)
    assert mask[64 - cy // 2 : 64 + cy // 2, 64 - cx // 2 : 64 + cx // 2].all()
    # variable density: the ring just outside the calibration region is denser than the periphery
    r = _radius(shape)
    inner = mask[(r > 0.2) & (r < 0.4)].mean()
    outer = mask[(r > 0.7) & (r < 1.0)].mean()
    assert inner > 2 * outer > 0
    # sigpy crops the k-space corners
    assert not mask[:10, :10].any() and not mask[-10:, -10:].any()


def test_mask_acceleration_4_keeps_a_quarter():
    mask = poisson_disk_mask((64, 64), acceleration=4, seed=3)
    assert 1 / 4.1 <= mask.mean() <= 1 / 3.9


def test_mask_deterministic_per_seed_and_returns_copies():
    a = poisson_disk_mask((64, 64), 8, seed=1)
    b = poisson_disk_mask((64, 64), 8, seed=1)
    c = poisson_disk_mask((64, 64), 8, seed=2)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    a[:] = False  # the cache must not hand out the same array
    assert poisson_disk_mask((64, 64), 8, seed=1).any()


def test_mask_3d_repeats_the_phase_encoding_plane():
    m2 = poisson_disk_mask((32, 48), 8, seed=0)
    m3 = poisson_disk_mask((5, 32, 48), 8, seed=0)
    assert m3.shape == (5, 32, 48)
    assert all((m3[i] == m2).all() for i in range(5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (64,), "acceleration": 8}, "2 or 3 sizes"),
        ({"shape": (2, 3, 4, 5), "acceleration": 8}, "2 or 3 sizes"),
        ({"shape": (64, 64), "acceleration": 1}, "acceleration"),
        ({"shape": (64, 64), "acceleration": 8, "calib": (80, 8)}, "calib"),
    ],
)
def test_mask_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        poisson_disk_mask(**kwargs)


def test_zero_filled_matches_numpy_reference_2d_batch_and_meta():
    rng = np.random.default_rng(0)
    image = rng.random((2, 48, 64)).astype(np.float32)  # two channels
    mask = poisson_disk_mask((48, 64), 8, seed=0)
    t = PoissonUndersample(acceleration=8, spatial_dims=2, seed=0)
    out = t(MetaTensor(torch.from_numpy(image), meta={"filename_or_obj": "x.nii"}))
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "x.nii"
    assert out.shape == image.shape and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), _numpy_zero_filled(image, mask), atol=1e-5)
    # a batch (B, C, H, W) gives the same per image
    batch = t(torch.from_numpy(np.stack([image, image[::-1].copy()])))
    np.testing.assert_allclose(batch[1].numpy(), _numpy_zero_filled(image[::-1], mask), atol=1e-5)
    # numpy in: a tensor out, as MONAI transforms do
    np.testing.assert_allclose(np.asarray(t(image)), out.numpy(), atol=1e-6)


def test_zero_filled_3d_matches_numpy_reference():
    image = np.random.default_rng(1).random((1, 6, 32, 32)).astype(np.float32)
    mask = poisson_disk_mask((6, 32, 32), 8, seed=0)
    out = PoissonUndersample(spatial_dims=3)(torch.from_numpy(image))
    np.testing.assert_allclose(out.numpy(), _numpy_zero_filled(image, mask), atol=1e-5)


def test_zero_filled_loses_information_but_keeps_low_frequencies():
    # a very smooth image lives in the fully sampled centre: nearly unchanged; white noise is not
    y, x = np.mgrid[:64, :64] / 64.0
    smooth = (0.5 + 0.3 * np.cos(2 * np.pi * x) * np.cos(2 * np.pi * y)).astype(np.float32)[None]
    out = PoissonUndersample()(smooth)
    assert np.abs(out - smooth).max() < 1e-4
    noise = np.random.default_rng(0).random((1, 64, 64)).astype(np.float32)
    assert np.abs(PoissonUndersample()(noise) - noise).mean() > 0.1


def test_noise_model_complex_gaussian_before_masking():
    sigma, shape = 0.1, (64, 64)
    mask = poisson_disk_mask(shape, 8, seed=0)
    t = PoissonUndersample(noise_std=sigma)
    t.set_random_state(0)
    out = t(torch.zeros(1, *shape))
    # the same noise through the numpy reference (the transform draws it as (..., 2) real/imaginary)
    draw = np.random.RandomState(0)
    draw.random_sample()  # RandomizableTransform.randomize draws the `prob` decision first
    n = draw.standard_normal((1, *shape, 2)).astype(np.float32)
    ref = _numpy_zero_filled(np.zeros((1, *shape)), mask, sigma * (n[..., 0] + 1j * n[..., 1]))
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    # orthonormal FFT: masked white noise of std sigma per component has mean squared magnitude 2 sigma^2 f
    big = PoissonUndersample(noise_std=sigma)
    big.set_random_state(1)
    power = float((big(torch.zeros(16, 1, *shape)) ** 2).mean())
    assert power == pytest.approx(2 * sigma**2 * mask.mean(), rel=0.05)
    # noise added after masking would give 2 sigma^2 instead: far off
    assert power < 0.5 * 2 * sigma**2


def test_make_kspace_noise_is_seeded_and_grows_error():
    image = torch.rand(2, 1, 32, 32)
    a = make_kspace_noise("kspace_gaussian", 0.05, seed=7)(image)
    b = make_kspace_noise("kspace_gaussian", 0.05, seed=7)(image)
    c = make_kspace_noise("kspace_gaussian", 0.05, seed=8)(image)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    clean = make_kspace_noise("kspace_gaussian", 0.0)(image)
    torch.testing.assert_close(clean, PoissonUndersample()(image))
    errors = [float(((make_kspace_noise("kspace_gaussian", s)(image) - image) ** 2).mean()) for s in (0, 0.05, 0.2)]
    assert errors[0] < errors[1] < errors[2]
    with pytest.raises(ValueError, match="kspace_gaussian"):
        make_kspace_noise("gaussian", 0.1)


def test_random_mask_per_sample_is_seeded():
    image = torch.rand(1, 32, 32)
    t = PoissonUndersample(random_mask=True)
    t.set_random_state(0)
    first, second = t(image), t(image)
    assert not torch.allclose(first, second)
    t.set_random_state(0)
    torch.testing.assert_close(t(image), first)


def test_dictionary_version_shares_mask_and_keeps_other_keys():
    image = torch.rand(1, 32, 32)
    d = PoissonUndersampled(keys=["image", "other"])({"image": image, "other": image.clone(), "label": image})
    torch.testing.assert_close(d["image"], d["other"])  # one mask for all keys
    torch.testing.assert_close(d["image"], PoissonUndersample()(image))
    assert d["label"] is image
    noisy = PoissonUndersampled(keys=["image", "other"], noise_std=0.1)
    noisy.set_random_state(0)
    n = noisy({"image": image, "other": image.clone()})
    assert not torch.allclose(n["image"], n["other"])  # independent noise per key


@pytest.mark.parametrize("shape", [(32, 32), (1, 1, 1, 32, 32), (32,)])
def test_bad_dimensionality_is_named(shape):
    with pytest.raises(ValueError, match="channel-first 2D"):
        PoissonUndersample()(torch.rand(*shape))


def test_nan_and_complex_inputs_are_rejected_with_the_file_name():
    img = MetaTensor(torch.rand(1, 32, 32), meta={"filename_or_obj": "slice_007.nii.gz"})
    img[0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"slice_007\.nii\.gz.*NaN"):
        PoissonUndersampled(keys="image")({"image": img})
    with pytest.raises(ValueError, match="complex"):
        PoissonUndersample()(torch.rand(1, 32, 32, dtype=torch.complex64))


def test_prob_zero_passes_already_zero_filled_inputs_through():
    image = torch.rand(1, 32, 32)
    out = PoissonUndersampled(keys="image", prob=0.0)({"image": image})["image"]
    torch.testing.assert_close(out, image)


def test_kspace_noise_factory_binds_the_training_mask():
    from monai_hyperconv.transforms.kspace import kspace_noise_factory

    image = torch.rand(1, 1, 32, 32)
    factory = kspace_noise_factory(acceleration=4, mask_seed=3)
    torch.testing.assert_close(factory("kspace_gaussian", 0.0, 0)(image), PoissonUndersample(4, seed=3)(image))
    assert not torch.allclose(factory("kspace_gaussian", 0.0, 0)(image), PoissonUndersample(8, seed=3)(image))


def test_poisson_disk_mask_is_public_at_the_package_level():
    """The issue's contract: ``monai_hyperconv.transforms.poisson_disk_mask(shape, acceleration, seed=...)``."""
    from monai_hyperconv import transforms

    mask = transforms.poisson_disk_mask((96, 96), 8, seed=3)
    assert mask.dtype == bool and mask.shape == (96, 96)
    assert np.array_equal(mask, transforms.poisson_disk_mask((96, 96), 8, seed=3))
