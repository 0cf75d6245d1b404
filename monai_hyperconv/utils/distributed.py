"""Helpers for distributed (multi-GPU) runs: which rank writes files, and the network under a DDP wrapper."""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_main_process", "unwrap_module"]


def is_main_process() -> bool:
    """True outside distributed runs and on rank 0 inside them (only that rank writes files)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def unwrap_module(obj):
    """The wrapped network of a ``DataParallel`` / ``DistributedDataParallel``, so saved keys have no ``module.``."""
    if isinstance(obj, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        return obj.module
    return obj
