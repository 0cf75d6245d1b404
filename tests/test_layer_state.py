"""The kernel grid in a hyper layer's state dict: checkpoints written before it load strictly, a grid mismatch
(5x5 into 7x7, a resampled checkpoint into a fresh network) raises naming the layer and both grids, and
load_on_new_grid() asks for sampling on the new grid explicitly."""

from __future__ import annotations

import pytest
import torch
from monai.networks.utils import copy_model_state
from torch import nn

from monai_hyperconv import load_on_new_grid, materialize, resample_kernels
from monai_hyperconv.layers import HyperConv2d, HyperConv3d
from monai_hyperconv.networks import PaperUNet


def _net(kernel_size: int) -> nn.Module:
    return nn.Sequential(HyperConv2d(1, 2, kernel_size), nn.ReLU(), HyperConv2d(2, 1, kernel_size))


def test_grid_is_in_the_state_dict_as_a_tensor():
    layer = HyperConv3d(1, 1, (3, 5, 7))
    state = layer.state_dict()["_extra_state"]
    assert state.dtype == torch.float64
    assert state.tolist() == [[3, 5, 7], [1, 1, 1], [3, 5, 7]]
    resample_kernels(layer, (2, 1, 1))
    assert layer.state_dict()["_extra_state"].tolist() == [[7, 5, 7], [2, 1, 1], [3, 5, 7]]
    assert "_extra_state" not in materialize(layer).state_dict()  # regular convs are unaffected


def test_checkpoint_without_grid_loads_strictly():
    torch.manual_seed(1)
    source = _net(5)
    old = {k: v for k, v in source.state_dict().items() if not k.endswith("_extra_state")}
    assert len(old) == len(source.state_dict()) - 2
    target = _net(5)
    result = target.load_state_dict(old, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    torch.testing.assert_close(target[0].kernel(), source[0].kernel(), rtol=0, atol=0)


def test_loading_into_another_kernel_size_names_layer_and_both_sizes():
    state = _net(5).state_dict()
    with pytest.raises(RuntimeError) as e:
        _net(7).load_state_dict(state)
    message = str(e.value)
    assert "HyperConv2d '0'" in message and "HyperConv2d '2'" in message
    assert "checkpoint's kernels are 5x5" in message and "this layer's are 7x7" in message
    assert "kernel_size=(5, 5)" in message and "load_on_new_grid" in message
    with pytest.raises(RuntimeError, match="5x5"):  # also with strict=False, as any shape mismatch
        _net(7).load_state_dict(state, strict=False)


def test_explicit_route_samples_the_trained_kernel_network_on_the_new_grid():
    torch.manual_seed(2)
    source = _net(5)
    target = _net(7)
    with load_on_new_grid():
        target.load_state_dict(source.state_dict())
    assert target[0].kernel_size == (7, 7)
    # the same kernel network on 7x7 offsets: its inner 5x5 taps are the source kernel
    torch.testing.assert_close(target[0].kernel()[..., 1:-1, 1:-1], source[0].kernel(), rtol=1e-6, atol=1e-7)
    with pytest.raises(RuntimeError):  # the switch ends with the block
        _net(7).load_state_dict(source.state_dict())


def test_resampled_checkpoint_needs_the_same_resampling():
    torch.manual_seed(3)
    trained = resample_kernels(_net(5), 2)
    state = trained.state_dict()
    with pytest.raises(RuntimeError, match=r"11x11 at grid scale \(2.0, 2.0\).*resample_kernels\(model, 2.0\)"):
        _net(5).load_state_dict(state)
    fresh = resample_kernels(_net(5), 2)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh[0].kernel(), trained[0].kernel(), rtol=0, atol=0)


def test_round_trip_through_torch_save_with_weights_only(tmp_path):
    torch.manual_seed(4)
    net = resample_kernels(PaperUNet(2, 1, 1, channels=[2, 4], conv="hyper", kernel_size=3), (2, 1))
    torch.save(net.state_dict(), tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=True)
    fresh = resample_kernels(PaperUNet(2, 1, 1, channels=[2, 4], conv="hyper", kernel_size=3), (2, 1))
    fresh.load_state_dict(loaded, strict=True)
    x = torch.randn(1, 1, 8, 8)
    net.eval()
    fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="grid scale"):
        PaperUNet(2, 1, 1, channels=[2, 4], conv="hyper", kernel_size=3).load_state_dict(loaded)


def test_monai_copy_model_state_takes_the_grid():
    """MONAI's copy_model_state (CheckpointLoader with strict_shape=False, ckpt_export without ignite) compares
    ``.shape`` of every entry: the grid is a tensor, and a mismatch still raises at load_state_dict."""
    torch.manual_seed(5)
    source, target = _net(5), _net(5)
    copy_model_state(target, source)
    torch.testing.assert_close(target[0].kernel(), source[0].kernel(), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="7x7"):
        copy_model_state(_net(7), source)
