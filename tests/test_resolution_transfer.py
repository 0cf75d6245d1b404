"""benchmarks/resolution_transfer.py: the three routes from test-size slices to test-size probabilities."""

import argparse
import importlib.util
import pathlib

import torch

from monai_hyperconv import PaperUNet

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "resolution_transfer.py"
_spec = importlib.util.spec_from_file_location("resolution_transfer", _PATH)
resolution_transfer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resolution_transfer)


def _net(conv):
    torch.manual_seed(0)
    return PaperUNet(2, 1, 1, channels=4, conv=conv, kernel_size=5, hidden_channels=[16, 16, 4]).eval()


@torch.no_grad()
def test_routes_give_test_size_probabilities_and_resample_hyper_only():
    args = argparse.Namespace(train_size=16, test_size=32)
    x = torch.rand(2, 1, 32, 32)
    hyper = resolution_transfer.routes(_net("hyper"), args)
    assert set(hyper) == {"unchanged", "resize", "resampled"}
    assert set(resolution_transfer.routes(_net("regular"), args)) == {"unchanged", "resize"}
    for route in hyper.values():
        p = route(x)
        assert p.shape == x.shape and 0 <= p.min() and p.max() <= 1
    assert not torch.allclose(hyper["resampled"](x), hyper["unchanged"](x), atol=1e-4)
    # resize route = the network at train size on the area-downsampled slices, upsampled bilinearly
    net = _net("hyper")
    small = torch.sigmoid(net(torch.nn.functional.interpolate(x, size=(16, 16), mode="area")))
    expected = torch.nn.functional.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(hyper["resize"](x), expected)


@torch.no_grad()
def test_same_size_routes_agree():
    args = argparse.Namespace(train_size=32, test_size=32)
    x = torch.rand(1, 1, 32, 32)
    routes = resolution_transfer.routes(_net("hyper"), args)
    for name in ("resize", "resampled"):
        torch.testing.assert_close(routes[name](x), routes["unchanged"](x))


def test_run_route_pools_dice_over_batches():
    label = torch.zeros(2, 1, 4, 4)
    label[0, 0, :2, :2] = 1  # 4 lesion pixels in the first image, none in the second
    pred = torch.zeros(2, 1, 4, 4)
    pred[0, 0, :2, :1] = 1  # 2 true positives
    pred[1, 0, 0, 0] = 1  # 1 false positive on the lesion-free image counts
    dice, seconds = resolution_transfer.run_route(lambda x: x, [(pred, label)])
    assert abs(dice - 2 * 2 / (2 * 2 + 1 + 2)) < 1e-6 and seconds >= 0
