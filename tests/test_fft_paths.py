"""The FFT path of hyper-convolutions: its plan (FFT lengths, cropped taps), its factorised convolution, exactness
against the direct path and against torch's convolution on the generated kernel, forward and gradients."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from monai_hyperconv import HyperConv1d, HyperConv2d, HyperConv3d
from monai_hyperconv.layers.fft_conv import basis_fft_plan, fft_size

HYPER = {1: HyperConv1d, 2: HyperConv2d, 3: HyperConv3d}
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _torch_reference(layer, x):
    """torch's functional convolution with ``layer.kernel()`` (explicit zero padding, so any padding works)."""
    pairs = layer.padding_pairs
    mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
    x = F.pad(x, [p for pair in reversed(pairs) for p in pair], mode=mode)
    return CONV[layer.spatial_dims](x, layer.kernel(), layer.bias, layer.stride, 0, layer.dilation, layer.groups)


def _grads(layer, x, y, weights):
    """Gradients of ``(y * weights).sum()`` (a loss whose gradient differs at every output) w.r.t. x and parameters."""
    params = [x, *layer.kernel_net.parameters()] + ([layer.bias] if layer.bias is not None else [])
    return torch.autograd.grad((y * weights).sum(), params)


def _assert_close(a, b, atol=2e-4):
    scale = b.abs().max().clamp_min(1e-12)
    torch.testing.assert_close(a / scale, b / scale, rtol=0, atol=atol)


# dims, in, out, kernel, stride, padding, dilation, groups, size
CASES = [
    (1, 3, 5, 15, 1, "same", 1, 1, (23,)),
    (1, 2, 3, 7, 1, "same", 1, 1, (13,)),  # 13 + 3 = 16: the FFT length is exactly the wrap-around bound
    (1, 4, 2, 9, 1, 3, 2, 2, (17,)),
    (2, 3, 6, 9, 1, "same", 1, 1, (13, 11)),  # fewer inputs than outputs
    (2, 6, 3, 9, 1, "same", 1, 3, (13, 11)),  # more inputs than outputs, groups
    (2, 4, 4, (7, 4), 1, "valid", 1, 2, (13, 11)),
    (2, 4, 4, 8, 1, "same", 1, 1, (12, 12)),  # even kernel: asymmetric padding
    (2, 4, 4, 5, 2, "same", 2, 1, (13, 11)),  # stride and dilation
    (2, 2, 3, 31, 1, "same", 1, 1, (8, 6)),  # kernel far larger than the map: cropped taps
    (2, 2, 2, 21, 1, (6, 12), 1, 1, (10, 9)),  # explicit padding, wider than half the kernel on one dim
    (3, 2, 4, 9, 1, "same", 1, 1, (7, 8, 6)),
    (3, 4, 2, (3, 5, 4), 2, 1, (1, 2, 1), 2, (7, 8, 6)),
]


@pytest.mark.parametrize("dims,cin,cout,kernel,stride,padding,dilation,groups,size", CASES)
def test_fft_path_matches_direct_path_and_torch_forward_and_gradients(
    dims, cin, cout, kernel, stride, padding, dilation, groups, size
):
    layer = HYPER[dims](cin, cout, kernel, stride, padding, dilation, groups).double()
    x = torch.randn(2, cin, *size, dtype=torch.float64, requires_grad=True)
    reference = _torch_reference(layer, x)
    weights = torch.randn_like(reference)
    expected = _grads(layer, x, reference, weights)
    for path in (True, False):
        layer.fft = path
        y = layer(x)
        assert y.shape == reference.shape
        _assert_close(y, reference, atol=1e-10)
        for got, want in zip(_grads(layer, x, y, weights), expected):
            _assert_close(got, want, atol=1e-9)


@pytest.mark.parametrize("padding_mode", ["reflect", "circular"])
def test_fft_path_with_non_zero_padding_modes(padding_mode):
    layer = HyperConv2d(3, 4, 7, padding_mode=padding_mode, fft=True).double()
    x = torch.randn(2, 3, 12, 10, dtype=torch.float64)
    _assert_close(layer(x), _torch_reference(layer, x), atol=1e-10)


def test_float32_fft_path_is_as_exact_as_float32_direct():
    layer = HyperConv2d(8, 8, 31, fft=True)
    x = torch.randn(2, 8, 40, 40)
    exact = _torch_reference(layer.double(), x.double())
    layer.float()
    fft = layer(x)
    layer.fft = False
    direct = layer(x)
    scale = exact.abs().max()
    assert (fft.double() - exact).abs().max() / scale < 1e-5
    assert (direct.double() - exact).abs().max() / scale < 1e-5


