"""resample_kernels: hyper layers sampled on a grid `scale` times finer: identity at scale 1, composition, the
FFT and direct paths, materialize and the cache follow it, and a resampled network on a finer input computes what
the original computes on the coarse one."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_hyperconv import materialize, resample_kernels
from monai_hyperconv.layers import HyperConv1d, HyperConv2d, HyperConv3d, HyperConvNd, kernel_grid
from monai_hyperconv.networks import PaperUNet

HYPER = {1: HyperConv1d, 2: HyperConv2d, 3: HyperConv3d}

pytestmark = pytest.mark.usefixtures("one_thread")


def _state(layer: HyperConvNd) -> tuple:
    return layer.kernel_size, layer.padding, layer.padding_pairs, layer.grid_scale


def test_scale_one_changes_nothing_bitwise():
    layer = HyperConv2d(3, 4, 5, fft=False)
    kernel, state = layer.kernel().clone(), _state(layer)
    assert resample_kernels(layer, 1) is layer
    assert _state(layer) == state and layer.tap_weights is None
    assert torch.equal(layer.kernel(), kernel) and torch.equal(layer.grid, kernel_grid((5, 5)))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_round_trip_restores_the_training_kernels_bitwise(dims):
    layer = HYPER[dims](2, 3, 3, padding=1)  # size-preserving ints are recomputed, then restored
    kernel, state = layer.kernel().clone(), _state(layer)
    resample_kernels(layer, 2)
    assert layer.kernel_size == (7,) * dims and layer.padding == (3,) * dims
    resample_kernels(layer, 0.5)
    assert _state(layer) == state and torch.equal(layer.kernel(), kernel)


def test_grid_taps_and_weights():
    """Taps at the training offsets / scale; 5 taps of width 1 become 11 of width 1/2, the outer two half-weighted
    (the same extent [-2.5, 2.5]); anisotropic scales act per dim; a constant kernel keeps its sum."""
    layer = HyperConv3d(1, 1, 5)
    resample_kernels(layer, (2, 1, 3))
    assert layer.kernel_size == (11, 5, 15) and layer.grid_scale == (2.0, 1.0, 3.0)
    grid = layer.grid.view(11, 5, 15, 3)
    torch.testing.assert_close(grid[:, 0, 0, 0], torch.arange(-5, 6) / 2.0)
    torch.testing.assert_close(grid[0, :, 0, 1], torch.arange(-2, 3).float())
    torch.testing.assert_close(grid[0, 0, :, 2], torch.arange(-7, 8) / 3.0)
    weights = layer.tap_weights.view(11, 5, 15)
    torch.testing.assert_close(weights[:, 2, 7], torch.tensor([0.25] + [0.5] * 9 + [0.25]) / 3)
    torch.testing.assert_close(layer.tap_weights.sum(), torch.tensor(125.0))
    resample_kernels(layer, (1 / 2, 1, 1 / 3))
    assert layer.kernel_size == (5, 5, 5) and layer.tap_weights is None
    resample_kernels(layer, 0.5)  # 5 taps -> 2.5 new widths: 3 taps, the outer two covering 3/4 of their cell
    assert layer.kernel_size == (3, 3, 3)
    torch.testing.assert_close(layer.tap_weights.view(3, 3, 3)[:, 1, 1], torch.tensor([1.5, 2.0, 1.5]) * 4)


@pytest.mark.parametrize("dims", [2, 3])
def test_direct_and_fft_paths_agree_after_resampling(dims):
    layer = HYPER[dims](3, 4, 5, fft=False)
    resample_kernels(layer, 2)
    fft = copy.deepcopy(layer)
    fft.fft = True
    x = torch.randn(2, 3, *[20] * dims)
    with torch.no_grad():
        direct = layer(x)
        torch.testing.assert_close(fft(x), direct, rtol=1e-4, atol=1e-5)
        assert direct.shape[2:] == x.shape[2:]  # "same" padding recomputed for 11 taps
    x.requires_grad_(True)  # and while recording gradients (no cache)
    torch.testing.assert_close(fft(x), layer(x), rtol=1e-4, atol=1e-5)


def test_materialize_equals_the_resampled_layer():
    layer = resample_kernels(HyperConv2d(3, 4, 3, stride=2), 2).eval()
    conv = materialize(copy.deepcopy(layer))
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (7, 7)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), layer(x), rtol=1e-5, atol=1e-6)


def test_resampling_invalidates_the_cached_kernel_and_spectrum():
    layer = HyperConv2d(2, 2, 5).eval()
    x = torch.randn(1, 2, 24, 24)
    with torch.no_grad():
        before = layer.kernel()
        layer.fft = True
        layer(x)  # caches the spectrum
        resample_kernels(layer, 2)
        after = layer.kernel()
        assert after.shape[2:] == (11, 11) and before.shape[2:] == (5, 5)
        layer.fft = False
        direct = layer(x)
        layer.fft = True
        torch.testing.assert_close(layer(x), direct, rtol=1e-4, atol=1e-5)


def test_refusals_change_nothing_and_regular_convs_warn():
    net = nn.Sequential(HyperConv2d(1, 2, 5), HyperConv2d(2, 2, 4))  # an even kernel
    with pytest.raises(ValueError, match=r"'1'.*even kernel size \(4"):
        resample_kernels(net, 2)
    assert net[0].kernel_size == (5, 5)  # all layers checked before any changes
    with pytest.raises(ValueError, match="explicit padding"):
        resample_kernels(HyperConv2d(1, 1, 5, padding=1), 2)
    with pytest.raises(ValueError, match="positive"):
        resample_kernels(HyperConv2d(1, 1, 5), 0)
    with pytest.raises(ValueError, match="3 numbers"):
        resample_kernels(HyperConv3d(1, 1, 5), (2, 2))
    with pytest.raises(ValueError, match="no hyper-convolution"):
        resample_kernels(nn.Conv2d(1, 1, 3), 2)
    mixed = nn.Sequential(HyperConv2d(1, 2, 5), nn.Conv2d(2, 2, 3), nn.Conv2d(2, 1, 1))
    with pytest.warns(UserWarning, match=r"1 regular convolution.*\(1\)"):
        resample_kernels(mixed, 2)
    assert mixed[0].kernel_size == (11, 11) and mixed[1].kernel_size == (3, 3)
    assert resample_kernels(HyperConv2d(1, 1, 4), 1).kernel_size == (4, 4)  # even kernels take scale 1


# ---------------------------------------------------------------- the property


def _smooth_field(shape, generator) -> torch.Tensor:
    """A low-pass random field: noise on a grid 8x coarser, interpolated up."""
    coarse = torch.randn(*shape[:2], *[s // 8 for s in shape[2:]], generator=generator)
    return F.interpolate(coarse, size=shape[2:], mode="bicubic" if len(shape) == 4 else "trilinear")


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bicubic" if x.dim() == 4 else "trilinear")


def _smooth_kernels(net: nn.Module) -> nn.Module:
    """Kernels resolved by the training grid. Fresh kernel networks are drawn to vary over the taps like i.i.d.
    weights with zero-mean kernels, whose sum over integer taps cancels (kernel_net.reset_parameters): such a
    kernel is not a smooth function sampled on a grid, and no resampling reproduces it. Dividing the coordinate
    weights by 4 makes every kernel vary slowly over a tap, as resampling assumes."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, HyperConvNd):
                m.kernel_net.hidden[0].weight.div_(4)
                m.clear_kernel_cache()
    return net


