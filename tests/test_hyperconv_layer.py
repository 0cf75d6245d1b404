"""HyperConv1d/2d/3d: equivalence with torch convs, parameter formula, initialisation, caching, dtypes."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_hyperconv import HyperConv1d, HyperConv2d, HyperConv3d
from monai_hyperconv.layers import kernel_grid, kernel_net_parameter_count

HYPER = {1: HyperConv1d, 2: HyperConv2d, 3: HyperConv3d}
TORCH_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
SIZES = {1: (23,), 2: (13, 11), 3: (7, 8, 6)}


def _reference(layer, x):
    """The same convolution through torch's own module holding layer.kernel()."""
    padding = layer.padding
    if padding == "same" and any(s > 1 for s in layer.stride):
        pairs = layer.padding_pairs
        x = F.pad(x, [p for pair in reversed(pairs) for p in pair])
        padding = 0
    conv = TORCH_CONV[layer.spatial_dims](
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        padding,
        layer.dilation,
        layer.groups,
        layer.bias is not None,
        layer.padding_mode,
        dtype=x.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(layer.kernel())
        if layer.bias is not None:
            conv.bias.copy_(layer.bias)
    return conv(x)


CASES = [
    # dims, kernel, stride, padding, dilation, groups, bias, padding_mode
    (1, 3, 1, "same", 1, 1, True, "zeros"),
    (1, 4, 1, "same", 2, 1, True, "zeros"),
    (1, 5, 2, 1, 1, 2, False, "zeros"),
    (2, 3, 1, "same", 1, 1, True, "zeros"),
    (2, 5, 1, "valid", 1, 1, True, "zeros"),
    (2, (3, 5), 2, "same", 1, 1, True, "zeros"),
    (2, 4, 1, "same", 1, 1, False, "zeros"),
    (2, 4, 2, "same", 1, 2, True, "zeros"),
    (2, 3, 1, (2, 1), (2, 1), 2, True, "zeros"),
    (2, 3, 1, 1, 1, 1, True, "reflect"),
    (2, 5, 1, "same", 1, 1, True, "circular"),
    (2, 3, 2, 1, 1, 4, True, "replicate"),
    (3, 3, 1, "same", 1, 1, True, "zeros"),
    (3, (3, 1, 5), 1, "same", 1, 2, True, "zeros"),
    (3, 3, 2, 1, 2, 1, False, "zeros"),
]


@pytest.mark.parametrize("dims,kernel,stride,padding,dilation,groups,bias,mode", CASES)
def test_forward_equals_torch_conv_on_generated_kernel(dims, kernel, stride, padding, dilation, groups, bias, mode):
    layer = HYPER[dims](4, 8, kernel, stride, padding, dilation, groups, bias, padding_mode=mode, fft=False)
    x = torch.randn(2, 4, *([12] * dims))
    torch.testing.assert_close(layer(x), _reference(layer, x), rtol=1e-5, atol=1e-6)
    assert layer.kernel().shape == _reference_weight_shape(layer)
    assert (layer.bias is None) == (not bias)


def _reference_weight_shape(layer):
    return TORCH_CONV[layer.spatial_dims](
        layer.in_channels, layer.out_channels, layer.kernel_size, groups=layer.groups
    ).weight.shape


def test_same_padding_with_stride_gives_ceil_size():
    layer = HyperConv2d(2, 3, 5, stride=2)
    assert layer(torch.randn(1, 2, 15, 16)).shape[2:] == (8, 8)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("hidden", [(16, 16, 4), (8, 2), (16, 16, 16, 24)])
def test_parameter_count_follows_eq3_and_ignores_kernel_size(dims, hidden):
    counts = set()
    for k in (1, 3, 5, 9):
        layer = HYPER[dims](6, 10, k, groups=2, hidden_channels=hidden)
        n_kernel_net = sum(p.numel() for p in layer.kernel_net.parameters())
        assert n_kernel_net == kernel_net_parameter_count(dims, hidden, 10 * 6 // 2)
        counts.add(sum(p.numel() for p in layer.parameters()))
    assert counts == {kernel_net_parameter_count(dims, hidden, 30) + 10}


def test_eq3_by_hand_for_the_release_widths():
    # coords(2) -> 16 -> 16 -> 4 -> 32*32: (2+1)*16 + (16+1)*16 + (16+1)*4 + (4+1)*1024
    assert kernel_net_parameter_count(2, (16, 16, 4), 32 * 32) == 48 + 272 + 68 + 5 * 1024


def test_grid_is_integer_offsets_centred_at_zero():
    grid = kernel_grid((5, 4))
    assert grid.shape == (20, 2)
    assert sorted(set(grid[:, 0].tolist())) == [-2, -1, 0, 1, 2]
    assert sorted(set(grid[:, 1].tolist())) == [-1, 0, 1, 2]  # even size: 0 at index (k-1)//2, as torch 'same'


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "dims,kernel,cin,cout", [(1, 7, 8, 8), (2, 3, 16, 32), (2, 5, 32, 32), (2, 31, 4, 4), (3, 5, 8, 16)]
)
def test_init_std_is_kaiming_normal_relu(seed, dims, kernel, cin, cout):
    torch.manual_seed(seed)
    layer = HYPER[dims](cin, cout, kernel)
    target = math.sqrt(2.0 / (cin * kernel**dims))
    assert layer.kernel().std().item() == pytest.approx(target, rel=1e-4)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dims,kernel", [(2, 3), (2, 5), (2, 9), (3, 5)])
def test_init_kernel_means_are_those_of_iid_kaiming_weights(seed, dims, kernel):
    """Each kernel's mean over its taps (its response to a constant input) has the spread of i.i.d. weights'.

    Shared MLP features give every kernel a common constant part unless the init removes it; with it, an
    untrained Hyper-UNet in eval mode amplified its output ~1e8-fold (up to taps-fold variance per layer).
    """
    torch.manual_seed(seed)
    layer = HYPER[dims](16, 16, kernel)
    w = layer.kernel().detach()
    taps = kernel**dims
    target = math.sqrt(2.0 / (16 * taps)) / math.sqrt(taps)  # std of the mean of `taps` i.i.d. Kaiming weights
    means = w.flatten(2).mean(-1)  # 256 kernels
    assert means.std().item() == pytest.approx(target, rel=0.25)
    assert means.mean().abs().item() < 0.25 * target


def test_untrained_hyper_unet_in_eval_mode_stays_bounded():
    from monai_hyperconv.networks import PaperUNet

    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        y = PaperUNet(2, 1, 1, channels=8, conv="hyper", kernel_size=5).eval()(x)
    assert y.abs().mean() < 1e3  # 1.6e9 with the features' common mean left in every kernel


@pytest.mark.parametrize("kernel", [3, 5, 15, 31])
def test_init_avoids_homogeneous_mlp_pitfall(kernel):
    """With zero biases the centre tap is exactly 0 and |w| grows with the radius; neither may happen."""
    layer = HyperConv2d(16, 16, kernel)
    w = layer.kernel().detach()
    c = kernel // 2
    centre = w[:, :, c, c].abs().mean()
    assert centre > 0.2 * w.abs().mean()
    corners = w[:, :, [0, 0, -1, -1], [0, -1, 0, -1]].abs().mean()
    assert corners < 5 * centre


def test_state_dict_round_trip_keeps_kernel_and_does_not_reinitialise():
    torch.manual_seed(1)
    src = HyperConv2d(8, 8, 5)
    src.kernel_net.out.weight.data.mul_(3.0)  # trained-like weights, std no longer the init value
    torch.manual_seed(2)
    dst = HyperConv2d(8, 8, 5)
    dst.load_state_dict(src.state_dict())
    torch.testing.assert_close(dst.kernel(), src.kernel(), rtol=0, atol=0)
    assert set(src.state_dict()) == {
        "kernel_net.hidden.0.weight",
        "kernel_net.hidden.0.bias",
        "kernel_net.hidden.1.weight",
        "kernel_net.hidden.1.bias",
        "kernel_net.hidden.2.weight",
        "kernel_net.hidden.2.bias",
        "kernel_net.out.weight",
        "kernel_net.out.bias",
        "bias",
        "_extra_state",
    }  # the kernel grid (monai_hyperconv.layers.grid)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_gradients_reach_every_kernel_network_parameter(dims):
    layer = HYPER[dims](3, 4, 3)
    layer(torch.randn(2, 3, *([6] * dims))).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_eval_caches_kernel_and_invalidates_on_every_change():
    layer = HyperConv2d(4, 4, 3)
    x = torch.randn(1, 4, 8, 8)
    layer.eval()
    with torch.no_grad():
        k1 = layer.kernel()
        assert layer.kernel() is k1  # reused, not recomputed
        y1 = layer(x)
    # optimizer step
    layer.train()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(x).sum().backward()
    opt.step()
    layer.eval()
    with torch.no_grad():
        k2 = layer.kernel()
        assert not torch.equal(k1, k2)
        torch.testing.assert_close(k2, layer._generate_kernel())
        assert not torch.equal(layer(x), y1)
    # load_state_dict
    other = HyperConv2d(4, 4, 3)
    layer.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(layer.kernel(), other.kernel(), rtol=0, atol=0)
    # in-place edit (bumps the version counter)
    with torch.no_grad():
        layer.kernel_net.out.weight.mul_(2.0)
        torch.testing.assert_close(layer.kernel(), layer._generate_kernel(), rtol=0, atol=0)
    # .to(dtype)
    layer.double()
    with torch.no_grad():
        assert layer.kernel().dtype == torch.float64
    # edits through .data bypass version counters: clear_kernel_cache is the documented way out
    with torch.no_grad():
        layer.kernel()
        layer.kernel_net.out.bias.data.add_(1.0)
        layer.clear_kernel_cache()
        torch.testing.assert_close(layer.kernel(), layer._generate_kernel(), rtol=0, atol=0)


def test_kernel_is_recomputed_with_graph_when_gradients_are_recorded():
    layer = HyperConv2d(2, 2, 3).eval()
    k = layer.kernel()
    assert k.requires_grad and k.grad_fn is not None


@pytest.mark.parametrize("fft", [False, True])
def test_float64_and_bfloat16_autocast(fft):
    layer = HyperConv2d(3, 5, 7, fft=fft).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    assert layer(x).dtype == torch.float64
    layer.float()
    x = x.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), layer(x), rtol=0.05, atol=0.05)
    y.float().sum().backward()
    assert layer.kernel_net.hidden[0].weight.grad is not None


