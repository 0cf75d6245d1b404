"""hyperize(..., init="fit"): warm-starting kernel networks from the replaced layers' weights."""

import copy
import logging
import math

import pytest
import torch
from monai.networks.nets import UNet
from torch import nn

from monai_hyperconv import (
    HyperConvNd,
    HyperConvTransposeNd,
    PaperUNet,
    fit_report,
    hyperize,
)
from monai_hyperconv.layers.kernel_fit import fit_kernel_net, resize_kernel


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def _output_error(got, expected):
    """Error relative to the output's spatial variation: a random network's logits are mostly a per-channel
    constant (the head's bias), which would make a plain relative error look small."""
    return float((got - expected).norm() / (expected - expected.mean(dim=(0, 2, 3), keepdim=True)).norm())


def _unet():
    return UNet(2, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)


def _paper_unet():
    return PaperUNet(2, 1, 2, channels=4, kernel_size=5)


def _outputs(model, converted, x):
    with torch.no_grad():
        return model.eval()(x), converted.eval()(x)


@pytest.mark.parametrize("make", [_unet, _paper_unet], ids=["monai_unet_3x3", "paper_unet_5x5"])
def test_fit_with_n_l_at_least_taps_computes_what_the_original_did(make):
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(2, 1, 32, 32)
    converted = hyperize(copy.deepcopy(model), hidden_channels=(16, 32, 32), init="fit")
    expected, got = _outputs(model, converted, x)
    error = _output_error(got, expected)
    print(f"{make.__name__}: N_L=32 output error {error:.3g} (plain relative {_rel(got, expected):.3g})")
    assert error < 0.02 and _rel(got, expected) < 0.02
    rows = fit_report(converted)
    hyper = [m for m in converted.modules() if isinstance(m, HyperConvNd)]
    assert len(rows) == len(hyper) > 0
    assert all(r["n_l"] == 32 and r["taps"] <= 33 and r["steps"] == 0 for r in rows)  # exact: no Adam needed
    assert max(r["relative_error"] for r in rows) < 1e-3
    if make is _unet:
        assert sum(r["kind"] == "transposed" for r in rows) == 2  # transposed convs are fitted too
        assert [r["layer"] for r in rows] == [n for n, m in converted.named_modules() if isinstance(m, HyperConvNd)]


def test_fit_with_n_l_4_gives_a_larger_finite_error_and_reports_it():
    torch.manual_seed(0)
    model = _paper_unet().eval()
    x = torch.randn(2, 1, 32, 32)
    exact = hyperize(copy.deepcopy(model), hidden_channels=(16, 32, 32), init="fit")
    small = hyperize(copy.deepcopy(model), hidden_channels=(16, 16, 4), init="fit", fit_steps=20)
    expected, got_exact = _outputs(model, exact, x)
    _, got_small = _outputs(model, small, x)
    err_exact, err_small = _output_error(got_exact, expected), _output_error(got_small, expected)
    rows = fit_report(small)
    kernel_errors = [r["relative_error"] for r in rows]
    print(f"N_L=4: kernel errors {min(kernel_errors):.3g}..{max(kernel_errors):.3g}, output error {err_small:.3g}")
    assert math.isfinite(err_small) and err_small > 0.1 > 100 * err_exact
    assert all(0.1 < e < 1.0 and math.isfinite(e) for e in kernel_errors)  # 5 functions cannot span 9 or 25 taps
    assert all(r["steps"] == 20 for r in rows)
    assert all(r["relative_error"] <= r["solved_error"] + 1e-6 for r in rows)  # Adam refinement never ends worse
    assert any(r["relative_error"] < r["solved_error"] - 1e-3 for r in rows)  # and it helps


def test_bias_is_copied_and_layer_settings_kept():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    transposed = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
    model = nn.Sequential(conv, nn.ReLU(), transposed)
    converted = hyperize(copy.deepcopy(model), hidden_channels=(8, 16), init="fit")
    assert torch.equal(converted[0].bias, conv.bias) and torch.equal(converted[2].bias, transposed.bias)
    torch.testing.assert_close(converted[0].kernel(), conv.weight, rtol=0, atol=1e-5)
    torch.testing.assert_close(converted[2].kernel(), transposed.weight, rtol=0, atol=1e-5)
    x = torch.randn(1, 4, 9, 9)
    torch.testing.assert_close(*_outputs(model, converted, x)[::-1], rtol=1e-4, atol=1e-5)


def test_a_bigger_kernel_fits_the_zero_padded_one_and_keeps_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1))
    converted = hyperize(
        copy.deepcopy(model), kernel_size=5, transposed_kernel_size=5, hidden_channels=(16, 32), init="fit"
    )
    rows = fit_report(converted)
    assert [(r["kernel_size_old"], r["kernel_size_new"], r["resize"], r["cropped_error"]) for r in rows] == [
        ((3, 3), (5, 5), "pad", 0.0)
    ] * 2
    for layer, old in ((converted[0], model[0]), (converted[2], model[2])):
        kernel = layer.kernel()
        torch.testing.assert_close(kernel[..., 1:4, 1:4], old.weight, rtol=0, atol=1e-5)  # centred
        assert (
            float(kernel[..., 0, :].abs().max().detach()) < 1e-5
            and float(kernel[..., :, 4].abs().max().detach()) < 1e-5
        )
    x = torch.randn(2, 2, 8, 8)
    expected, got = _outputs(model, converted, x)
    assert got.shape == expected.shape and _rel(got, expected) < 1e-4


