"""The per-epoch learning curve of a training run: training loss and validation metrics, one CSV row per epoch."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Mapping, Sequence

import torch
from ignite.engine import Engine, Events
from monai.handlers import from_engine

from monai_hyperconv.utils.atomic import atomic_write_text
from monai_hyperconv.utils.distributed import is_main_process

__all__ = ["LearningCurveWriter", "read_learning_curve"]


class LearningCurveWriter:
    """Ignite handler: one CSV row per epoch with the mean training loss and the validator's metrics of that epoch.

    Columns: ``epoch``, ``train_loss`` (mean over the epoch's iterations on this rank) and every scalar metric of
    the validator (``val_loss``, ``val_mean_dice``...) when it ran at that epoch (empty otherwise). The file is
    rewritten atomically after every epoch; a resumed run keeps the rows up to the epoch it resumes from and drops
    later ones (written by the interrupted run after its last checkpoint), so the file always matches the training
    that produced ``checkpoint_last.pt``. Only the main process writes. Attach it to the trainer after the
    validation handler and the checkpointer.

    Args:
        path: the CSV file.
        validator: the evaluator whose ``state.metrics`` are recorded; None: training loss only.
        loss_transform: maps the trainer's ``state.output`` to the iteration's loss (MONAI's trainer output by
            default: ``from_engine(["loss"], first=True)``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        validator: Engine | None = None,
        loss_transform: Callable | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.validator = validator
        self.loss_transform = loss_transform or from_engine(["loss"], first=True)
        self.rows: list[dict[str, float | int | str]] = []
        self._loss_sum = 0.0
        self._loss_count = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _started(self, engine: Engine) -> None:
        # after a resume (the checkpointer restored the trainer's state at STARTED) keep the rows trained so far
        done = engine.state.epoch
        previous = read_learning_curve(self.path) if done > 0 and os.path.isfile(self.path) else []
        self.rows = [r for r in previous if int(r["epoch"]) <= done]

    def _epoch_started(self, engine: Engine) -> None:
        self._loss_sum, self._loss_count = 0.0, 0

    def _iteration_completed(self, engine: Engine) -> None:
        loss = self.loss_transform(engine.state.output)
        loss = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self._loss_sum += loss
        self._loss_count += 1

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        row: dict[str, float | int | str] = {
            "epoch": epoch,
            "train_loss": self._loss_sum / self._loss_count if self._loss_count else math.nan,
        }
        validator = self.validator
        if validator is not None and validator.state.epoch == epoch:  # validated at this epoch (val_interval)
            for name, value in validator.state.metrics.items():
                if isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1):
                    row[name] = float(value)
        self.rows = [r for r in self.rows if int(r["epoch"]) < epoch] + [row]
        if is_main_process():
            atomic_write_text(self.path, _rows_to_csv(self.rows))


def _rows_to_csv(rows: Sequence[Mapping]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_learning_curve(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a :class:`LearningCurveWriter` CSV, values as floats (NaN where a column is empty)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "epoch" not in rows[0]:
        raise ValueError(f"{os.fspath(path)} is not a learning curve (expected an 'epoch' column).")
    return [{k: float(v) if v not in ("", None) else math.nan for k, v in r.items()} for r in rows]