FFT_CASES = [
    (1, 15, 1, "same", 1, 1),
    (1, 6, 3, 2, 2, 2),
    (2, 9, 1, "same", 1, 1),
    (2, (7, 4), 1, "valid", 1, 2),
    (2, 5, 2, "same", 2, 1),
    (2, 8, 1, "same", 1, 4),
    (3, 5, 1, "same", 1, 1),
    (3, (3, 5, 4), 2, 1, (1, 2, 1), 2),
]


@pytest.mark.parametrize("dims,kernel,stride,padding,dilation,groups", FFT_CASES)
def test_fft_path_equals_direct_path(dims, kernel, stride, padding, dilation, groups):
    layer = HYPER[dims](4, 8, kernel, stride, padding, dilation, groups)
    x = torch.randn(2, 4, *SIZES[dims], requires_grad=True)
    layer.fft = False
    direct = layer(x)
    g_direct = torch.autograd.grad(direct.square().sum(), [x, layer.kernel_net.out.weight])
    layer.fft = True
    fft = layer(x)
    g_fft = torch.autograd.grad(fft.square().sum(), [x, layer.kernel_net.out.weight])
    scale = direct.abs().max()
    torch.testing.assert_close(fft / scale, direct / scale, rtol=0, atol=1e-4)
    for a, b in zip(g_fft, g_direct):
        torch.testing.assert_close(a / b.abs().max(), b / b.abs().max(), rtol=0, atol=1e-4)