def test_a_smaller_kernel_fits_the_centre_crop_and_reports_the_dropped_part():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 5, padding=2)
    layer = hyperize(copy.deepcopy(conv), kernel_size=3, hidden_channels=(16, 16), init="fit")
    (row,) = fit_report(layer)
    assert (row["kernel_size_old"], row["kernel_size_new"], row["resize"]) == ((5, 5), (3, 3), "crop")
    centre = conv.weight[..., 1:4, 1:4]
    torch.testing.assert_close(layer.kernel(), centre, rtol=0, atol=1e-5)
    outer = conv.weight.detach().clone()
    outer[..., 1:4, 1:4] = 0
    assert row["cropped_error"] == pytest.approx(float(outer.norm() / conv.weight.norm()), rel=1e-5)
    assert row["layer"] == "" and layer.padding == "same"


def test_resize_kernel_keeps_every_tap_offset_from_the_centre():
    weight = torch.arange(2 * 1 * 4 * 3, dtype=torch.float32).reshape(2, 1, 4, 3)  # even: centre at index 1
    padded = resize_kernel(weight, (6, 5))  # centre moves to index 2 on both axes
    assert padded.shape == (2, 1, 6, 5)
    assert torch.equal(padded[..., 1:5, 1:4], weight) and padded.abs().sum() == weight.abs().sum()
    assert torch.equal(resize_kernel(padded, (4, 3)), weight)
    with pytest.raises(ValueError, match="spatial dim"):
        resize_kernel(weight, (3,))


def test_init_random_is_unchanged_and_fit_starts_from_the_same_hidden_layers():
    def convert(init):
        torch.manual_seed(0)
        model = _unet()
        torch.manual_seed(1)
        return model, hyperize(copy.deepcopy(model), hidden_channels=(16, 32, 32), init=init)

    _, default = convert("random")
    torch.manual_seed(0)
    model = _unet()
    torch.manual_seed(1)
    plain = hyperize(copy.deepcopy(model), hidden_channels=(16, 32, 32))  # the call without init
    assert fit_report(default) == [] and fit_report(plain) == []
    for (k, a), b in zip(default.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), k
    original, fitted = convert("fit")
    changed = {k for k, v in fitted.state_dict().items() if not torch.equal(v, default.state_dict()[k])}
    assert changed and all(".kernel_net.out." in k or k.endswith(".bias") for k in changed)
    random_kernel = next(m for m in default.modules() if isinstance(m, HyperConvTransposeNd)).kernel()
    original_kernel = next(m for m in original.modules() if isinstance(m, nn.ConvTranspose2d)).weight
    assert _rel(random_kernel, original_kernel) > 0.5  # random init does not reproduce the weights


def test_fit_is_bitwise_deterministic_for_a_fixed_seed():
    def convert():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 4, 5, padding=2), nn.ReLU(), nn.ConvTranspose2d(4, 2, 3, stride=2))
        return hyperize(model, hidden_channels=(8, 4), init="fit", fit_steps=10)

    a, b = convert().state_dict(), convert().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    w = torch.randn(4, 3, 5, 5)
    assert torch.equal(fit_kernel_net(w, (8, 4), steps=15).fitted, fit_kernel_net(w, (8, 4), steps=15).fitted)


def test_least_squares_fit_beats_plain_adam_and_is_exact_with_enough_features():
    torch.manual_seed(0)
    w = torch.randn(6, 4, 3, 3)
    exact = fit_kernel_net(w, (16, 16, 8), steps=0)  # N_L + 1 = 9 = taps
    assert _rel(exact.fitted, w) < 1e-4 and exact.final_loss < 1e-8 * exact.initial_loss
    ls = fit_kernel_net(w, (16, 16, 4), steps=50)
    adam = fit_kernel_net(w, (16, 16, 4), steps=50, least_squares=False)
    assert ls.final_loss < adam.final_loss and ls.final_loss <= ls.solved_loss


def test_one_log_line_per_fitted_layer(caplog):
    with caplog.at_level(logging.INFO, logger="monai_hyperconv.convert"):
        hyperize(_unet(), hidden_channels=(8, 16), init="fit")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hyperize fit")]
    assert len(lines) == 9 and sum("transposed kernel 3x3 -> 3x3" in line for line in lines) == 2
    assert all("relative kernel error" in line and "N_L=16" in line for line in lines)


def test_bad_init_is_named():
    with pytest.raises(ValueError, match="init"):
        hyperize(_unet(), init="copy")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_and_transposed_layers_on_cuda():
    torch.manual_seed(0)
    model = _unet().cuda().eval()
    x = torch.randn(2, 1, 32, 32, device="cuda")
    converted = hyperize(copy.deepcopy(model), hidden_channels=(16, 32, 32), init="fit")
    assert all(p.device.type == "cuda" for p in converted.parameters())
    expected, got = _outputs(model, converted, x)
    assert _output_error(got, expected) < 0.02
    assert max(r["relative_error"] for r in fit_report(converted)) < 1e-3
