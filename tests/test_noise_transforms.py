"""Test-time noise transforms: statistics of the added noise, seeding, dictionary versions."""

import numpy as np
import pytest
import torch

from monai_hyperconv.transforms import (
    RandSaltPepperNoise,
    RandSaltPepperNoised,
    RandSpeckleNoise,
    RandSpeckleNoised,
    make_test_noise,
)


def _image(shape=(1, 128, 128)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1  # in [0.1, 0.9]


@pytest.mark.parametrize("amount", [0.02, 0.1, 0.3])
def test_salt_pepper_fraction_and_values(amount):
    x = _image()
    t = RandSaltPepperNoise(prob=1.0, amount=amount)
    t.set_random_state(0)
    y = torch.as_tensor(t(x))
    changed = y != x
    n = x.numel()
    tol = 4 * np.sqrt(amount * (1 - amount) / n)  # 4 binomial standard deviations
    assert abs(changed.float().mean().item() - amount) < tol
    # replaced voxels are the image's extremes, about half each
    assert set(torch.unique(y[changed]).tolist()) <= {x.max().item(), x.min().item()}
    salt = (y[changed] == x.max()).float().mean().item()
    assert abs(salt - 0.5) < 4 * np.sqrt(0.25 / changed.sum().item())
    assert torch.equal(y[~changed], x[~changed])


def test_salt_pepper_explicit_values_zero_level_and_prob():
    x = _image()
    y = torch.as_tensor(RandSaltPepperNoise(prob=1.0, amount=0.5, salt=2.0, pepper=-1.0)(x))
    assert set(torch.unique(y[y != x]).tolist()) == {2.0, -1.0}
    assert torch.equal(torch.as_tensor(RandSaltPepperNoise(prob=1.0, amount=0.0)(x)), x)
    assert torch.equal(torch.as_tensor(RandSaltPepperNoise(prob=0.0, amount=0.5)(x)), x)
    with pytest.raises(ValueError, match="amount"):
        RandSaltPepperNoise(amount=1.5)


@pytest.mark.parametrize("std", [0.05, 0.3])
def test_speckle_is_multiplicative_with_the_given_std(std):
    x = _image((1, 256, 256))
    t = RandSpeckleNoise(prob=1.0, std=std)
    t.set_random_state(3)
    y = torch.as_tensor(t(x))
    ratio = (y - x) / x  # the multiplicative noise n
    assert abs(ratio.std().item() - std) < 0.03 * std
    assert abs(ratio.mean().item()) < 4 * std / np.sqrt(x.numel())
    # zero intensity stays zero (multiplicative, unlike Gaussian noise)
    assert torch.equal(torch.as_tensor(t(torch.zeros(1, 8, 8))), torch.zeros(1, 8, 8))


def test_seeding_reproduces_and_differs():
    x = _image()
    a = make_test_noise("speckle", 0.2, seed=5)(x)
    b = make_test_noise("speckle", 0.2, seed=5)(x)
    c = make_test_noise("speckle", 0.2, seed=6)(x)
    assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    assert not torch.equal(torch.as_tensor(a), torch.as_tensor(c))


def test_make_test_noise_levels():
    x = _image((1, 256, 256))
    # Gaussian: the std is the level on every call (not sampled in [0, level] as RandGaussianNoise's default)
    g = make_test_noise("gaussian", 0.1, seed=0)
    for _ in range(3):
        assert abs((torch.as_tensor(g(x)) - x).std().item() - 0.1) < 0.003
    sp = make_test_noise("salt_pepper", 0.05, seed=0)
    assert abs((torch.as_tensor(sp(x)) != x).float().mean().item() - 0.05) < 0.003
    for kind in ("salt_pepper", "gaussian", "speckle"):
        assert torch.allclose(torch.as_tensor(make_test_noise(kind, 0.0)(x)), x)
    with pytest.raises(ValueError, match="Unknown noise kind"):
        make_test_noise("poisson", 0.1)


@pytest.mark.parametrize("cls,kwargs", [(RandSaltPepperNoised, {"amount": 0.2}), (RandSpeckleNoised, {"std": 0.2})])
def test_dictionary_versions_share_one_draw(cls, kwargs):
    x = _image()
    t = cls(keys=["a", "b"], prob=1.0, **kwargs)
    t.set_random_state(0)
    out = t({"a": x, "b": x.clone(), "c": x})
    assert torch.equal(torch.as_tensor(out["a"]), torch.as_tensor(out["b"]))
    assert not torch.equal(torch.as_tensor(out["a"]), x)
    assert out["c"] is x
    skipped = cls(keys=["a"], prob=0.0, **kwargs)({"a": x})
    assert torch.equal(torch.as_tensor(skipped["a"]), x)
