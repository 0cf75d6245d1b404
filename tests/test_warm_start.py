"""configs/warm_start/hyperize_fit.yaml and apps.warm_start.hyperize_checkpoint: a bundle's network_def built as
the fitted hyper version of a trained regular network (issue 14, item 1)."""

import csv
import pathlib

import pytest
import torch
from monai.bundle import ConfigParser

from monai_hyperconv import HyperConvNd, PaperUNet
from monai_hyperconv.apps.warm_start import hyperize_checkpoint, summarize_fit

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAIN = ROOT / "bundles/liver_lesion_seg/configs/train.yaml"
FRAGMENT = ROOT / "configs/warm_start/hyperize_fit.yaml"
CHANNELS = 4


def _trained_unet(path):
    """A regular UNet 5x5 (as configs/networks/unet_5x5.yaml, 4 channels) with non-default weights and batch-norm
    statistics, saved as a bundle's model.pt."""
    torch.manual_seed(0)
    net = PaperUNet(2, 1, 1, channels=CHANNELS, conv="regular", kernel_size=5)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), path)
    return net.eval()


def _parser(tmp_path, checkpoint, **overrides):
    parser = ConfigParser()
    parser.read_config([str(TRAIN), str(FRAGMENT)])
    parser["bundle_root"] = str(tmp_path)
    parser["warm_start_checkpoint"] = str(checkpoint)
    parser["warm_start_network_def#channels"] = CHANNELS
    for key, value in overrides.items():
        parser[key] = value
    return parser


def _report(tmp_path):
    with open(tmp_path / "outputs" / "warm_start_fit.csv") as f:
        return list(csv.DictReader(f))


def _output_error(got, expected):
    """Relative to the outputs' spatial variation (a per-channel constant would make a plain relative error small)."""
    return float((got - expected).norm() / (expected - expected.mean(dim=(2, 3), keepdim=True)).norm())


def _outputs(a, b, x):
    with torch.no_grad():
        return a.eval()(x), b.eval()(x)


def test_fragment_builds_the_fitted_hyper_network_with_the_regular_outputs(tmp_path):
    regular = _trained_unet(tmp_path / "model.pt")
    parser = _parser(
        tmp_path, tmp_path / "model.pt", warm_start_hidden_channels=[16, 16, 32], warm_start_kernel_size=None
    )
    net = parser.get_parsed_content("network_def")
    hyper = [m for m in net.modules() if isinstance(m, HyperConvNd)]
    assert len(hyper) == 17 and all(m.kernel_net.hidden_channels[-1] == 32 for m in hyper)
    assert {tuple(m.kernel_size) for m in hyper} == {(5, 5), (3, 3)}  # null: each layer keeps its own size
    x = torch.rand(2, 1, 32, 32)
    expected, got = _outputs(regular, net, x)
    # N_L = 32 > 25 taps: an exact fit. (At N_L = 24, N_L + 1 = taps, the hidden features of a layer can be
    # rank-deficient at initialisation, and then the fit is not exact: seen on 1 of 17 layers.)
    assert _output_error(got, expected) < 0.02
    assert parser.get_parsed_content("output_bias_prior") is None  # the trained head bias is kept
    rows = _report(tmp_path)
    assert len(rows) == 17 and max(float(r["relative_error"]) for r in rows) < 1e-3
    assert {r["kernel_size_new"] for r in rows} == {"5x5", "3x3"}


def test_default_kernel_size_gives_the_hyper_unet_5x5_architecture(tmp_path):
    """kernel_size 5 (the default): every hyper layer 5x5 (UNet 5x5's 3x3 up-convolutions zero-padded), so the
    saved weights load into configs/networks/hyper_unet_5x5.yaml's network and compute the same outputs."""
    regular = _trained_unet(tmp_path / "model.pt")
    saved = tmp_path / "fitted.pt"
    parser = _parser(
        tmp_path, tmp_path / "model.pt", warm_start_hidden_channels=[16, 16, 32], warm_start_save=str(saved)
    )
    net = parser.get_parsed_content("network_def")
    assert {tuple(m.kernel_size) for m in net.modules() if isinstance(m, HyperConvNd)} == {(5, 5)}
    x = torch.rand(2, 1, 32, 32)
    expected, got = _outputs(regular, net, x)
    assert _output_error(got, expected) < 0.02  # 3x3 zero-padded to 25 taps: still exact
    plain = PaperUNet(2, 1, 1, channels=CHANNELS, conv="hyper", kernel_size=5, hidden_channels=[16, 16, 32])
    plain.load_state_dict(torch.load(saved, weights_only=True))
    again, got = _outputs(plain, net, x)
    torch.testing.assert_close(again, got)


def test_small_n_l_is_an_approximation_and_the_report_says_so(tmp_path):
    regular = _trained_unet(tmp_path / "model.pt")
    parser = _parser(tmp_path, tmp_path / "model.pt", warm_start_fit_steps=1)  # N_L = 4: 5 < 25 taps
    net = parser.get_parsed_content("network_def")
    rows = _report(tmp_path)
    assert all(int(r["n_l"]) == 4 and int(r["steps"]) > 0 for r in rows)
    assert min(float(r["relative_error"]) for r in rows) > 0.05
    expected, got = _outputs(regular, net, torch.rand(2, 1, 32, 32))
    assert _output_error(got, expected) > 0.02


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    net = PaperUNet(2, 1, 1, channels=CHANNELS, conv="regular", kernel_size=5)
    with pytest.raises(ValueError, match="warm_start_checkpoint"):
        hyperize_checkpoint(net, None)
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        hyperize_checkpoint(net, tmp_path / "nothing.pt")
    torch.save(PaperUNet(2, 1, 1, channels=8, conv="regular", kernel_size=5).state_dict(), tmp_path / "other.pt")
    # the checkpoint-mismatch message of handlers.checkpoint_loader: names the file and the fragment it seems to hold
    with pytest.raises(RuntimeError, match=r"other\.pt does not fit the configured network PaperUNet.*unet_5x5\.yaml"):
        hyperize_checkpoint(net, tmp_path / "other.pt")


def test_summarize_fit():
    rows = [{"relative_error": e, "n_l": 4, "taps": t} for e, t in ((0.1, 25), (0.3, 25), (0.0, 4))]
    assert summarize_fit(rows) == (
        "3 layers fitted (1 with N_L + 1 >= taps), relative kernel error max 0.3, median 0.1"
    )
    assert summarize_fit([]) == "no layer fitted"
