"""The paper's networks: shapes in 2-D and 3-D, gradients, receptive fields (analytic = measured), materialize +
trace, bad input, and that no public name shadows a MONAI class."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import monai
import pytest
import torch
from torch import nn

from monai_hyperconv import blocks, materialize, networks
from monai_hyperconv.analysis.receptive_field import gradient_receptive_field
from monai_hyperconv.blocks import PatchwiseDynamicConv, chain_receptive_field
from monai_hyperconv.layers import HyperConvNd
from monai_hyperconv.networks import (
    FlatDilatedCNN,
    FlatHyperCNN,
    HyperSegNet,
    MultiBranchUNet,
    PaperUNet,
    receptive_field,
)

SMALL_FLAT = (2, 2, 4, 4, 4, 2, 2)

# (constructor, small kwargs, input channels): every network kind at a few channels.
SMALL = [
    (PaperUNet, {"channels": 2}, 1),
    (PaperUNet, {"channels": 2, "conv": "dilated"}, 1),
    (PaperUNet, {"channels": 2, "conv": "hyper", "kernel_size": 5}, 1),
    (PaperUNet, {"channels": 4, "conv": "hyper", "kernel_size": 3, "non_local": True}, 1),
    (FlatDilatedCNN, {"channels": SMALL_FLAT}, 1),
    (FlatHyperCNN, {"channels": SMALL_FLAT, "kernel_size": (3, 5, 9, 9, 9, 5, 3)}, 1),
    (MultiBranchUNet, {"channels": 2, "conv": "hyper", "kernel_size": 3}, 3),
    (MultiBranchUNet, {"channels": 4, "non_local": True}, 2),
    (HyperSegNet, {"channels": 2}, 1),
]
# 3-D: one network of each class (the 2-D list covers the options).
SMALL_3D = [SMALL[2], SMALL[4], SMALL[5], SMALL[6], SMALL[8]]
IDS = [f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items() if k != 'channels')}" for c, kw, _ in SMALL]


pytestmark = pytest.mark.usefixtures("one_thread_no_onednn")


def _monai_class_names() -> set[str]:
    root = Path(monai.__file__).parent
    pattern = re.compile(r"^\s*class\s+(\w+)", re.MULTILINE)
    return {name for f in root.rglob("*.py") for name in pattern.findall(f.read_text(errors="ignore"))}


def test_public_names_do_not_shadow_monai():
    ours = {n for m in (networks, blocks) for n in m.__all__ if isinstance(getattr(m, n), type)}
    assert {"PaperUNet", "HyperSegNet", "PatchwiseDynamicConv"} <= ours
    clashes = ours & _monai_class_names()
    assert not clashes, f"class names also defined in MONAI (short _target_ names would be ambiguous): {clashes}"


@pytest.mark.parametrize(
    "cls,kwargs,in_channels,spatial_dims,size",
    [(*case, 2, 32) for case in SMALL] + [(*case, 3, 16) for case in SMALL_3D],
    ids=[f"2d-{i}" for i in IDS] + [f"3d-{IDS[SMALL.index(c)]}" for c in SMALL_3D],
)
def test_forward_shape_and_gradients(cls, kwargs, in_channels, spatial_dims, size):
    if spatial_dims == 3 and cls is FlatHyperCNN:
        kwargs = {**kwargs, "kernel_size": 3, "dilations": (1, 2, 4, 4, 4, 2, 1)}  # keeps 3-D kernels small
    net = cls(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=3, **kwargs)
    x = torch.randn(2, in_channels, *(size,) * spatial_dims)
    y = net(x)
    assert y.shape == (2, 3, *(size,) * spatial_dims)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"
    # the kernel networks of hyper layers learn (their gradients are not all zero)
    hyper = [m for m in net.modules() if isinstance(m, HyperConvNd)]
    assert all(m.kernel_net.out.weight.grad.abs().sum() > 0 for m in hyper)


def test_hyper_unet_is_hyper_everywhere_but_the_output():
    net = PaperUNet(channels=2, conv="hyper", kernel_size=7, hidden_channels=(16, 16, 8))
    convs = [m for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    hyper = [m for m in net.modules() if isinstance(m, HyperConvNd)]
    assert convs == [net.head] and net.head.kernel_size == (1, 1)
    assert len(hyper) == 17  # 8 encoder, 3 post-upsample, 6 decoder convolutions
    assert all(m.kernel_size == (7, 7) and m.hidden_channels == (16, 16, 8) for m in hyper)


def test_regular_unet_post_upsample_conv_stays_3x3():
    net = PaperUNet(channels=2, kernel_size=5)
    up = [block.up_conv.conv.kernel_size for block in net.decoder.blocks]
    assert up == [(3, 3)] * 3
    assert net.encoder.bottleneck.conv_1.conv.kernel_size == (5, 5)
    dilated = PaperUNet(channels=2, conv="dilated")
    assert dilated.encoder.levels[0].conv_0.conv.dilation == (2, 2)


def test_dropout_only_in_the_bottleneck():
    net = PaperUNet(channels=2, dropout=0.5)
    drops = [n for n, m in net.named_modules() if isinstance(m, nn.Dropout)]
    assert drops == ["encoder.bottleneck.conv_0.adn.D"]
    assert net.encoder.bottleneck.conv_0.adn.D.p == 0.5
    assert not any(isinstance(m, nn.Dropout) for m in PaperUNet(channels=2, dropout=0.0).modules())


def test_hyper_parameters_do_not_depend_on_kernel_size():
    counts = {
        k: sum(p.numel() for p in PaperUNet(channels=2, conv="hyper", kernel_size=k).parameters()) for k in (3, 7)
    }
    assert counts[3] == counts[7]
    regular = {k: sum(p.numel() for p in PaperUNet(channels=2, kernel_size=k).parameters()) for k in (3, 5)}
    assert regular[5] > regular[3]


class _Bottleneck(nn.Module):
    """A UNet's encoder, returning the bottleneck features only (what the paper's receptive field is of)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.encoder = net.encoder

    def forward(self, x):
        return self.encoder(x)[1]


