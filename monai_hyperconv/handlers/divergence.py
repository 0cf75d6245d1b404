"""Stop a diverged training run at once, with the learning rate and what to try, instead of keeping its garbage.

A learning rate far too high makes the training loss NaN within a few steps. Without a guard the run went on to the
end and exited 0: the liver bundle's validation loss (ignite's ``Loss``) was NaN at every epoch, so no epoch was ever
"best" and no ``model.pt`` was written; the CS-MRI bundle's metrics (MONAI's ``MeanSquaredError``,
``PeakSignalToNoiseRatio``) average over the *finite* per-image values only (``monai.metrics.utils
.do_metric_reduction`` drops NaNs, and an all-NaN batch reduces to 0), so an all-NaN validation scored
``val_loss 0.0`` and a network of NaN weights was saved as the best model.

- :class:`StopOnNonFiniteLoss` (trainer, ``ITERATION_COMPLETED``): the first NaN / infinite training loss raises
  :class:`TrainingDivergedError` naming the epoch, the iteration and the learning rate;
- :class:`StopOnNonFiniteOutput` (evaluator, MONAI's ``IterationEvents.FORWARD_COMPLETED``, before any
  post-processing or metric): a NaN / infinite network output during validation raises it too, before the
  checkpointer of that epoch runs (a last step can leave the weights diverged after a finite loss);
- :func:`check_finite_weights`: what :class:`~monai_hyperconv.handlers.ResumableCheckpointer` calls before writing.

The error ends the run (exit status 1 through :func:`monai_hyperconv.utils.install_excepthook`, the message on the
last line); ``model.pt`` and ``checkpoint_last.pt`` keep the last epoch that completed with finite values.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping

import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from monai.handlers import from_engine

__all__ = [
    "StopOnNonFiniteLoss",
    "StopOnNonFiniteOutput",
    "TrainingDivergedError",
    "check_finite_weights",
    "learning_rates",
]

ADVICE = (
    "try a lower learning_rate (e.g. 10x lower; the bundles' default is 1e-4), a smaller kernel_lr_scale if set, "
    "or amp false"
)


class TrainingDivergedError(FloatingPointError):
    """Training produced NaN or infinite values (loss, network output or weights)."""


def learning_rates(optimizer: torch.optim.Optimizer | None) -> str:
    """The optimizer's learning rate(s) as text: ``"1e-04"``, or ``"1e-04, 1e-05"`` for several parameter groups."""
    if optimizer is None:
        return "unknown"
    rates = []
    for group in optimizer.param_groups:
        lr = group.get("lr")
        lr = float(lr) if not isinstance(lr, torch.Tensor) else float(lr.item())
        if lr not in rates:
            rates.append(lr)
    return ", ".join(f"{lr:g}" for lr in rates) or "unknown"


def _non_finite(value) -> str | None:
    """``"NaN"`` / ``"infinite"`` when a number or tensor (or a sequence of them) holds such a value, else None."""
    if isinstance(value, (list, tuple)):
        for v in value:
            found = _non_finite(v)
            if found:
                return found
        return None
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() and not value.is_complex():
            return None
        if bool(torch.isnan(value).any()):
            return "NaN"
        return "infinite" if not bool(torch.isfinite(value).all()) else None
    if isinstance(value, (int, float)):
        value = float(value)
        return "NaN" if math.isnan(value) else "infinite" if math.isinf(value) else None
    return None


def _checkpoint_note(checkpointer) -> str:
    """What the checkpoint folder holds now (the checkpointer's best epoch), for the message."""
    if checkpointer is None:
        return "checkpoints of earlier epochs are kept as they were"
    best_epoch = int(getattr(checkpointer, "best_epoch", -1))
    folder = getattr(checkpointer, "save_dir", "ckpt_dir")
    if best_epoch < 1:
        return f"no epoch completed with finite values, so no model.pt was written in {folder}"
    return f"{folder} keeps model.pt of epoch {best_epoch} and checkpoint_last.pt of the last completed epoch"


