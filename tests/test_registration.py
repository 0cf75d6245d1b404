"""Importing the plugin registers it with MONAI, and no public name can be confused with a MONAI one."""

import importlib
import pkgutil

import monai
import pytest
from monai.bundle import ConfigParser
from monai.bundle.config_item import ComponentLocator
from monai.networks.layers import Conv

import monai_hyperconv
from monai_hyperconv import HyperConv1d, HyperConv2d, HyperConv3d


def test_conv_factory_resolves_hyper():
    assert Conv["hyper", 1] is HyperConv1d
    assert Conv["hyper", 2] is HyperConv2d
    assert Conv["hyper", 3] is HyperConv3d
    assert Conv[Conv.HYPER, 2] is HyperConv2d


def _all_submodules():
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(monai_hyperconv.__path__, prefix="monai_hyperconv.")
        if not info.name.endswith("__main__")
    ]


def test_short_target_names_are_unambiguous():
    """MONAI's locator resolves short `_target_` names across every module named monai*: a plugin name that
    MONAI (or another plugin module) also defines would be ambiguous or hijack MONAI's component."""
    modules = _all_submodules()
    table = ComponentLocator()._find_classes_or_functions(ComponentLocator()._find_module_names())
    clashes = {
        name: owners
        for name, owners in table.items()
        if not name.startswith("_") and len(owners) > 1 and any(o.startswith("monai_hyperconv") for o in owners)
    }
    assert modules and not clashes, clashes


def test_short_target_resolves_to_the_plugin_in_a_config():
    parser = ConfigParser(
        {
            "imports": ["$import monai_hyperconv"],
            "net": {"_target_": "HyperConv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3},
        }
    )
    assert isinstance(parser.get_parsed_content("net"), HyperConv2d)
    assert monai.__version__.startswith("1.6")


def test_unknown_dims_are_rejected():
    with pytest.raises(ValueError, match="1, 2 or 3"):
        Conv["hyper", 4]
