"""TorchScript: every network of configs/networks/ and every bundle's network_def scripts (hyper layers compile as
their materialized convolutions), saves, loads and computes what the eager network computes; MONAI's ckpt_export
scripts a bundle's network from its model.pt."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml
from monai.bundle import ConfigParser

from monai_hyperconv.layers import HyperConv2d, HyperConvNd
from monai_hyperconv.networks.summary import DEFAULT_CONFIG_DIR

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FRAGMENTS = sorted(DEFAULT_CONFIG_DIR.glob("*.yaml"))
BUNDLES = sorted(p for p in os.listdir(os.path.join(REPO, "bundles")) if not p.startswith("."))
HOST = """
spatial_dims: 2
in_channels: {in_channels}
out_channels: 3
network_def:
  _target_: torch.nn.Identity
"""

pytestmark = pytest.mark.usefixtures("one_thread_no_onednn")


def _script_round_trip(net: torch.nn.Module, x: torch.Tensor, path) -> None:
    """Script -> save -> load gives the eager eval-mode outputs; the eager network keeps its hyper layers."""
    net.eval()
    hyper_before = sum(isinstance(m, HyperConvNd) for m in net.modules())
    with torch.no_grad():
        expected = net(x)
    torch.jit.script(net).save(str(path))
    loaded = torch.jit.load(str(path))
    assert sum(isinstance(m, HyperConvNd) for m in net.modules()) == hyper_before, "scripting changed the network"
    with torch.no_grad():
        actual = loaded(x)
    # untrained networks in eval mode reach large values; the FFT path (big kernels) rounds differently
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("path", FRAGMENTS, ids=[f.stem for f in FRAGMENTS])
def test_network_fragment_scripts(path, tmp_path):
    in_channels = 4 if "mb_" in path.stem else 1
    host = tmp_path / "train.yaml"
    host.write_text(HOST.format(in_channels=in_channels))
    parser = ConfigParser()
    parser.read_config([str(host), str(path)])
    target = yaml.safe_load(path.read_text())["network_def"]["_target_"]
    small = [2, 2, 4, 4, 4, 2, 2] if target.endswith("CNN") else 4  # the attention's group norm needs 4
    parser["network_def#channels"] = small
    net = parser.get_parsed_content("network_def")
    _script_round_trip(net, torch.randn(2, in_channels, 32, 32), tmp_path / "net.ts")


@pytest.mark.parametrize("bundle", BUNDLES)
def test_bundle_network_def_scripts(bundle, tmp_path):
    parser = ConfigParser()
    parser.read_config(os.path.join(REPO, "bundles", bundle, "configs", "train.yaml"))
    net = parser.get_parsed_content("network_def")
    assert any(isinstance(m, HyperConvNd) for m in net.modules()), "the bundles train hyper networks"
    x = torch.randn(1, parser["in_channels"], *[32] * parser["spatial_dims"])
    _script_round_trip(net, x, tmp_path / "net.ts")


def test_scripting_a_hyper_layer_gives_its_materialized_conv():
    layer = HyperConv2d(3, 4, 5)
    scripted = torch.jit.script(layer)
    assert scripted.original_name == "Conv2d"
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), layer(x), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_bundle_ckpt_export_scripts_the_hyper_network(tmp_path):
    """``python -m monai.bundle ckpt_export`` (TorchScript, no trace) on the liver bundle, with weights saved from a
    fresh network_def as the model-zoo CI fakes them (``torch.save(net.state_dict(), models/model.pt)``)."""
    configs = os.path.join(REPO, "bundles", "liver_lesion_seg", "configs")
    parser = ConfigParser()
    parser.read_config(os.path.join(configs, "inference.yaml"))
    torch.manual_seed(5)
    net = parser.get_parsed_content("network_def")
    (tmp_path / "models").mkdir()
    torch.save(net.state_dict(), tmp_path / "models" / "model.pt")
    exported = tmp_path / "models" / "model.ts"
    cmd = [
        sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(exported),
        "--ckpt_file", str(tmp_path / "models" / "model.pt"), "--meta_file", os.path.join(configs, "metadata.json"),
        "--config_file", os.path.join(configs, "inference.yaml"), "--bundle_root", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    x = torch.rand(1, 1, 64, 64)
    net.eval()
    with torch.no_grad():
        expected = net(x)
        torch.testing.assert_close(torch.jit.load(str(exported))(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_non_local_block_computes_what_monais_block_computes(spatial_dims):
    from monai.networks.blocks import SpatialAttentionBlock

    from monai_hyperconv.blocks import paper_non_local_block

    ours = paper_non_local_block(spatial_dims, 8).eval()
    monai_block = SpatialAttentionBlock(spatial_dims, 8, norm_num_groups=8, include_fc=False).eval()
    monai_block.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 8, *[6] * spatial_dims)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), monai_block(x))
        torch.testing.assert_close(torch.jit.script(ours)(x), monai_block(x))
