"""Networks from the ``configs/networks/*.yaml`` fragments, built as a bundle builds them.

Kept apart from :mod:`~monai_hyperconv.networks.summary` (a command-line module), so that importing the package
does not import the module ``python -m monai_hyperconv.networks.summary`` runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from monai.bundle import ConfigParser
from torch import nn

from monai_hyperconv.utils.resources import shared_config_path

__all__ = ["DEFAULT_CONFIG_DIR", "network_from_fragment"]

#: ``configs/networks``: package data in an installed wheel, the repository's folder in a source checkout
DEFAULT_CONFIG_DIR = shared_config_path("networks")


def network_from_fragment(
    path: str | Path,
    spatial_dims: int = 2,
    in_channels: int = 1,
    out_channels: int = 1,
    overrides: Mapping[str, object] | None = None,
) -> nn.Module:
    """Build ``network_def`` of a network fragment with MONAI's ``ConfigParser``, as a bundle would.

    Args:
        path: a ``configs/networks/<variant>.yaml``.
        spatial_dims, in_channels, out_channels: the ids every bundle defines, which the fragment references.
        overrides: config ids to override, e.g. ``{"network_def#kernel_size": 7}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"network fragment {path} does not exist.")
    fragment = ConfigParser.load_config_files(str(path))
    if "network_def" not in fragment:
        raise KeyError(f"network fragment {path} defines no 'network_def'.")
    # merged on top of the ids a bundle defines, as `--config_file "[train.yaml, fragment]"` merges it
    ids = {"spatial_dims": spatial_dims, "in_channels": in_channels, "out_channels": out_channels}
    parser = ConfigParser({**ids, **fragment})
    for key, value in (overrides or {}).items():
        parser[key] = value
    return parser.get_parsed_content("network_def", instantiate=True)
