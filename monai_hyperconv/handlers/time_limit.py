"""Stop training at an epoch boundary before a wall-clock budget runs out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events

from monai_hyperconv.utils.flags import as_optional_number

__all__ = ["EpochTimeLimit"]


class EpochTimeLimit:
    """Ignite handler: after each epoch, end training if the next epoch would not finish within ``limit_sec``.

    Unlike ``ignite.handlers.TimeLimit`` (which stops mid-epoch), training ends only at an epoch boundary, after
    that epoch's validation and checkpoints, so the run can be resumed (``--resume true``) or evaluated as it is.
    The clock starts when the handler is created (when the bundle builds its trainer); the next epoch's duration is
    estimated by the longest epoch so far. Attach it last. In a distributed run every rank must attach it: they
    stop together when any of them would overrun (ranks that end at different epochs would hang in a collective).

    Args:
        limit_sec: wall-clock budget in seconds; None (or ``null`` / ``none`` from the command line) disables it.
        clock: seconds since any fixed point, read at creation and at every epoch start and end (default
            ``time.monotonic``; a test passes a fake one).

    Raises:
        ValueError: naming ``train_time_limit`` when ``limit_sec`` is neither a non-negative number nor null.
    """

    def __init__(self, limit_sec: float | str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_sec = as_optional_number(limit_sec, "train_time_limit")
        self.clock = clock
        self.start = clock()
        self._epoch_start = self.start
        self._longest = 0.0
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _epoch_started(self, engine: Engine) -> None:
        self._epoch_start = self.clock()

    def __call__(self, engine: Engine) -> None:
        now = self.clock()
        self._longest = max(self._longest, now - self._epoch_start)
        if self.limit_sec is not None and _any_rank(now - self.start + self._longest > self.limit_sec):
            remaining = engine.state.max_epochs - engine.state.epoch
            if remaining > 0:
                self.logger.info(
                    f"EpochTimeLimit: stopping after epoch {engine.state.epoch} ({now - self.start:.0f} s used, next "
                    f"epoch ~{self._longest:.0f} s, budget {self.limit_sec:.0f} s); {remaining} epoch(s) not run."
                )
                engine.terminate()


def _any_rank(flag: bool) -> bool:
    """``flag`` of this process, or-ed over all ranks in a distributed run."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    votes = torch.tensor([int(flag)], device=device)
    dist.all_reduce(votes, op=dist.ReduceOp.MAX)
    return bool(votes.item())