@pytest.mark.parametrize(
    "net,expected,size",
    [
        (PaperUNet(channels=1), 68, 96),
        (PaperUNet(channels=1, conv="dilated"), 128, 160),
        (PaperUNet(channels=1, conv="hyper", kernel_size=7), 188, 224),
        (FlatDilatedCNN(channels=(1,) * 7), 89, 96),
        (FlatHyperCNN(channels=(1,) * 7), 89, 96),
    ],
    ids=["unet3", "dilated", "hyper7", "flat_dilated", "flat_hyper"],
)
def test_receptive_field_matches_gradient_support(net, expected, size):
    assert receptive_field(net) == expected
    measured = copy.deepcopy(_Bottleneck(net) if isinstance(net, PaperUNet) else net)
    for name, m in list(measured.named_modules()):
        if isinstance(m, HyperConvNd):
            m.fft = False  # FFT round-off leaves tiny gradients everywhere, which a support measure counts
        if isinstance(m, nn.ReLU):  # a linear network: no ReLU can block a path, one trial measures the support
            parent, _, child = name.rpartition(".")
            measured.get_submodule(parent).register_module(child, nn.Identity())
    assert gradient_receptive_field(measured, 2, 1, size=size, trials=1) == expected


def test_receptive_field_global_and_unknown():
    assert receptive_field(PaperUNet(channels=2, non_local=True)) is None
    assert receptive_field(HyperSegNet(channels=2)) is None
    assert receptive_field(MultiBranchUNet(in_channels=2, channels=2, kernel_size=5)) == 128
    assert receptive_field(nn.DataParallel(PaperUNet(channels=2, kernel_size=5))) == 128
    with pytest.raises(TypeError, match="Conv2d"):
        receptive_field(nn.Conv2d(1, 1, 3))
    assert chain_receptive_field([(3, 1), (3, 1), (2, 2), (3, 1)]) == 1 + 2 + 2 + 1 + 2 * 2


