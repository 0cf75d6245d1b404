"""The MS bundle's datalist: the ISBI 2015 images of ``dataset_dir``, the phantoms generated there first when asked.

One function for the single-process and the distributed bundles: rank 0 generates, every rank then reads the
folder, so the data-parallel config needs no rank logic of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch.distributed as dist

from monai_hyperconv.apps.ms.isbi import find_isbi_images
from monai_hyperconv.apps.ms.phantoms import ensure_ms_dataset
from monai_hyperconv.utils.flags import as_bool

__all__ = ["prepare_ms_datalist"]


def prepare_ms_datalist(
    dataset_dir: str | os.PathLike, phantoms: Mapping | None = None, generate_data: bool | str = True
) -> list[dict]:
    """Every ISBI-layout time point of ``dataset_dir`` (:func:`~monai_hyperconv.apps.ms.isbi.find_isbi_images`).

    When ``generate_data`` is on and the folder is missing or empty, the embedded phantoms are generated there
    first (:func:`~monai_hyperconv.apps.ms.phantoms.ensure_ms_dataset` with the arguments ``phantoms``); in a
    distributed run rank 0 generates them and the other ranks wait at a barrier.

    Args:
        dataset_dir: the ISBI 2015 folder.
        phantoms: arguments of ``ensure_ms_dataset`` (None: its defaults).
        generate_data: the bundle's on/off flag (YAML or command-line string); off requires real data.

    Raises:
        ValueError: naming ``generate_data`` when it is not a flag.
    """
    generate = as_bool(generate_data, "generate_data")
    distributed = dist.is_available() and dist.is_initialized()
    if generate and (not distributed or dist.get_rank() == 0):
        ensure_ms_dataset(dataset_dir, **dict(phantoms or {}))
    if distributed:
        dist.barrier()
    return find_isbi_images(dataset_dir)
