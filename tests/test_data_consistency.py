"""k-space data consistency: the step itself, the measured k-space of the under-sampling transforms, PaperUNet's
keyword arguments, the noise sweep passing them on, and the inference refusal when the k-space is lost."""

import numpy as np
import pytest
import torch
from monai.metrics import PSNRMetric

from monai_hyperconv.apps.csmri import check_measured_kspace
from monai_hyperconv.blocks import kspace_data_consistency
from monai_hyperconv.handlers import run_noise_sweep
from monai_hyperconv.networks import PaperUNet
from monai_hyperconv.transforms.kspace import (
    KSpaceMeasurement,
    PoissonUndersample,
    PoissonUndersampled,
    centered_kspace,
    kspace_noise_factory,
)


def _image(shape=(1, 32, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, shape[-2]), torch.linspace(-1, 1, shape[-1]), indexing="ij")
    disc = ((yy**2 + xx**2) < 0.6).float() * (0.5 + 0.3 * torch.cos(4 * xx))
    return (disc + 0.05 * torch.rand(shape, generator=g)).expand(shape).clone()


def test_measure_matches_the_transform_and_keeps_only_the_sampled_kspace():
    img = _image()
    plain = PoissonUndersample(noise_std=0.1).set_random_state(3)
    measuring = PoissonUndersample(noise_std=0.1).set_random_state(3)
    zero_filled, kspace, mask = measuring.measure(img)
    assert torch.equal(zero_filled, plain(img))  # same draws, same zero-filled image
    assert kspace.shape == (*img.shape, 2) and mask.shape == (1, 32, 32)
    assert set(mask.unique().tolist()) == {0.0, 1.0} and 0.05 < float(mask.mean()) < 0.3
    assert torch.count_nonzero(kspace[0][mask[0] == 0]) == 0  # nothing outside the mask
    assert torch.count_nonzero(kspace[0][mask[0] == 1]) > 0


def test_dictionary_transform_stores_the_measurement_only_when_asked():
    img = _image()
    plain = PoissonUndersampled(keys="image")({"image": img})
    stored = PoissonUndersampled(keys="image", store_measurement="true")({"image": img})
    assert PoissonUndersampled(keys="image", store_measurement="false").store_measurement is False
    assert set(plain) == {"image"} and set(stored) == {"image", "kspace", "mask"}
    assert torch.equal(torch.as_tensor(stored["image"]), torch.as_tensor(plain["image"]))
    assert stored["kspace"].shape == (1, 32, 32, 2) and stored["mask"].shape == (1, 32, 32)
    with pytest.raises(ValueError, match="one image"):
        PoissonUndersampled(keys=["image", "label"], store_measurement=True)


def test_data_consistency_of_the_truth_is_the_truth_and_of_nothing_is_the_zero_filled_image():
    img = _image()[None]  # (1, 1, 32, 32)
    zero_filled, kspace, mask = PoissonUndersample().measure(img)
    assert torch.allclose(kspace_data_consistency(img, kspace, mask), img, atol=1e-5)
    assert torch.allclose(kspace_data_consistency(torch.zeros_like(img), kspace, mask), zero_filled, atol=1e-6)
    # a mask of ones: the measurement alone; of zeros: the prediction alone (its magnitude)
    full = centered_kspace(img[0])[None]
    assert torch.allclose(kspace_data_consistency(torch.rand_like(img), full, torch.ones(1, 1, 32, 32)), img, atol=1e-5)
    other = torch.rand_like(img)
    assert torch.allclose(kspace_data_consistency(other, kspace, torch.zeros(1, 1, 32, 32)), other, atol=1e-5)


def test_data_consistency_improves_a_wrong_prediction_and_has_finite_gradients():
    img = _image()[None]
    _, kspace, mask = PoissonUndersample().measure(img)
    blurred = torch.nn.functional.avg_pool2d(img, 5, stride=1, padding=2)  # right low frequencies, wrong edges
    err = lambda x: float(((x - img) ** 2).mean())
    assert err(kspace_data_consistency(blurred, kspace, mask)) < err(blurred)
    pred = torch.zeros_like(img, requires_grad=True)  # |0| everywhere outside the measured support
    kspace_data_consistency(pred, torch.zeros_like(kspace), mask).sum().backward()
    assert torch.isfinite(pred.grad).all()
    with pytest.raises(ValueError, match="kspace must have the image's shape"):
        kspace_data_consistency(img, kspace[..., 0], mask)


def test_paper_unet_applies_data_consistency_when_given_the_measurement():
    torch.manual_seed(0)
    net = PaperUNet(channels=2, conv="hyper", kernel_size=5, hidden_channels=(4, 4, 2), dropout=0.0).eval()
    img = _image()[None]
    zero_filled, kspace, mask = PoissonUndersample().measure(img)
    with torch.no_grad():
        plain = net(zero_filled)
        consistent = net(zero_filled, kspace=kspace, mask=mask)
        assert torch.allclose(consistent, kspace_data_consistency(plain, kspace, mask))
        assert not torch.allclose(consistent, plain)
        scripted = torch.jit.script(net)
        assert torch.allclose(scripted(zero_filled, kspace, mask), consistent, atol=1e-5)
        assert torch.allclose(scripted(zero_filled), plain, atol=1e-5)
    with pytest.raises(ValueError, match="both the measured kspace and its sampling mask"):
        net(zero_filled, kspace=kspace)


class _ZeroPrediction(torch.nn.Module):
    """A 'network' predicting nothing: with data consistency its output is the zero-filled image itself."""

    def forward(self, x, kspace=None, mask=None):
        out = torch.zeros_like(x)
        return out if kspace is None else kspace_data_consistency(out, kspace, mask)


def test_noise_sweep_passes_the_measurement_to_the_network():
    data = [{"label": torch.stack([_image(seed=s) for s in range(3)])}]
    noises = {"kspace_gaussian": [0.0, 0.2]}
    common = {"image_key": "label", "label_key": "label", "seed": 1}
    zero_filled = run_noise_sweep(torch.nn.Identity(), data, noises, PSNRMetric(1.0),
                                  noise_factory=kspace_noise_factory(), **common)  # fmt: skip
    consistent = run_noise_sweep(_ZeroPrediction(), data, noises, PSNRMetric(1.0),
                                 noise_factory=kspace_noise_factory(data_consistency=True), **common)  # fmt: skip
    without = run_noise_sweep(_ZeroPrediction(), data, noises, PSNRMetric(1.0),
                              noise_factory=kspace_noise_factory(), **common)  # fmt: skip
    assert isinstance(kspace_noise_factory(data_consistency=True)("kspace_gaussian", 0.1, 0), KSpaceMeasurement)
    np.testing.assert_allclose([r[2] for r in consistent], [r[2] for r in zero_filled], atol=1e-3)
    # without the measurement the output stays all zero, far below the zero-filled input
    assert all(w[2] < c[2] - 5 for w, c in zip(without, consistent))


def test_inference_refuses_data_consistency_on_zero_filled_inputs():
    check_measured_kspace(True, True)
    check_measured_kspace("false", "false")
    with pytest.raises(ValueError, match="needs the measured k-space"):
        check_measured_kspace("true", "false")
