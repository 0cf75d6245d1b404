"""A bundle's training run starts from the same weights every time: its ``seed`` sets them, not the RNG state of the
process that runs it (the liver bundle's runs once differed from run to run because ``prepare_run`` built the
network before ``set_determinism`` seeded it)."""

import glob
import os

import pytest
import torch
import yaml
from helpers import TINY_BUNDLE_OVERRIDES, tiny_bundle_workflow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLES = sorted(TINY_BUNDLE_OVERRIDES)


def _initial_weights(bundle: str, root: str, process_seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(process_seed)  # whatever ran in this process before the bundle
    wf = tiny_bundle_workflow(bundle, "train", ["train.yaml"], root)
    wf.initialize()
    try:
        return {k: v.detach().clone() for k, v in wf.parser.get_parsed_content("network").state_dict().items()}
    finally:
        wf.finalize()


@pytest.mark.slow
@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_initial_weights_come_from_the_bundle_seed(bundle, tmp_path):
    first = _initial_weights(bundle, str(tmp_path / "a"), process_seed=1)
    second = _initial_weights(bundle, str(tmp_path / "b"), process_seed=2)
    assert first.keys() == second.keys()
    differing = [k for k in first if not torch.equal(first[k], second[k])]
    assert not differing, f"{bundle}: initial weights depend on the process's RNG state: {differing[:5]}"


def _load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _initialize_lists():
    """Each train config's ``initialize`` with ``'@setup'`` expanded to the bundle's ``setup`` list, also for the
    shared ``configs/multi_gpu.yaml`` merged on each bundle's ``train.yaml``."""
    shared = _load(os.path.join(REPO, "configs", "multi_gpu.yaml"))["initialize"]
    for path in sorted(glob.glob(os.path.join(REPO, "bundles", "*", "configs", "train.yaml"))):
        config = _load(path)
        name = os.path.relpath(path, REPO)
        for label, initialize in ((name, config["initialize"]), (f"configs/multi_gpu.yaml on {name}", shared)):
            items = []
            for item in initialize:
                items += [str(i) for i in config["setup"]] if item == "@setup" else [str(item)]
            yield label, items


@pytest.mark.parametrize("path, items", list(_initialize_lists()), ids=lambda v: v if isinstance(v, str) else "")
def test_seed_is_set_before_the_network_is_built(path, items):
    """Also the multi-GPU configs (not run here): ``set_determinism`` precedes every item that references the
    network (referencing it builds it)."""
    seeded = [i for i, item in enumerate(items) if "set_determinism" in item]
    builds = [i for i, item in enumerate(items) if "@network" in item]
    assert seeded, f"{path}: initialize does not call set_determinism"
    assert not builds or seeded[0] < builds[0], f"{path}: initialize builds the network before seeding: {items}"
