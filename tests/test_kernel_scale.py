"""bundles/liver_lesion_seg/configs/kernel_scale.yaml and handlers.kernel_scale: inference with the hyper kernels
resampled for another resolution (issue 15, item 4)."""

import copy
import pathlib

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser

from monai_hyperconv import HyperConvNd, PaperUNet, resample_kernels
from monai_hyperconv.handlers.kernel_scale import KernelScale, apply_kernel_scale

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "bundles/liver_lesion_seg/configs"


def _hyper(channels=4):
    return PaperUNet(2, 1, 1, channels=channels, conv="hyper", kernel_size=5, hidden_channels=[16, 16, 4])


def _run_inference_handlers(tmp_path, scale, network_fragment=None):
    """The inference evaluator's handlers as the merged configs define them, fired on a stand-in engine (the real
    evaluator would generate the embedded data set first): returns the network they loaded and resampled."""
    torch.manual_seed(0)
    trained = PaperUNet(2, 1, 1, channels=4, conv="regular", kernel_size=5) if network_fragment else _hyper()
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    files = [str(CONFIGS / "inference.yaml")] + ([str(network_fragment)] if network_fragment else [])
    parser = ConfigParser()
    parser.read_config([*files, str(CONFIGS / "kernel_scale.yaml")])
    parser.update({"bundle_root": str(tmp_path), "checkpoint": str(tmp_path / "model.pt"), "network_def#channels": 4,
                   "device": "$torch.device('cpu')", "kernel_scale": scale})  # fmt: skip
    handlers = parser.get_parsed_content("evaluator#val_handlers")
    network = parser.get_parsed_content("network")
    engine = Engine(lambda e, b: None)
    engine.network = network
    for handler in handlers:
        handler.attach(engine)
    engine.run([0], max_epochs=1)
    return trained.eval(), network.eval(), handlers


def test_fragment_resamples_the_loaded_network(tmp_path):
    trained, network, handlers = _run_inference_handlers(tmp_path, 2)
    assert isinstance(handlers[-1], KernelScale) and handlers[-1].scale == 2
    sizes = {(tuple(m.base_kernel_size), tuple(m.kernel_size)) for m in network.modules() if isinstance(m, HyperConvNd)}
    assert sizes == {((5, 5), (11, 11))}  # 5 taps of width 1 -> 11 taps of width 1/2 over the same extent
    expected = resample_kernels(copy.deepcopy(trained), 2)  # the trained weights, resampled by hand
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(network(x), expected.eval()(x))
        assert not torch.allclose(network(x), trained(x), atol=1e-3)


def test_scale_one_is_the_loaded_network_exactly(tmp_path):
    trained, network, _ = _run_inference_handlers(tmp_path, 1)
    assert all(tuple(m.kernel_size) == (5, 5) for m in network.modules() if isinstance(m, HyperConvNd))
    for (name, a), (_, b) in zip(trained.state_dict().items(), network.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(network(x), trained(x))


def test_regular_network_takes_scale_one_only(tmp_path):
    fragment = ROOT / "configs/networks/unet_5x5.yaml"
    _run_inference_handlers(tmp_path, 1.0, fragment)  # no hyper layer: scale 1 is accepted and changes nothing
    with pytest.raises(ValueError, match="holds no hyper-convolution"):
        _run_inference_handlers(tmp_path, 2, fragment)


def _kernels(net):
    return [m.kernel().detach().clone() for m in net.modules() if isinstance(m, HyperConvNd)]


def test_scale_is_relative_to_the_training_grid():
    torch.manual_seed(0)
    net = _hyper().eval()
    trained = _kernels(net)
    apply_kernel_scale(net, 2)
    once = _kernels(net)
    assert [k.shape[-1] for k in once] == [11] * len(once)
    apply_kernel_scale(net, [2, 2])  # the same target: nothing changes
    assert all(torch.equal(a, b) for a, b in zip(once, _kernels(net)))
    apply_kernel_scale(net, 1.0)  # back to the training grid
    assert all(torch.equal(a, b) for a, b in zip(trained, _kernels(net)))
    with pytest.raises(ValueError, match="one per spatial dim"):
        apply_kernel_scale(net, [2, 2, 2])
