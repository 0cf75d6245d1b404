"""The training-recipe options: kernel-network parameter groups, kernel weight decay, the ridge warm-start fit,
and the paper-claims verdicts of the comparison report."""

import copy
import math

import pytest
import torch
from torch import nn

from monai_hyperconv import HyperConv2d, PaperUNet, hyperize
from monai_hyperconv.analysis.compare.claims import claim_verdict, paper_claims
from monai_hyperconv.analysis.compare.stats import PairedDifference
from monai_hyperconv.layers import hyper_param_groups, kernel_step_scale
from monai_hyperconv.layers.kernel_fit import solve_output_layer


def _net(n_l=4):
    torch.manual_seed(0)
    return PaperUNet(2, 1, 1, channels=4, conv="hyper", kernel_size=5, hidden_channels=(16, 16, n_l))


def test_default_groups_are_the_plain_parameters():
    net = _net()
    for scale in (None, 1, 1.0, "null", "none"):
        params = list(hyper_param_groups(net, 1e-3, scale))
        assert all(isinstance(p, nn.Parameter) for p in params)
        assert [id(p) for p in params] == [id(p) for p in net.parameters()]


def test_groups_cover_every_parameter_once_with_scaled_rates():
    net = _net()
    groups = hyper_param_groups(net, 1e-3, 0.25, kernel_weight_decay=0.5)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters())
    assert len(ids) == len(set(ids))
    layers = [m for m in net.modules() if isinstance(m, HyperConv2d)]
    assert len(groups) == 1 + 2 * len(layers)  # the rest, then hidden and output layer of each kernel network
    assert groups[0]["lr"] == 1e-3 and "weight_decay" not in groups[0]
    for g in groups[1:]:
        assert g["lr"] == pytest.approx(2.5e-4)
        assert g["weight_decay"] == (0.5 if g["name"].endswith(".out") else 0.0)
    torch.optim.Adam(groups, lr=1e-3, decoupled_weight_decay=True)  # a valid optimizer spec


def test_auto_scale_is_the_inverse_feature_norm():
    net = _net(24)
    groups = hyper_param_groups(net, 1.0, "auto")
    layers = [m for m in net.modules() if isinstance(m, HyperConv2d)]
    for layer, group in zip(layers, groups[1::2]):
        maps, _ = layer.kernel_basis()
        norm = math.sqrt(float(maps.detach().reshape(maps.shape[0], -1).double().pow(2).sum(0).mean()))
        assert group["lr"] == pytest.approx(1.0 / norm) == pytest.approx(kernel_step_scale(layer))
        assert 0 < group["lr"] < 1  # the ones column alone has norm 1


@pytest.mark.parametrize("bad", [{"kernel_lr_scale": "fast"}, {"kernel_lr_scale": -1.0},
                                 {"kernel_weight_decay": -0.1}, {"kernel_weight_decay": float("nan")}])  # fmt: skip
def test_bad_recipe_settings_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        hyper_param_groups(_net(), 1e-3, **{"kernel_lr_scale": 0.5, **bad})