def test_kernel_basis_reproduces_the_kernel():
    layer = HyperConv2d(4, 6, (5, 7), groups=2)
    maps, mix = layer.kernel_basis()
    assert maps.shape == (layer.hidden_channels[-1] + 1, 5, 7) and mix.shape == (6, 2, maps.shape[0])
    torch.testing.assert_close(torch.einsum("oim,mhw->oihw", mix, maps), layer.kernel(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n,k", list(itertools.product([16, 32, 128], [5, 15, 31])))
def test_plan_for_same_padding_needs_only_the_larger_pad(n, k):
    """With the FFT zero-padding the input itself, n + max(pad) is free of wrap-around (not n + 2 pad)."""
    pad = (k - 1) // 2
    plan = basis_fft_plan((n,), ((pad, k - 1 - pad),), (k,))
    assert plan.out_size == (n,)
    assert plan.n_fft == (fft_size(n + pad),)
    assert plan.crop == ((0, k),) and plan.shift == (pad,)


def test_plan_crops_taps_that_never_meet_the_input():
    # 63 taps on a 16-long map: offsets beyond +-15 only ever multiply padding
    plan = basis_fft_plan((16,), ((31, 31),), (63,))
    assert plan.crop == ((16, 47),) and plan.shift == (15,) and plan.out_size == (16,)
    assert plan.n_fft[0] < 16 + 31


def test_plan_names_a_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match="larger than the padded input"):
        basis_fft_plan((5,), ((0, 0),), (7,))


def test_fast_fft_sizes():
    assert [fft_size(n) for n in (1, 7, 31, 97, 143, 161)] == [1, 8, 32, 100, 144, 162]


@pytest.mark.parametrize("pads", [(5, 1), (1, 5), (0, 6), (9, 0), (8, 8)])
def test_basis_fft_conv_with_asymmetric_zero_padding(pads):
    """The functional form on its own: W[o, i] = sum_m mix[o, i, m] h_m against F.conv1d, lengths at the bound."""
    from monai_hyperconv.layers.fft_conv import basis_fft_conv, basis_spectrum

    maps, mix = torch.randn(3, 7, dtype=torch.float64), torch.randn(4, 2, 3, dtype=torch.float64)
    x = torch.randn(2, 2, 11, dtype=torch.float64)
    plan = basis_fft_plan((11,), (pads,), (7,))
    got = basis_fft_conv(x, basis_spectrum(maps, plan), mix, None, plan, (1,), 1)
    want = F.conv1d(F.pad(x, list(pads)), torch.einsum("oim,mk->oik", mix, maps))
    _assert_close(got, want, atol=1e-12)


@pytest.fixture
def benchmark_mode(monkeypatch):
    from monai_hyperconv.layers import path_choice

    monkeypatch.setattr(path_choice, "benchmark", True)
    path_choice.clear_choices()
    yield path_choice
    path_choice.clear_choices()


def test_benchmark_mode_measures_once_per_shape_and_uses_the_faster_path(benchmark_mode, monkeypatch):
    timed = []

    def fake_time(layer, x, fft, training):  # the FFT path "wins" for a 3x3 kernel, which the thresholds never pick
        timed.append((tuple(x.shape), fft, training))
        return 1.0 if fft else 2.0

    monkeypatch.setattr(benchmark_mode, "_time_path", fake_time)
    layer = HyperConv2d(2, 3, 3)
    x = torch.randn(1, 2, 10, 10)
    assert layer._chooses_fft(x) is True and len(timed) == 2
    assert layer._chooses_fft(x) is True and len(timed) == 2  # remembered
    with torch.no_grad():
        layer._chooses_fft(x)  # another pass kind: measured again
    layer._chooses_fft(torch.randn(2, 2, 10, 10))  # another shape: measured again
    assert [t[2] for t in timed[::2]] == [True, False, True] and len(benchmark_mode.remembered_choices()) == 3
    assert not HyperConv2d(2, 3, 3, stride=2)._chooses_fft(x) and len(timed) == 6  # strided: never measured


def test_benchmark_mode_real_measurement_leaves_gradients_alone(benchmark_mode):
    layer = HyperConv2d(2, 3, 11)
    x = torch.randn(1, 2, 16, 16)
    y = layer(x)  # measures both paths, then runs the chosen one
    assert all(p.grad is None for p in layer.parameters())
    ((key, choice),) = benchmark_mode.remembered_choices().items()
    assert key[4] == (1, 2, 16, 16) and isinstance(choice, bool)
    layer.fft = choice
    torch.testing.assert_close(y, layer(x))


def test_thresholds_apply_when_benchmark_mode_is_off():
    from monai_hyperconv.layers import path_choice

    assert path_choice.benchmark is False
    HyperConv2d(2, 2, 21)(torch.randn(1, 2, 12, 12))
    assert path_choice.remembered_choices() == {}