def test_materialized_hyper_unet_traces_and_matches():
    net = PaperUNet(channels=4, conv="hyper", kernel_size=5, non_local=True).eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        expected = net(x)
        plain = materialize(copy.deepcopy(net))
        assert not any(isinstance(m, HyperConvNd) for m in plain.modules())
        torch.testing.assert_close(plain(x), expected, rtol=1e-4, atol=1e-5)
        traced = torch.jit.trace(plain, x, check_trace=False)  # checked below, on another input
        torch.testing.assert_close(traced(torch.flip(x, [2])), net(torch.flip(x, [2])), rtol=1e-4, atol=1e-5)
    assert receptive_field(materialize(PaperUNet(channels=2, conv="hyper", kernel_size=5))) == 128


def test_patchwise_dynamic_conv_equals_per_patch_convolution():
    layer = PatchwiseDynamicConv(2, channels=3, kernel_size=3)
    x = torch.randn(2, 3, 8, 8)
    signal = torch.randn(2, layer.signal_channels, 2, 2)
    y = layer(x, signal)
    padded = nn.functional.pad(x, [1, 1, 1, 1])
    for b in range(2):
        for i in range(2):
            for j in range(2):
                w = signal[b, :, i, j].view(3, 10)
                full = nn.functional.conv2d(padded[b : b + 1], w[:, :9].reshape(3, 1, 3, 3), w[:, 9], groups=3)
                patch = full[0, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4]
                torch.testing.assert_close(y[b, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4], patch)
    with pytest.raises(ValueError, match="weight signal"):
        layer(x, signal[:, :-1])


def test_bad_input_raises_clear_errors():
    net = PaperUNet(channels=2)
    with pytest.raises(ValueError, match=r"expects input \(batch, 1"):
        net(torch.randn(1, 2, 16, 16))
    with pytest.raises(ValueError, match="divide by 8"):
        net(torch.randn(1, 1, 20, 16))
    with pytest.raises(ValueError, match="expects input"):
        MultiBranchUNet(in_channels=4, channels=2)(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="conv must be one of"):
        PaperUNet(conv="deformable")
    with pytest.raises(ValueError, match="odd"):
        PaperUNet(channels=2, kernel_size=4)
    with pytest.raises(ValueError, match="one value per block"):
        FlatDilatedCNN(dilations=(1, 2))


def test_hyper_unet_equals_hyperized_regular_unet_in_structure():
    from monai_hyperconv import hyperize

    hyper = PaperUNet(channels=2, conv="hyper", kernel_size=5)
    converted = hyperize(PaperUNet(channels=2), kernel_size=5)
    assert [type(m) for m in hyper.modules()] == [type(m) for m in converted.modules()]
    assert sum(p.numel() for p in hyper.parameters()) == sum(p.numel() for p in converted.parameters())


def test_paper_unet_residual_adds_the_input_and_keeps_the_parameters():
    torch.manual_seed(0)
    plain = PaperUNet(channels=2, conv="hyper", kernel_size=5, dropout=0.0)
    residual = PaperUNet(channels=2, conv="hyper", kernel_size=5, dropout=0.0, residual=True)
    residual.load_state_dict(plain.state_dict())  # the same parameters: residual adds none
    x = torch.rand(2, 1, 16, 16)
    plain.eval(), residual.eval()
    with torch.no_grad():
        assert torch.allclose(residual(x), x + plain(x))
        torch.nn.init.zeros_(residual.head.weight), torch.nn.init.zeros_(residual.head.bias)
        assert torch.equal(residual(x), x)  # a zero correction returns the zero-filled input itself
        scripted = torch.jit.script(residual)
        assert torch.allclose(scripted(x), x)


def test_paper_unet_flags_from_the_command_line_are_read_as_flags():
    """fire passes `--network_def#residual false` as the string 'false', which bool() would read as true."""
    assert PaperUNet(channels=2, residual="false").residual is False
    assert PaperUNet(channels=2, residual="true").residual is True
    assert isinstance(PaperUNet(channels=2, non_local="false").attention, torch.nn.Identity)
    with pytest.raises(ValueError, match="residual"):
        PaperUNet(channels=2, residual="maybe")


def test_paper_unet_residual_needs_as_many_outputs_as_inputs():
    with pytest.raises(ValueError, match=r"in_channels \(2\) must equal out_channels \(1\)"):
        PaperUNet(in_channels=2, out_channels=1, channels=2, residual=True)