def test_kernel_weight_decay_scales_the_generated_kernel():
    """Decoupled decay of the output layer alone multiplies the kernel by (1 - lr * decay): it decays the kernel."""
    torch.manual_seed(0)
    layer = HyperConv2d(3, 4, 5)
    before = layer.kernel().detach().clone()
    optimizer = torch.optim.Adam(hyper_param_groups(layer, 0.1, 1.0, 0.5), lr=0.1, decoupled_weight_decay=True)
    for p in layer.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only the decay acts (Adam's step of a zero gradient is 0)
    optimizer.step()
    torch.testing.assert_close(layer.kernel().detach(), before * (1 - 0.1 * 0.5))


def test_ridge_solve_bounds_the_output_weights():
    """N_L + 1 = taps: the exact solve fits any kernel with output weights in the hundreds; the ridge solve fits a
    smooth kernel closely with weights about 1, and its error grows with the ridge."""
    torch.manual_seed(0)
    layer = HyperConv2d(4, 4, 5, hidden_channels=(16, 16, 24)).double()
    x, y = layer.grid[:, 0], layer.grid[:, 1]
    smooth = torch.stack([torch.exp(-(x**2 + y**2) / 4), x / 2, y / 2, torch.ones_like(x), x * y / 4])
    target = 0.1 * torch.randn(16, 5, dtype=torch.float64) @ smooth
    errors, largest = [], []
    for ridge in (0.0, 1e-6, 1e-4, 1e-3):
        net = copy.deepcopy(layer.kernel_net)
        solve_output_layer(net, layer.grid, target, ridge=ridge)
        with torch.no_grad():
            errors.append(float((net(layer.grid) - target).norm() / target.norm()))
        largest.append(float(net.out.weight.abs().max()))
    assert errors[0] < 1e-9 and largest[0] > 50
    assert errors == sorted(errors) and largest == sorted(largest, reverse=True)
    assert errors[2] < 0.25 and largest[2] < 2


def test_hyperize_fit_ridge_reaches_the_layers():
    torch.manual_seed(0)
    unet = PaperUNet(2, 1, 1, channels=4, conv="regular", kernel_size=5)
    exact = hyperize(copy.deepcopy(unet), hidden_channels=(16, 16, 24), init="fit", fit_steps=0)
    torch.manual_seed(0)
    ridge = hyperize(copy.deepcopy(unet), hidden_channels=(16, 16, 24), init="fit", fit_steps=0, fit_ridge=1e-3)

    def largest(net):
        return max(float(m.kernel_net.out.weight.abs().max()) for m in net.modules() if isinstance(m, HyperConv2d))

    assert largest(ridge) < largest(exact)


def _diff(low, high):
    return PairedDifference(5, (low + high) / 2, 0.1, low, high, [0, 1, 2, 3, 4])


def test_claim_verdicts():
    assert claim_verdict(_diff(0.01, 0.2), higher_is_claimed=True) == "supported"
    assert claim_verdict(_diff(-0.2, -0.01), higher_is_claimed=True) == "contradicted"
    assert claim_verdict(_diff(-0.1, 0.1), higher_is_claimed=True) == "not shown"
    assert claim_verdict(_diff(-0.2, -0.01), higher_is_claimed=False) == "supported"
    assert claim_verdict(None, True) == "not shown"


def test_paper_claims_from_runs():
    rows = []
    for seed in range(4):
        # the hyper model: better test Dice by ~0.1, same train Dice (smaller gap), smoother kernels
        rows.append({"model": "unet", "seed": seed, "test_dice": 0.6 + 0.01 * seed, "train_dice": 0.9,
                     "kernel_smoothness": 0.5})  # fmt: skip
        rows.append({"model": "hyper", "seed": seed, "test_dice": 0.7 + 0.012 * seed, "train_dice": 0.9,
                     "kernel_smoothness": 0.2 + 0.01 * seed})  # fmt: skip
    curves = {
        "unet": {("gaussian", 0.2): {s: 0.3 for s in range(4)}},
        "hyper": {("gaussian", 0.2): {s: 0.6 + 0.012 * s for s in range(4)}},
    }
    claims = {c.claim: c for c in paper_claims(rows, ["unet", "hyper"], "unet", "dice", curves)}
    assert claims["better clean test figure"].verdict == "supported"
    assert claims["smaller train-test gap"].verdict == "supported"
    assert claims["more robust to gaussian noise"].verdict == "supported"  # drop -0.1 against -0.3..-0.33
    assert claims["smoother kernels"].verdict == "supported"
    assert all(c.model == "hyper" for c in claims.values())


def test_kernel_init_sets_the_initial_kernel_scale():
    torch.manual_seed(0)
    he = HyperConv2d(16, 16, 5)
    torch.manual_seed(0)
    small = HyperConv2d(16, 16, 5, kernel_init="torch")
    fan_in = 16 * 25
    assert float(he.kernel().std()) == pytest.approx(math.sqrt(2 / fan_in), rel=1e-4)
    assert float(small.kernel().std()) == pytest.approx(math.sqrt(1 / (3 * fan_in)), rel=1e-4)
    reference = nn.Conv2d(16, 16, 5)  # torch's default init: the scale "torch" matches
    assert float(small.kernel().std()) == pytest.approx(float(reference.weight.std()), rel=0.1)
    assert "kernel_init='torch'" in repr(small)
    with pytest.raises(ValueError, match="kernel_init"):
        HyperConv2d(4, 4, 3, kernel_init="xavier")


def test_reinit_hyper_kernels():
    from monai_hyperconv.layers import reinit_hyper_kernels

    net = _net()
    state = copy.deepcopy(net.state_dict())
    rng = torch.get_rng_state()
    assert reinit_hyper_kernels(net, None) is net and reinit_hyper_kernels(net, "null") is net
    assert torch.equal(torch.get_rng_state(), rng)  # null draws nothing: a run without it is unchanged
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    reinit_hyper_kernels(net, "torch")
    layers = [m for m in net.modules() if isinstance(m, HyperConv2d)]
    for layer in layers:
        assert layer.kernel_init == "torch"
        assert float(layer.kernel().std()) == pytest.approx(math.sqrt(1 / (3 * layer.fan_in)), rel=1e-3)
    with pytest.raises(ValueError, match="kernel_init"):
        reinit_hyper_kernels(net, "big")