class StopOnNonFiniteLoss:
    """Ignite handler: raise :class:`TrainingDivergedError` at the first iteration whose training loss is not finite.

    ignite's ``TerminateOnNan`` ends the run quietly (exit status 0, whatever was saved kept); this one fails it with
    the epoch, the iteration, the learning rate and what to try. Attach it to a MONAI trainer (its ``optimizer``
    gives the learning rate).

    Args:
        loss_transform: maps ``engine.state.output`` to the loss (MONAI's trainer output, decollated or not, by
            default: ``from_engine(["loss"], first=True)``).
        checkpointer: the run's :class:`~monai_hyperconv.handlers.ResumableCheckpointer`, to say which epoch its
            files hold; optional.
        optimizer: the optimizer whose learning rate the message names; None: the engine's ``optimizer``.
    """

    def __init__(
        self,
        loss_transform: Callable | None = None,
        checkpointer=None,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        self.loss_transform = loss_transform or from_engine(["loss"], first=True)
        self.checkpointer = checkpointer
        self.optimizer = optimizer
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        self.logger = engine.logger
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        found = _non_finite(self.loss_transform(engine.state.output))
        if found is None:
            return
        state = engine.state
        per_epoch = state.epoch_length or 0
        within = (state.iteration - 1) % per_epoch + 1 if per_epoch else state.iteration
        optimizer = self.optimizer if self.optimizer is not None else getattr(engine, "optimizer", None)
        raise TrainingDivergedError(
            f"Training diverged: the training loss is {found} at epoch {state.epoch}, iteration {within}"
            f"{f' of {per_epoch}' if per_epoch else ''} (step {state.iteration}) with learning rate "
            f"{learning_rates(optimizer)}. The run stopped; {_checkpoint_note(self.checkpointer)}. To fix it, "
            f"{ADVICE}."
        )


class StopOnNonFiniteOutput:
    """Ignite handler for an evaluator: raise :class:`TrainingDivergedError` when the network's output is not finite.

    MONAI's metrics skip NaN values when they reduce (an all-NaN validation scores 0), so without this check a
    diverged network can look like the best one. The check runs at MONAI's ``IterationEvents.FORWARD_COMPLETED``,
    on the raw network output, before post-processing (thresholding would hide the NaNs) and metrics.

    Args:
        output_key: key of the network output in ``engine.state.output`` (MONAI's ``"pred"``).
        optimizer: the training optimizer, for the learning rate in the message; optional.
        checkpointer: as in :class:`StopOnNonFiniteLoss`; optional.
    """

    def __init__(self, output_key: str = "pred", optimizer: torch.optim.Optimizer | None = None, checkpointer=None):
        self.output_key = output_key
        self.optimizer = optimizer
        self.checkpointer = checkpointer

    def attach(self, engine: Engine) -> None:
        """Attach to a MONAI workflow (it registers ``IterationEvents``)."""
        engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        value = output.get(self.output_key) if isinstance(output, Mapping) else None
        found = _non_finite(value)
        if found is None:
            return
        raise TrainingDivergedError(
            f"Training diverged: the network's validation output is {found} at epoch {engine.state.epoch} (learning "
            f"rate {learning_rates(self.optimizer)}). The run stopped before saving this epoch; "
            f"{_checkpoint_note(self.checkpointer)}. To fix it, {ADVICE}."
        )


def check_finite_weights(modules: Mapping[str, object] | object, where: str, epoch: int | None = None) -> None:
    """Raise :class:`TrainingDivergedError` when a floating-point entry of the state dicts is NaN or infinite.

    Args:
        modules: objects with ``state_dict()`` (a network, or a mapping name -> network).
        where: the file that would have been written, for the message.
        epoch: the epoch, for the message.
    """
    items: Iterable = modules.items() if isinstance(modules, Mapping) else [("network", modules)]
    for name, obj in items:
        state = getattr(obj, "state_dict", None)
        if state is None:
            continue
        bad = [k for k, v in state().items() if isinstance(v, torch.Tensor) and _non_finite(v)]
        if bad:
            raise TrainingDivergedError(
                f"Training diverged: {len(bad)} tensor(s) of '{name}' hold NaN or infinite values"
                f"{f' after epoch {epoch}' if epoch is not None else ''} (e.g. {bad[0]}); {where} was not written "
                f"and keeps the last finite epoch. To fix it, {ADVICE}."
            )