def _errors(net: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """Relative error against ``net(x)`` of the resampled and of the unchanged network run on the 2x upsampled
    input, their outputs averaged back down."""
    pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool3d
    net.eval()
    with torch.no_grad():
        expected = net(x)
        fine = _upsample(x)
        unchanged = pool(net(fine), 2)
        resampled = pool(resample_kernels(copy.deepcopy(net), 2)(fine), 2)
    error = lambda y: float((y - expected).norm() / expected.norm())
    return error(resampled), error(unchanged)


def _hyper_cnn(dims: int) -> nn.Module:
    hyper = HYPER[dims]
    act = nn.LeakyReLU(0.1)
    return nn.Sequential(hyper(1, 4, 5), act, hyper(4, 4, 5), act, hyper(4, 1, 5))


@pytest.mark.parametrize(("dims", "size", "bound"), [(2, 32, 0.1), (3, 16, 0.2)])
def test_resampled_network_on_a_finer_input_matches_the_original(dims, size, bound):
    torch.manual_seed(0)
    net = _smooth_kernels(_hyper_cnn(dims))
    x = _smooth_field((1, 1, *[size] * dims), torch.Generator().manual_seed(1))
    resampled, unchanged = _errors(net, x)
    print(f"{dims}-D hyper CNN: relative error resampled {resampled:.3f}, unchanged {unchanged:.3f}")
    assert resampled < bound and resampled < 0.5 * unchanged


def test_resampled_hyper_unet_on_a_finer_input_matches_the_original():
    """Two pooling levels: every level's kernels are rescaled, pooling and upsampling act in pixels."""
    torch.manual_seed(0)
    net = _smooth_kernels(PaperUNet(2, 1, 2, channels=[4, 8, 16], conv="hyper", kernel_size=5))
    x = _smooth_field((1, 1, 32, 32), torch.Generator().manual_seed(1))
    resampled, unchanged = _errors(net, x)
    print(f"2-D hyper PaperUNet: relative error resampled {resampled:.3f}, unchanged {unchanged:.3f}")
    assert resampled < 0.35 and resampled < 0.5 * unchanged
