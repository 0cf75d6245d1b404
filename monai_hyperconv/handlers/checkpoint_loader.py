"""Network weights of a checkpoint: read either of the bundle's checkpoint files, export materialized weights."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from monai.handlers import CheckpointLoader

from monai_hyperconv.networks.fragments import DEFAULT_CONFIG_DIR, network_from_fragment
from monai_hyperconv.utils.atomic import atomic_torch_save
from monai_hyperconv.utils.distributed import unwrap_module
from monai_hyperconv.utils.files import require_files

__all__ = [
    "CheckedCheckpointLoader",
    "checkpoint_differences",
    "describe_checkpoint_mismatch",
    "extract_state_dict",
    "load_network_weights",
    "save_materialized_weights",
]

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
    state = extract_state_dict(loaded, path)
    try:
        network.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        raise RuntimeError(describe_checkpoint_mismatch(state, network, path)) from e
    return network


def _fragment_matches(state: Mapping[str, torch.Tensor], network: torch.nn.Module, config_dir: Path):
    """(fragment, exact) for every network fragment whose parameter names equal the checkpoint's."""
    net = unwrap_module(network)
    ids = {k: getattr(net, k) for k in ("spatial_dims", "in_channels", "out_channels") if hasattr(net, k)}
    found = []
    for fragment in sorted(config_dir.glob("*.yaml")):
        try:
            candidate = network_from_fragment(fragment, **ids).state_dict()
        except Exception:  # noqa: BLE001, S112  a fragment that does not build with these ids cannot be the one
            continue
        if set(candidate) == set(state):
            exact = all(tuple(candidate[k].shape) == tuple(state[k].shape) for k in state)
            # kernel sizes (trailing dims of conv weights) tell e.g. unet_3x3 from unet_5x5 at any width
            kernels = all(tuple(candidate[k].shape[2:]) == tuple(state[k].shape[2:]) for k in state)
            found.append((fragment, exact, kernels))
    if any(kernels for _, _, kernels in found):
        found = [m for m in found if m[2]]
    return [(fragment, exact) for fragment, exact, _ in found]


def checkpoint_differences(
    state: Mapping[str, torch.Tensor], network: torch.nn.Module
) -> tuple[list[str], list[str], list[str]]:
    """The names ``network`` has and ``state`` lacks, the names ``state`` has and ``network`` lacks, and
    ``"name: (checkpoint shape) vs (network shape)"`` for shared names of other shape; all empty when it fits."""
    expected = unwrap_module(network).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: {tuple(getattr(state[k], 'shape', ()))} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)
    ]
    return missing, unexpected, shapes


def describe_checkpoint_mismatch(
    state: Mapping[str, torch.Tensor], network: torch.nn.Module, path: str, config_dir: str | Path | None = None
) -> str:
    """Why ``state`` (from ``path``) does not load into ``network``: the names and shapes that differ, which
    ``configs/networks`` fragment the checkpoint seems to hold, and what to merge.

    Args:
        state: the checkpoint's network state dict.
        network: the configured network.
        path: the checkpoint file, named in the message.
        config_dir: the folder of network fragments (``configs/networks`` of the repository by default).
    """
    missing, unexpected, shapes = checkpoint_differences(state, network)
    parts = [f"The checkpoint {path} does not fit the configured network {type(unwrap_module(network)).__name__}"]
    if missing or unexpected:
        parts.append(
            f"{len(missing)} parameter(s) missing (e.g. {missing[:2]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:2]})"
        )
    if shapes:
        parts.append(f"{len(shapes)} of other shape (checkpoint vs network, e.g. {shapes[0]})")
    config_dir = Path(config_dir) if config_dir is not None else DEFAULT_CONFIG_DIR
    matches = _fragment_matches(state, network, config_dir) if config_dir.is_dir() else []
    exact = [f for f, e in matches if e]
    if exact:
        names = ", ".join(str(f) for f in exact)
        parts.append(
            f"it holds the network of {names}: merge that fragment after the bundle config "
            f"(--config_file \"['<bundle config>', '{exact[0]}']\")"
        )
    elif matches:
        names = ", ".join(str(f) for f, _ in matches)
        parts.append(
            f"it holds a network with the layers of {names} but other widths: merge that fragment and "
            "override the ids that differ (e.g. network_def#channels)"
        )
    else:
        parts.append(
            f"no fragment of {config_dir} matches it; expected the network_def the checkpoint was trained with"
        )
    return "; ".join(parts) + "."


class CheckedCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` whose errors name the checkpoint and, when the network does not fit, the
    network fragment the checkpoint seems to hold (:func:`describe_checkpoint_mismatch`). Same arguments."""

    def __call__(self, engine) -> None:
        require_files([self.load_path], "checkpoint (train the bundle first, or pass --checkpoint)")
        try:
            super().__call__(engine)
        except Exception as e:
            if len(self.load_dict) == 1 and isinstance(next(iter(self.load_dict.values())), torch.nn.Module):
                network = next(iter(self.load_dict.values()))
                try:
                    loaded = torch.load(self.load_path, map_location="cpu", weights_only=True)
                    state = extract_state_dict(loaded, self.load_path)
                except Exception as read_error:  # noqa: BLE001  unreadable: say so, naming the file
                    raise RuntimeError(f"Cannot read the checkpoint {self.load_path}: {read_error}") from e
                raise RuntimeError(describe_checkpoint_mismatch(state, network, self.load_path)) from e
            raise RuntimeError(f"Cannot load the checkpoint {self.load_path}: {e}") from e


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
