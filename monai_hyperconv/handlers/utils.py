"""Engine output adapters the bundle configs would otherwise write as lambdas (as ``monai.handlers.utils``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["from_engine_stacked"]


def from_engine_stacked(keys: Sequence[str]) -> Callable:
    """Like ``monai.handlers.from_engine(keys)``, but each key's items stacked into one tensor.

    For metrics computed over a whole batch (e.g. a batch Dice loss over all slices of a volume) of a decollated
    engine output (a list of per-item dictionaries).
    """
    keys = tuple(keys)

    def _stack(output):
        items = output if isinstance(output, (list, tuple)) else [output]
        return tuple(torch.stack([item[k] for item in items]) for k in keys)

    return _stack
