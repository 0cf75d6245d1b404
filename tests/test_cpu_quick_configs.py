"""The main jobs' ``cpu_quick.yaml`` overlays: every key overrides an id the bundle defines (a misspelt key would
silently add an unused id and leave the paper-sized setting in place), and the merged network builds."""

import os

import pytest
import torch
from monai.bundle import ConfigParser

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLES = ["liver_lesion_seg", "liver_lesion_seg_3d", "ms_lesion_seg", "csmri_recon"]


def _configs(bundle):
    configs = os.path.join(REPO, "bundles", bundle, "configs")
    return (
        os.path.join(configs, "train.yaml"),
        os.path.join(configs, "evaluate.yaml"),
        os.path.join(configs, "cpu_quick.yaml"),
    )


@pytest.mark.parametrize("bundle", BUNDLES)
def test_every_cpu_quick_key_overrides_an_existing_id(bundle):
    train, evaluate, quick = _configs(bundle)
    base = ConfigParser()
    base.read_config([train, evaluate])
    overrides = ConfigParser.load_config_file(quick)
    unknown = [key for key in overrides if key not in base]
    assert not unknown, f"{quick}: keys {unknown} are not ids of train.yaml / evaluate.yaml"


def _network(config_files):
    parser = ConfigParser()
    parser.read_config(config_files)
    return parser, parser.get_parsed_content("network_def", instantiate=True)


@pytest.mark.slow
@pytest.mark.parametrize("bundle", BUNDLES)
def test_cpu_quick_network_is_the_smaller_same_model_and_runs(bundle):
    train, _, quick = _configs(bundle)
    _, paper_net = _network([train])
    parser, net = _network([train, quick])
    assert type(net) is type(paper_net)
    # 8 instead of 32 channels: about 16x fewer weights in the convolutions' channel products
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in paper_net.parameters()) / 8
    shape = [64] * 2 if parser["spatial_dims"] == 2 else [16] * 3
    x = torch.randn(1, parser["in_channels"], *shape)
    with torch.no_grad():
        y = net.eval()(x)
    assert y.shape == (1, parser["out_channels"], *shape)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_cpu_quick_merges_on_inference(bundle):
    """The docs run inference of the main job's model with the same overlay: it must merge on inference.yaml."""
    configs = os.path.join(REPO, "bundles", bundle, "configs")
    _, paper_net = _network([os.path.join(configs, "train.yaml")])
    _, net = _network([os.path.join(configs, "inference.yaml"), os.path.join(configs, "cpu_quick.yaml")])
    assert type(net) is type(paper_net)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in paper_net.parameters()) / 8
