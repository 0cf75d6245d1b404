"""Early stopping on the best validation epoch."""

from __future__ import annotations

import logging
import math

from ignite.engine import Engine, Events

__all__ = ["BestEpochEarlyStopping"]


def _patience(value: int | str | None) -> int | None:
    """``early_stop_patience`` as given in a config or on the command line: None / "null" / "none", or an int >= 1."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none", "")):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number == int(number) and number >= 1):
        raise ValueError(f"early_stop_patience must be null or an integer >= 1 (epochs), got {value!r}.")
    return int(number)


class BestEpochEarlyStopping:
    """Ignite handler: end training when the best validation epoch lies ``patience`` epochs back.

    The paper reports every model at its epoch with the best validation loss; this stops a run once that epoch can
    no longer change within ``patience`` epochs, with ``max_epochs`` as the upper bound. It reads the best epoch from
    the bundle's checkpointer (:class:`~monai_hyperconv.handlers.ResumableCheckpointer`, ``best_epoch``), which keeps
    ``model.pt`` and stores the best epoch in the resumable checkpoint: a resumed run therefore stops at the same
    epoch as the uninterrupted one (MONAI's ``EarlyStopHandler`` keeps its counter outside any checkpoint). Attach
    it to the trainer after the checkpointer. In a distributed run every rank attaches it and they stop together:
    the validation metric, hence the best epoch, is the same on every rank.

    Args:
        checkpointer: any object with a ``best_epoch`` attribute (-1 before the first validation).
        patience: epochs without a new best before stopping; None disables early stopping.
    """

    def __init__(self, checkpointer, patience: int | str | None = None) -> None:
        self.checkpointer = checkpointer
        self.patience = _patience(patience)
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        if self.patience is None:
            return
        self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        best = int(self.checkpointer.best_epoch)
        epoch = engine.state.epoch
        if best >= 1 and epoch - best >= self.patience and epoch < engine.state.max_epochs:
            self.logger.info(
                f"BestEpochEarlyStopping: stopping after epoch {epoch}: the best validation epoch is {best}, "
                f"{epoch - best} epoch(s) ago (patience {self.patience})."
            )
            engine.terminate()
