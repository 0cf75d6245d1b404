"""Network weights of a checkpoint: read either of the bundle's checkpoint files, export materialized weights."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from monai_hyperconv.utils.atomic import atomic_torch_save
from monai_hyperconv.utils.files import require_files

__all__ = ["extract_state_dict", "load_network_weights", "save_materialized_weights"]

# Keys under which MONAI's CheckpointSaver and common training scripts store the network's weights.
_NETWORK_KEYS = ("network", "model", "net", "state_dict", "model_state_dict")


def extract_state_dict(checkpoint, path: str = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The network's state dict inside a loaded checkpoint.

    Accepts a bare state dict (MONAI's ``model.pt``), a dict holding it under ``network``/``model``/``net``/
    ``state_dict`` (e.g. a ``checkpoint_last.pt`` with optimizer and trainer state), or a pickled module. A
    ``module.`` prefix left by DistributedDataParallel is removed.
    """
    if isinstance(checkpoint, torch.nn.Module):
        checkpoint = checkpoint.state_dict()
    if not isinstance(checkpoint, Mapping):
        raise TypeError(
            f"checkpoint {path!r} holds a {type(checkpoint).__name__}; expected a state dict or a dict of them."
        )
    if checkpoint and not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        for key in _NETWORK_KEYS:
            if key in checkpoint:
                return extract_state_dict(checkpoint[key], f"{path}[{key!r}]")
        raise KeyError(
            f"checkpoint {path!r} is neither a state dict nor a dict with one of the keys {_NETWORK_KEYS}; "
            f"found keys {sorted(checkpoint)[:10]}."
        )
    state = dict(checkpoint)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_network_weights(network: torch.nn.Module, path: str | os.PathLike, map_location="cpu") -> torch.nn.Module:
    """Load ``model.pt`` (a state dict) or a ``checkpoint_last.pt`` (its ``network`` entry) into ``network``, strictly.

    Raises:
        FileNotFoundError: naming ``path`` when it does not exist.
        RuntimeError: naming ``path`` when it cannot be read or does not fit the network.
    """
    path = os.fspath(path)
    require_files([path], "checkpoint (train the bundle first, or pass --checkpoint)")
    try:
        loaded = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or garbled file: say which one
        raise RuntimeError(f"Cannot read the checkpoint {path}: {e}") from e
    try:
        network.load_state_dict(extract_state_dict(loaded, path))
    except (RuntimeError, KeyError, TypeError) as e:
        raise RuntimeError(f"The checkpoint {path} does not fit the network (another network_def?): {e}") from e
    return network


def save_materialized_weights(
    network: torch.nn.Module, checkpoint: str | os.PathLike, output: str | os.PathLike
) -> str:
    """Weights for deployment without kernel networks: load ``checkpoint`` into the hyper ``network``,
    :func:`~monai_hyperconv.materialize` it (in place) and save its state dict atomically to ``output``.

    The result loads into ``materialize(<the same network_def>)``, e.g. for ``python -m monai.bundle ckpt_export``
    (see ``configs/export/materialize.yaml``). Returns ``output``.
    """
    from monai_hyperconv.convert import materialize

    network = materialize(load_network_weights(network, checkpoint))
    atomic_torch_save(network.state_dict(), output)
    return os.fspath(output)
