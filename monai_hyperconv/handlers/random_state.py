"""The random state a training consumes, as a checkpoint entry, so that a resumed run replays the same numbers.

Between two epochs, training draws random numbers from: torch's generators (dropout, the shuffling sampler's
seed, the DataLoader's worker base seed), numpy's and Python's (some transforms), each MONAI ``Randomizable``
transform's own ``RandomState`` (augmentation in the main process) and, for a ``DistributedSampler``, its epoch.
:class:`TrainingRandomState` captures all of them in ``state_dict()`` and restores them in ``load_state_dict()``;
:class:`~monai_hyperconv.handlers.ResumableCheckpointer` stores it in ``checkpoint_last.pt`` right after the
epoch's validation, so an interrupted run resumed from there draws what the uninterrupted run drew next.

DataLoader workers draw from their own copies of the transforms, seeded by MONAI's ``worker_init_fn`` from a base
seed the main process draws from torch's generator when the workers start. With ``persistent_workers`` they
would keep their state from epoch to epoch, out of the main process's reach: :meth:`restart_workers` ends them at
each checkpoint, so the next epoch's workers are seeded from the saved state, in the uninterrupted run as in the
resumed one. Entries are plain tensors and numbers (``torch.load(weights_only=True)`` reads them); under
``torch.distributed`` every rank's state is gathered into ``ranks[r]``.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.distributed as dist
from monai.transforms import Randomizable
from torch.utils.data import DataLoader, DistributedSampler

__all__ = ["TrainingRandomState", "randomizable_transforms"]


def randomizable_transforms(obj, _seen: set | None = None) -> list[Randomizable]:
    """Every MONAI ``Randomizable`` reachable from ``obj`` through attributes, lists and tuples, in a fixed order.

    The walk follows ``monai.data.utils.set_rnd`` (which seeds DataLoader workers the same way) but also enters
    randomizable objects, whose inner transforms (e.g. ``RandAffined.rand_affine``) hold their own generators.
    Dicts (cached data) and tensors are not entered.
    """
    seen = set() if _seen is None else _seen
    if id(obj) in seen or isinstance(obj, (torch.Tensor, np.ndarray, str, bytes, dict)):
        return []
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        return [r for item in obj for r in randomizable_transforms(item, seen)]
    if not hasattr(obj, "__dict__"):
        return []
    found = [obj] if isinstance(obj, Randomizable) else []
    for key in sorted(vars(obj)):
        found += randomizable_transforms(vars(obj)[key], seen)
    return found


def _pack_numpy(state: tuple) -> dict:
    """numpy's legacy MT19937 state tuple as tensors and numbers (no numpy objects in the checkpoint)."""
    _name, keys, pos, has_gauss, gauss = state
    return {
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def _unpack_numpy(state: dict) -> tuple:
    return ("MT19937", state["keys"].numpy().astype(np.uint32), state["pos"], state["has_gauss"], state["gauss"])


class TrainingRandomState:
    """Checkpoint entry with the random state of one trainer's process (every rank's under torch.distributed).

    Args:
        dataloader: the training DataLoader, whose dataset's transforms, sampler and generator are captured;
            None captures the global generators only (the checkpointer passes the trainer's at attach time).
    """

    def __init__(self, dataloader: DataLoader | None = None) -> None:
        self.dataloader = dataloader

    def _transforms(self) -> list[Randomizable]:
        return randomizable_transforms(self.dataloader.dataset) if self.dataloader is not None else []

    def _local_state(self) -> dict:
        state = {
            "python": torch.tensor(random.getstate()[1], dtype=torch.int64),
            "numpy": _pack_numpy(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "transforms": [_pack_numpy(t.R.get_state()) for t in self._transforms()],
        }
        loader = self.dataloader
        if loader is not None:
            sampler = loader.sampler
            state["sampler_epoch"] = int(sampler.epoch) if isinstance(sampler, DistributedSampler) else -1
            state["generator"] = loader.generator.get_state() if loader.generator is not None else None
        return state

    def state_dict(self) -> dict:
        """``{"world_size": n, "ranks": [state of rank 0, ...]}``; a collective call under torch.distributed."""
        local = self._local_state()
        if dist.is_available() and dist.is_initialized():
            ranks = [None] * dist.get_world_size()
            dist.all_gather_object(ranks, local)
        else:
            ranks = [local]
        return {"world_size": len(ranks), "ranks": ranks}

    def load_state_dict(self, state: dict) -> None:
        """Restore this rank's entry.

        Raises:
            ValueError: when the checkpoint was written by another number of ranks or with other transforms.
        """
        distributed = dist.is_available() and dist.is_initialized()
        world, rank = (dist.get_world_size(), dist.get_rank()) if distributed else (1, 0)
        if int(state["world_size"]) != world:
            raise ValueError(
                f"the random state was saved by {state['world_size']} process(es), this run has {world}; "
                "resume with the same number of processes (torchrun --nproc_per_node) for an exact replay."
            )
        local = state["ranks"][rank]
        random.setstate((3, tuple(int(v) for v in local["python"].tolist()), None))
        np.random.set_state(_unpack_numpy(local["numpy"]))
        torch.set_rng_state(local["torch"].cpu())
        if local["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in local["cuda"]])
        transforms = self._transforms()
        if len(transforms) != len(local["transforms"]):
            raise ValueError(
                f"the random state holds {len(local['transforms'])} random transform(s), the training data has "
                f"{len(transforms)}; resume with the augmentation the run was started with."
            )
        for t, s in zip(transforms, local["transforms"]):
            t.R.set_state(_unpack_numpy(s))
        loader = self.dataloader
        if loader is not None:
            if isinstance(loader.sampler, DistributedSampler) and local.get("sampler_epoch", -1) >= 0:
                loader.sampler.set_epoch(local["sampler_epoch"])
            if loader.generator is not None and local.get("generator") is not None:
                loader.generator.set_state(local["generator"].cpu())

    def restart_workers(self) -> None:
        """End the DataLoader's persistent workers, so the next epoch starts new ones seeded from the saved state."""
        loader = self.dataloader
        if loader is not None and loader.persistent_workers and loader.num_workers > 0:
            # DataLoader caches its worker iterator here; None makes the next iter() start fresh workers (the old
            # ones end when the engine drops the exhausted iterator)
            loader._iterator = None