def test_auto_picks_fft_for_large_kernels_only():
    x = torch.randn(4, 8, 64, 64)
    small, large = HyperConv2d(8, 8, 3), HyperConv2d(8, 8, 21)
    assert not small._chooses_fft(x) and large._chooses_fft(x)
    assert not HyperConv2d(8, 8, 21, stride=2)._chooses_fft(x)
    assert not HyperConv2d(8, 8, 21, fft=False)._chooses_fft(x)


def test_auto_threshold_depends_on_whether_gradients_are_recorded(monkeypatch):
    """Inference pays only the input's FFT (the kernel spectrum is cached), so its crossover is lower than training's.
    The thresholds are what ``fft="auto"`` falls back to where no cost model exists (here: none at all)."""
    from monai_hyperconv.layers import path_cost
    from monai_hyperconv.layers.fft_conv import FFT_MIN_KERNEL_SIZE

    monkeypatch.setattr(path_cost, "PATH_COST_MODEL", {})
    train_k, eval_k = FFT_MIN_KERNEL_SIZE["cpu"]["train"][2], FFT_MIN_KERNEL_SIZE["cpu"]["eval"][2]
    assert eval_k < train_k
    layer, x = HyperConv2d(2, 2, eval_k), torch.randn(1, 2, 40, 40)
    assert layer._chooses_fft(x) is False  # gradients recorded: the training threshold applies
    with torch.no_grad():
        assert layer._chooses_fft(x) is True
        y_fft = layer(x)
    layer.fft = False
    with torch.no_grad():
        y_direct = layer(x)
    torch.testing.assert_close(y_fft, y_direct, rtol=1e-4, atol=1e-4)


