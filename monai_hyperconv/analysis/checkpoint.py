"""Build a bundle's network from its config and load a trained checkpoint into it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from monai.bundle import ConfigParser
from torch import nn

from monai_hyperconv.handlers.checkpoint_loader import extract_state_dict

__all__ = ["build_bundle_network", "extract_state_dict", "load_bundle_network"]


def _config_files(config_file: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The config file list ``monai.bundle`` accepts (a path, a list, or comma-separated paths), each checked."""
    if isinstance(config_file, (str, os.PathLike)):
        text = str(config_file)
        files = text.split(",") if "," in text and not os.path.isfile(text) else [text]
    else:
        files = [str(f) for f in config_file]
    if not files:
        raise ValueError("config_file is empty: expected a bundle config file or a list of them.")
    for f in files:
        if not os.path.isfile(f):
            raise FileNotFoundError(f"config file {f!r} does not exist (expected a bundle .yaml/.json config).")
    return files


def build_bundle_network(
    config_file: str | os.PathLike | Sequence[str | os.PathLike],
    network_id: str = "network_def",
    **override: Any,
) -> nn.Module:
    """Instantiate ``network_id`` from merged bundle config files, as ``python -m monai.bundle run`` would.

    Args:
        config_file: a config file, a list of them (later ones win, e.g. ``[train.yaml, configs/networks/x.yaml]``),
            or a comma-separated string.
        network_id: the id of the network definition in the config.
        override: config ids to override (``{"spatial_dims": 3}``, ``{"network_def#channels": [4, 8]}``).
    """
    parser = ConfigParser()
    parser.read_config(_config_files(config_file))
    parser.update(override)
    if network_id not in parser:
        raise KeyError(f"id {network_id!r} is not defined in config {config_file!r}.")
    network = parser.get_parsed_content(network_id)
    if not isinstance(network, nn.Module):
        raise TypeError(
            f"id {network_id!r} in config {config_file!r} is a {type(network).__name__}, not a torch module."
        )
    return network


def load_bundle_network(
    config_file: str | os.PathLike | Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike,
    network_id: str = "network_def",
    map_location: str | torch.device = "cpu",
    **override: Any,
) -> nn.Module:
    """Build the bundle's network (see :func:`build_bundle_network`) and load ``checkpoint`` into it, strictly.

    Returns:
        The network in eval mode, on ``map_location``.

    Raises:
        FileNotFoundError: when the checkpoint or a config file is missing.
        RuntimeError: when the checkpoint's weights do not fit the configured network (naming both files).
    """
    checkpoint = str(checkpoint)
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint {checkpoint!r} does not exist (expected a bundle's model.pt).")
    network = build_bundle_network(config_file, network_id, **override)
    try:
        loaded = torch.load(checkpoint, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated/garbled file: say which one
        raise RuntimeError(f"cannot read checkpoint {checkpoint!r}: {err}") from err
    state = extract_state_dict(loaded, checkpoint)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RuntimeError(
            f"checkpoint {checkpoint!r} does not match the network {network_id!r} of config {config_file!r} "
            f"(was it trained with another network fragment or other overrides?): {err}"
        ) from err
    return network.to(map_location).eval()
