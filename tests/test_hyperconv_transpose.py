"""Transposed hyper-convolutions: equivalence with torch's transposed convolution, init, cache, factory, convert."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from monai.networks.nets import UNet
from torch import nn

import monai_hyperconv
from monai_hyperconv import (
    HyperConvTranspose1d,
    HyperConvTranspose2d,
    HyperConvTranspose3d,
    HyperConvTransposeNd,
    hyperize,
    materialize,
)

LAYERS = {1: HyperConvTranspose1d, 2: HyperConvTranspose2d, 3: HyperConvTranspose3d}
TORCH = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
FUNCTIONAL = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}

# (kernel, stride, padding, output_padding, dilation, groups, bias)
CONFIGS = [
    (3, 1, 0, 0, 1, 1, True),
    (3, 2, 1, 1, 1, 1, True),
    (2, 2, 0, 0, 1, 1, False),
    (4, 3, 1, 2, 1, 2, True),
    (3, 2, 2, 1, 2, 1, False),
    (5, 3, 0, 1, 2, 2, True),
    (3, 1, 1, 1, 2, 1, True),  # output_padding below dilation with stride 1
]


def _size(dims):
    return {1: 9, 2: 7, 3: 5}[dims]


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("kernel, stride, padding, output_padding, dilation, groups, bias", CONFIGS)
def test_forward_equals_torch_conv_transpose_on_generated_kernel(
    dims, kernel, stride, padding, output_padding, dilation, groups, bias
):
    torch.manual_seed(0)
    cin, cout = 4, 6
    layer = LAYERS[dims](cin, cout, kernel, stride, padding, output_padding, groups, bias, dilation)
    reference = TORCH[dims](cin, cout, kernel, stride, padding, output_padding, groups, bias, dilation)
    x = torch.randn(2, cin, *([_size(dims)] * dims))
    weight = layer.kernel()
    assert weight.shape == reference.weight.shape == (cin, cout // groups, *([kernel] * dims))
    y = layer(x)
    expected = FUNCTIONAL[dims](x, weight, layer.bias, stride, padding, output_padding, groups, dilation)
    torch.testing.assert_close(y, expected)
    with torch.no_grad():
        reference.weight.copy_(weight)
        if bias:
            reference.bias.copy_(layer.bias)
        torch.testing.assert_close(y, reference(x))  # same shape and values as nn.ConvTranspose{d}d
    assert (layer.bias is None) == (not bias)


def test_output_size_picks_the_output_padding_as_torch_does():
    torch.manual_seed(0)
    layer = HyperConvTranspose2d(3, 2, 3, stride=3, padding=1)
    reference = nn.ConvTranspose2d(3, 2, 3, stride=3, padding=1)
    with torch.no_grad():
        reference.weight.copy_(layer.kernel())
        reference.bias.copy_(layer.bias)
    x = torch.randn(1, 3, 5, 6)
    for size in [(13, 16), (15, 17), [1, 2, 14, 18]]:
        torch.testing.assert_close(layer(x, output_size=size), reference(x, output_size=size))
    with pytest.raises(ValueError, match="output size"):
        layer(x, output_size=(20, 20))


@pytest.mark.parametrize("dims, cin, cout, kernel, groups", [(1, 3, 8, 5, 1), (2, 8, 6, 3, 2), (3, 4, 4, 2, 4)])
def test_init_uses_torch_transposed_fan_in(dims, cin, cout, kernel, groups):
    torch.manual_seed(1)
    layer = LAYERS[dims](cin, cout, kernel, groups=groups)
    torch_fan_in, _ = nn.init._calculate_fan_in_and_fan_out(TORCH[dims](cin, cout, kernel, groups=groups).weight)
    assert layer.fan_in == torch_fan_in == cout // groups * kernel**dims
    target = math.sqrt(2.0 / torch_fan_in)
    with torch.no_grad():
        assert float(layer.kernel().std()) == pytest.approx(target, rel=1e-4)
    assert float(layer.bias.abs().max()) <= 1.0 / math.sqrt(torch_fan_in)


def test_parameter_count_ignores_kernel_size_and_matches_the_regular_layer():
    small = HyperConvTranspose2d(8, 4, 2, stride=2)
    large = HyperConvTranspose2d(8, 4, 7, stride=2)
    regular = monai_hyperconv.HyperConv2d(8, 4, 3)  # same in * out: same kernel network size
    count = [sum(p.numel() for p in m.parameters()) for m in (small, large, regular)]
    assert count[0] == count[1] == count[2]


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_gradients_reach_every_kernel_network_parameter(dims):
    layer = LAYERS[dims](3, 4, 3, stride=2, padding=1, output_padding=1)
    layer(torch.randn(1, 3, *([4] * dims))).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_kernel_cache_is_reused_and_invalidated_by_an_optimizer_step():
    torch.manual_seed(0)
    layer = HyperConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        first = layer.kernel()
        assert layer.kernel() is first  # reused
        y0 = layer(x)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(x).square().mean().backward()
    opt.step()
    with torch.no_grad():
        second = layer.kernel()
        assert second is not first and not torch.equal(second, first)
        torch.testing.assert_close(second, layer._generate_kernel())  # the cache holds the new kernel
        assert not torch.equal(layer(x), y0)
    assert layer.kernel().requires_grad  # regenerated with a graph when gradients are recorded


def test_monai_factory_resolves_hypertrans():
    assert "hypertrans".upper() in Conv.names and "convtrans".upper() in Conv.names  # a name of its own
    for dims, cls in LAYERS.items():
        assert Conv["hypertrans", dims] is cls
    assert Conv["convtrans", 2] is nn.ConvTranspose2d  # MONAI's own entry is untouched
    with pytest.raises(ValueError, match="spatial dims"):
        Conv["hypertrans", 4]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="zeros"):
        HyperConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="output_padding"):
        HyperConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(TypeError, match="padding"):
        HyperConvTranspose2d(2, 2, 3, padding="same")
    with pytest.raises(ValueError, match="groups"):
        HyperConvTranspose2d(3, 2, 3, groups=2)
    with pytest.raises(ValueError, match="expects input"):
        HyperConvTranspose2d(2, 2, 3)(torch.randn(1, 3, 4, 4))


def test_state_dict_round_trip_and_dtype():
    torch.manual_seed(0)
    a = HyperConvTranspose3d(2, 3, 3, stride=2, dtype=torch.float64)
    b = HyperConvTranspose3d(2, 3, 3, stride=2, dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    assert a.kernel().dtype == torch.float64
    torch.testing.assert_close(b.kernel(), a.kernel())


# -- hyperize / materialize ------------------------------------------------------------------------------------
def _unet():
    return UNet(2, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)


def test_hyperize_replaces_the_transposed_convs_of_a_monai_unet_and_materialize_restores_them():
    torch.manual_seed(0)
    model = _unet().eval()
    n_transposed = sum(type(m) is nn.ConvTranspose2d for m in model.modules())
    assert n_transposed == 2  # one per up level of a 3-level UNet
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        shape = model(x).shape
    hyper = hyperize(model)
    hyper_transposed = [m for m in hyper.modules() if isinstance(m, HyperConvTransposeNd)]
    assert len(hyper_transposed) == n_transposed
    assert not any(isinstance(m, nn.modules.conv._ConvTransposeNd) for m in hyper.modules())
    with torch.no_grad():
        expected = hyper(x)
        assert expected.shape == shape
        plain = materialize(copy.deepcopy(hyper))
        assert not any(isinstance(m, monai_hyperconv.HyperConvNd) for m in plain.modules())
        assert sum(type(m) is nn.ConvTranspose2d for m in plain.modules()) == n_transposed
        torch.testing.assert_close(plain(x), expected, rtol=1e-5, atol=1e-5)


def test_hyperize_keeps_transposed_settings():
    conv = nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False, dilation=1)
    hyper = hyperize(nn.Sequential(conv.double()), hidden_channels=(8, 4), fft=False)[0]
    assert isinstance(hyper, HyperConvTranspose3d)
    assert (hyper.stride, hyper.padding, hyper.output_padding, hyper.groups) == ((2,) * 3, (1,) * 3, (1,) * 3, 2)
    assert hyper.bias is None and hyper.hidden_channels == (8, 4)
    assert hyper.kernel().dtype == torch.float64 and hyper.kernel().shape == conv.weight.shape
    one_by_one = nn.ConvTranspose2d(2, 2, 1, stride=2)
    assert hyperize(nn.Sequential(one_by_one))[0] is one_by_one  # 1x1 layers stay regular, as for convs


def test_kernel_size_applies_to_regular_convs_only_and_transposed_kernel_size_keeps_shapes():
    torch.manual_seed(0)
    model = _unet().eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        shape = model(x).shape
    hyper = hyperize(copy.deepcopy(model), kernel_size=5)
    sizes = {type(m): m.kernel_size for m in hyper.modules() if isinstance(m, monai_hyperconv.HyperConvNd)}
    assert sizes == {monai_hyperconv.HyperConv2d: (5, 5), HyperConvTranspose2d: (3, 3)}
    hyper = hyperize(copy.deepcopy(model), transposed_kernel_size=5)
    transposed = [m for m in hyper.modules() if isinstance(m, HyperConvTransposeNd)]
    assert [(m.kernel_size, m.padding) for m in transposed] == [((5, 5), (2, 2))] * 2
    with torch.no_grad():
        assert hyper(x).shape == shape
    with pytest.raises(ValueError, match="even number"):
        hyperize(copy.deepcopy(model), transposed_kernel_size=4)
    with pytest.raises(ValueError, match="even number"):
        hyperize(nn.ConvTranspose2d(1, 1, 5, stride=2, padding=0), transposed_kernel_size=3)  # padding would be < 0