def test_bad_arguments_and_inputs_are_named():
    with pytest.raises(ValueError, match="groups"):
        HyperConv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        HyperConv2d(2, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="kernel_size"):
        HyperConv2d(2, 2, (3, 3, 3))
    with pytest.raises(ValueError, match=r"expects input \(batch, 2"):
        HyperConv2d(2, 2, 3)(torch.randn(1, 3, 8, 8))


@pytest.mark.parametrize("dims,k", list(itertools.product([1, 2, 3], [1, 2])))
def test_tiny_kernels(dims, k):
    layer = HYPER[dims](1, 1, k)
    assert torch.isfinite(layer.kernel()).all()
    assert layer(torch.randn(1, 1, *([5] * dims))).shape[2:] == (5,) * dims


@pytest.mark.parametrize("dims,groups,dilation", [(1, 1, 2), (2, 2, 1), (3, 1, 1)])
def test_generic_fft_conv_matches_torch(dims, groups, dilation):
    from monai_hyperconv.layers.fft_conv import fft_conv

    x = torch.randn(2, 4, *SIZES[dims])
    w = torch.randn(6, 4 // groups, *([5] * dims))
    b = torch.randn(6)
    pad = dilation * 2
    expected = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims](x, w, b, 1, pad, dilation, groups)
    got = fft_conv(x, w, b, (1,) * dims, ((pad, pad),) * dims, (dilation,) * dims, groups)
    torch.testing.assert_close(got / expected.abs().max(), expected / expected.abs().max(), rtol=0, atol=1e-4)


def test_eval_reuses_the_cached_kernel_spectrum_on_the_fft_path():
    layer = HyperConv2d(3, 3, 15, fft=True).eval()
    x = torch.randn(1, 3, 20, 20)
    with torch.no_grad():
        y1 = layer(x)
        spec = layer._cached_spec
        y2 = layer(x)
        assert layer._cached_spec is spec
        torch.testing.assert_close(y1, y2, rtol=0, atol=0)
        layer.kernel_net.out.weight.mul_(2.0)  # the kernel is linear in the output layer
        layer.kernel_net.out.bias.mul_(2.0)
        torch.testing.assert_close(layer(x) - layer.bias.view(1, -1, 1, 1), 2 * (y1 - layer.bias.view(1, -1, 1, 1)))


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.SGD])
def test_cached_kernel_is_fresh_after_a_fused_optimizer_step(optimizer):
    """Fused optimizers do not bump parameter version counters; the cache must still see their steps."""
    layer = HyperConv2d(3, 3, 5)
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        layer.kernel()
    opt = optimizer(layer.parameters(), lr=0.1, fused=True)
    layer(x).square().sum().backward()
    opt.step()
    with torch.no_grad():
        torch.testing.assert_close(layer.kernel(), layer._generate_kernel(), rtol=0, atol=0)


