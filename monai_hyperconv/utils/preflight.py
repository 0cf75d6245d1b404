"""Refuse a run that cannot work before it generates, caches or trains on any data.

A read-only ``ckpt_dir`` used to fail after a whole epoch, an ``image_size`` the UNet cannot pool after the data
was cached, a ``dataset_dir`` that is a file after the synthetic set was generated. :func:`prepare_run` is the first
``initialize`` step of each bundle config: it checks the folders and the size, then takes the run locks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch

from monai_hyperconv.utils.distributed import unwrap_module
from monai_hyperconv.utils.files import ensure_writable_dir
from monai_hyperconv.utils.outputs import check_folders_apart, check_not_output_dir, mark_output_dir
from monai_hyperconv.utils.run_lock import lock_run_folders

__all__ = [
    "check_dataset_dir",
    "check_image_size",
    "check_learning_rate",
    "check_network_input_size",
    "min_input_size",
    "prepare_run",
]


def _positive_integer(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and number == int(number) and number >= 1


# voxels of one network input at most: 2048 x 2048 in 2D, 161^3 in 3D (the bundles use 256^2 and 96^3)
MAX_INPUT_VOXELS = 2**22


def check_image_size(size: int | Sequence[int], name: str = "image_size", spatial_dims: int = 2) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``size`` is an integer >= 1 or a non-empty sequence of them, and
    one network input of that size holds at most :data:`MAX_INPUT_VOXELS` voxels.

    A size of 0, a negative one or NaN otherwise passes the divisibility check (``0 % 8 == 0``) and fails much later
    inside a resize transform, or casts to an empty volume; a size of 4096 passes it too and ends the run by memory
    (killed, no message) after the data was resized and cached.

    Args:
        size: one int for every spatial dimension, or one per dimension.
        name: the setting that holds ``size``, for the message.
        spatial_dims: the dimensions a single int stands for.
    """
    values = list(size) if isinstance(size, (list, tuple)) else [size]
    if not values or not all(_positive_integer(v) for v in values):
        raise ValueError(f"{name} must be an integer >= 1 (pixels), or one per spatial dimension; got {size!r}.")
    shape = [int(float(v)) for v in values] * (int(spatial_dims) if len(values) == 1 else 1)
    voxels = math.prod(shape)
    if voxels > MAX_INPUT_VOXELS:
        gib = voxels * 32 * 4 / 2**30
        raise ValueError(
            f"{name} {size!r} makes {' x '.join(map(str, shape))} = {voxels:,} voxels per network input; expected at "
            f"most {MAX_INPUT_VOXELS:,} (2048 x 2048 in 2D, 161 x 161 x 161 in 3D): one 32-channel float32 feature "
            f"map of that size alone is {gib:.1f} GiB, and training keeps dozens."
        )


def check_learning_rate(learning_rate: float | str, name: str = "learning_rate") -> float:
    """``learning_rate`` as a float; ``ValueError`` naming ``name`` unless it is a finite number > 0.

    torch's optimizers accept NaN (a NaN loss from the first step) and infinity; a command-line ``nan`` arrives as a
    string and fails inside torch with a message that names no setting.
    """
    try:
        value = float(learning_rate)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(learning_rate, bool) or not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{name} must be a finite number > 0 (e.g. 1e-4, the bundles' default); got {learning_rate!r}."
        )
    return value


def check_dataset_dir(dataset_dir: str | os.PathLike | None) -> None:
    """Raise ``NotADirectoryError`` when ``dataset_dir`` exists but is not a folder (a missing one may be generated)."""
    if dataset_dir is not None and os.path.exists(dataset_dir) and not os.path.isdir(dataset_dir):
        raise NotADirectoryError(f"dataset_dir {os.fspath(dataset_dir)!r} is a file; expected a folder of images.")


def check_network_input_size(
    network: torch.nn.Module | None, size: int | Sequence[int] | None, name: str = "image_size"
):
    """Raise ``ValueError`` when the network's pooling cannot take inputs of ``size`` (e.g. 36 for a 3-pool UNet).

    Networks that pool ``p`` times (``network.pools``, as ``PaperUNet``, ``MultiBranchUNet``, ``HyperSegNet``) need
    every spatial size divisible by ``2**p``; networks without ``pools`` take any size.

    Args:
        network: the configured network (a DDP wrapper is looked through); None skips the check.
        size: the spatial size the network will see, one int for every dimension or one per dimension.
        name: the setting that holds ``size``, for the message.
    """
    pools = getattr(unwrap_module(network), "pools", None) if network is not None else None
    if not pools or size is None:
        return
    sizes = [int(size)] if isinstance(size, (int, float)) else [int(s) for s in size]
    divisor = 2 ** int(pools)
    bad = [s for s in sizes if s % divisor]
    if bad:
        fit = sorted({divisor * max(1, round(s / divisor)) for s in bad})
        raise ValueError(
            f"{name} {list(size) if not isinstance(size, (int, float)) else size} does not fit the network: "
            f"{type(unwrap_module(network)).__name__} pools {pools} times, so every size must divide by {divisor} "
            f"(e.g. {', '.join(map(str, fit))})."
        )


def min_input_size(network: torch.nn.Module | None) -> int:
    """The fewest voxels a network needs along an axis: ``2**pools`` for networks that pool (``network.pools``:
    one voxel at the coarsest level), else 1."""
    pools = getattr(unwrap_module(network), "pools", None) if network is not None else None
    return 2 ** int(pools) if pools else 1


def prepare_run(
    ckpt_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    dataset_dir: str | os.PathLike | None = None,
    network: torch.nn.Module | None = None,
    image_size: int | Sequence[int] | None = None,
    size_name: str = "image_size",
) -> None:
    """Checks and locks a bundle run needs before any work: call it first in ``initialize``.

    Args:
        ckpt_dir: checkpoint folder: created, write-tested and locked (one run per folder).
        output_dir: output folder: outside ``dataset_dir``; created, write-tested, locked and marked as outputs
            (:func:`~monai_hyperconv.utils.outputs.mark_output_dir`: never read as data).
        dataset_dir: must be a folder when it exists, not an output folder, and not inside ``output_dir``.
        network: with ``image_size``: see :func:`check_network_input_size`.
        image_size: the spatial size the network sees: integers >= 1, at most :data:`MAX_INPUT_VOXELS` voxels
            (:func:`check_image_size`; one int stands for every dimension of ``network.spatial_dims``, 2 without it).
        size_name: the setting named in the size error.

    Raises:
        NotADirectoryError, PermissionError, ValueError: naming the setting and what was expected (``ValueError``
            also for an ``output_dir`` inside ``dataset_dir`` or the reverse).
        FolderInUseError: when another live run holds ``ckpt_dir`` or ``output_dir``.
    """
    check_dataset_dir(dataset_dir)
    if dataset_dir is not None:
        check_not_output_dir(dataset_dir)
        if output_dir is not None:
            check_folders_apart(output_dir, "output_dir", dataset_dir=dataset_dir)
    if image_size is not None:
        check_image_size(image_size, size_name, getattr(unwrap_module(network), "spatial_dims", 2))
    check_network_input_size(network, image_size, size_name)
    for what, folder in (("ckpt_dir", ckpt_dir), ("output_dir", output_dir)):
        if folder is not None:
            ensure_writable_dir(folder, what)
    lock_run_folders(ckpt_dir=ckpt_dir, output_dir=output_dir)
    if output_dir is not None:
        mark_output_dir(output_dir)
