"""The random state a training consumes, as a checkpoint entry, so that a resumed run replays the same numbers.

Between two epochs, training draws random numbers from: torch's generators (dropout, the shuffling sampler's
seed, the DataLoader's worker base seed), numpy's and Python's (some transforms), each MONAI ``Randomizable``
transform's own ``RandomState`` (augmentation in the main process) and, for a ``DistributedSampler``, its epoch.
:class:`TrainingRandomState` captures all of them in ``state_dict()`` and restores them in ``load_state_dict()``;
:class:`~monai_hyperconv.handlers.ResumableCheckpointer` stores it in ``checkpoint_last.pt`` right after the
epoch's validation, so an interrupted run resumed from there draws what the uninterrupted run drew next.

DataLoader workers draw from their own copies of the transforms, seeded by MONAI's ``worker_init_fn`` from a base
seed the main process draws from torch's generator when the workers start. Non-persistent workers start anew each
epoch, so they are seeded from the saved state in the uninterrupted run as in the resumed one. Persistent workers
(``persistent_workers=True``) keep their state from epoch to epoch, out of the main process's reach (no public API
restarts them): a run with them resumes, but does not replay exactly (:func:`replays_exactly` says which). Entries are plain tensors and numbers (``torch.load(weights_only=True)`` reads them); under
``torch.distributed`` every rank's state is gathered into ``ranks[r]``.
"""

from __future__ import annotations

import logging
import random

import numpy as np
import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from monai.transforms import Randomizable
from torch.utils.data import DataLoader, DistributedSampler

__all__ = ["TrainingRandomState", "randomizable_transforms", "replays_exactly"]


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


def replays_exactly(loader) -> bool:
    """Whether a run resumed from a :class:`TrainingRandomState` draws what the uninterrupted run drew: not with
    persistent DataLoader workers, whose transforms keep their own random state between epochs."""
    return not (isinstance(loader, DataLoader) and loader.persistent_workers and loader.num_workers > 0)


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

    A handler: :meth:`attach` to the trainer makes it follow the trainer's DataLoader (at ``Events.STARTED``).

    Args:
        dataloader: the training DataLoader, whose dataset's transforms, sampler and generator are captured;
            None captures the global generators only (until :meth:`attach` finds the trainer's).
    """

    def __init__(self, dataloader: DataLoader | None = None) -> None:
        self.dataloader = dataloader
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        """Capture ``engine``'s DataLoader from the start of its run (before a resume restores this state)."""
        self.logger = engine.logger
        engine.add_event_handler(Events.STARTED, self.follow_dataloader)

    def follow_dataloader(self, engine: Engine) -> None:
        """Use ``engine.state.dataloader`` (a DataLoader; other iterables: the global generators only)."""
        data = engine.state.dataloader
        self.dataloader = data if isinstance(data, DataLoader) else None
        if not replays_exactly(data):
            self.logger.warning(
                "The training DataLoader has persistent workers: a resumed run continues, but does not replay "
                "the uninterrupted run exactly (persistent_workers=False makes it exact)."
            )

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