@pytest.mark.parametrize("fft", [False, True])
@pytest.mark.parametrize("grads_dropped", [False, True])
def test_fused_step_after_a_cached_eval_forward_is_seen(fft, grads_dropped):
    """Train forward/backward, eval forward (cached), fused Adam step, eval forward again: the new weights are used
    (also when the gradients are set to None after the step). No process-wide optimizer hook: the layer checks its
    own parameters (their bytes while they hold gradients)."""
    layer = HyperConv2d(3, 3, 9, fft=fft)
    x = torch.randn(2, 3, 16, 16)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, fused=True)
    for _ in range(2):
        layer.train()
        opt.zero_grad()
        layer(x).square().sum().backward()
        layer.eval()
        with torch.no_grad():
            before = layer(x)
            torch.testing.assert_close(layer(x), before, rtol=0, atol=0)
            assert (layer._cached_spec if fft else layer._cached_kernel) is not None  # served from the cache
            versions = [p._version for p in layer.kernel_net.parameters()]
        opt.step()
        assert [p._version for p in layer.kernel_net.parameters()] == versions  # fused: no version bump to see
        if grads_dropped:
            opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            after = layer(x)
            expected = F.conv2d(x, layer._generate_kernel(), layer.bias, padding=4)
        scale = expected.abs().max()
        assert (after - before).abs().max() > 1e-3 * scale
        torch.testing.assert_close(after / scale, expected / scale, rtol=0, atol=1e-4)
        if not fft:
            torch.testing.assert_close(layer.kernel(), layer._generate_kernel(), rtol=0, atol=0)


def test_cache_is_kept_while_gradients_are_held_and_nothing_changes():
    """The byte check does not defeat the cache: with gradients held and no step, the cached kernel is reused."""
    layer = HyperConv2d(3, 3, 5)
    layer(torch.randn(1, 3, 8, 8)).sum().backward()
    with torch.no_grad():
        k = layer.kernel()
        assert layer.kernel() is k
    layer.kernel_net.out.weight.grad = None
    layer.kernel_net.out.bias.grad = None
    with torch.no_grad():
        assert layer.kernel() is k  # other parameters still hold gradients


def test_editing_the_returned_kernel_does_not_corrupt_the_layer():
    layer = HyperConv2d(3, 3, 3)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        y = layer(x)
        layer.weight.mul_(0.0)  # the kernel handed out is the cached one
        torch.testing.assert_close(layer(x), y, rtol=0, atol=0)


@pytest.mark.parametrize("fft", [False, True])
def test_kernel_cached_in_inference_mode_does_not_break_autograd_later(fft):
    layer = HyperConv2d(3, 3, 9, fft=fft).requires_grad_(False)  # frozen: kernels are cached even with grad on
    x = torch.randn(1, 3, 16, 16)
    with torch.inference_mode():
        layer(x)
    x.requires_grad_(True)
    layer(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_parameters_on_the_fft_path(dtype):
    """Half-precision parameters: the FFT path runs (in float32 inside) and is as accurate as the direct path."""
    torch.manual_seed(0)
    exact = HyperConv2d(4, 4, 9).double()
    x = torch.randn(2, 4, 20, 20, dtype=torch.float64)
    errors = {}
    for fft in (True, False):
        layer = HyperConv2d(4, 4, 9, fft=fft)
        layer.load_state_dict(exact.state_dict())
        layer.to(dtype).eval()
        with torch.no_grad():
            y = layer(x.to(dtype))
            assert y.dtype == dtype
            errors[fft] = float((y.double() - exact(x)).abs().max())
    scale = float(exact(x).abs().max())
    assert errors[True] <= 1.5 * errors[False] + 1e-3 * scale, errors
    assert errors[True] <= 0.05 * scale, errors  # half precision's few significant digits, not garbage
