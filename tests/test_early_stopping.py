"""BestEpochEarlyStopping and LearningCurveWriter on small ignite engines (no bundle run)."""

import csv
import math

import pytest
import torch
from ignite.engine import Engine, Events

from monai_hyperconv.handlers import BestEpochEarlyStopping, LearningCurveWriter, read_learning_curve


class _Checkpointer:
    """Stands in for ResumableCheckpointer: tracks the best validation loss and its epoch, at EPOCH_COMPLETED."""

    def __init__(self, losses):
        self.losses = losses
        self.best_epoch, self.best = -1, math.inf

    def attach(self, engine):
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine):
        loss = self.losses[engine.state.epoch - 1]
        if loss < self.best:
            self.best, self.best_epoch = loss, engine.state.epoch


def _train(losses, patience, max_epochs):
    engine = Engine(lambda e, b: None)
    checkpointer = _Checkpointer(losses)
    checkpointer.attach(engine)
    BestEpochEarlyStopping(checkpointer, patience).attach(engine)
    engine.run(range(2), max_epochs=max_epochs)
    return engine.state.epoch


def test_stops_patience_epochs_after_the_best():
    losses = [0.9, 0.7, 0.5, 0.6, 0.55, 0.52, 0.8, 0.9, 0.4, 0.3]
    assert _train(losses, patience=3, max_epochs=10) == 6  # best at 3, no better at 4, 5, 6
    assert _train(losses, patience=4, max_epochs=10) == 7
    assert _train(losses, patience=6, max_epochs=10) == 10  # epoch 9 improves before the patience runs out


def test_no_patience_trains_every_epoch():
    assert _train([0.9, 0.8, 0.95, 0.99, 1.0], patience=None, max_epochs=5) == 5
    assert _train([0.9, 0.8, 0.95, 0.99, 1.0], patience="null", max_epochs=5) == 5


@pytest.mark.parametrize("bad", [0, -1, 2.5, "ten", float("nan")])
def test_bad_patience_names_the_parameter(bad):
    with pytest.raises(ValueError, match="early_stop_patience"):
        BestEpochEarlyStopping(_Checkpointer([]), bad)


def _curve_run(path, losses_per_epoch, val_losses, resume_epoch=0, max_epochs=None):
    """A trainer whose iterations output the given losses and a validator that 'runs' at every epoch."""
    validator = Engine(lambda e, b: None)
    validator.state.epoch = 0

    def step(engine, batch):
        return [{"loss": torch.tensor(losses_per_epoch[engine.state.epoch - 1][engine.state.iteration % 2])}]

    trainer = Engine(step)

    @trainer.on(Events.STARTED)
    def _resume(engine):
        engine.state.epoch = resume_epoch
        engine.state.iteration = resume_epoch * 2

    @trainer.on(Events.EPOCH_COMPLETED)
    def _validate(engine):
        validator.state.epoch = engine.state.epoch
        validator.state.metrics = {"val_loss": val_losses[engine.state.epoch - 1], "note": "text is skipped"}

    LearningCurveWriter(path, validator).attach(trainer)
    trainer.run(range(2), max_epochs=max_epochs or len(val_losses))


def test_learning_curve_rows(tmp_path):
    path = tmp_path / "learning_curve.csv"
    _curve_run(path, [(1.0, 0.5), (0.4, 0.2)], [0.9, 0.8])
    rows = read_learning_curve(path)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0]["train_loss"] == pytest.approx(0.75) and rows[1]["train_loss"] == pytest.approx(0.3)
    assert [r["val_loss"] for r in rows] == [0.9, 0.8]
    with open(path) as f:
        assert next(csv.reader(f)) == ["epoch", "train_loss", "val_loss"]


def test_resumed_curve_keeps_rows_up_to_the_resumed_epoch(tmp_path):
    path = tmp_path / "learning_curve.csv"
    _curve_run(path, [(1.0, 1.0)] * 3, [0.9, 0.8, 0.7])  # interrupted run wrote 3 epochs, last checkpoint at 2
    _curve_run(path, [(1.0, 1.0), (1.0, 1.0), (0.2, 0.2), (0.1, 0.1)], [0.9, 0.8, 0.6, 0.5], resume_epoch=2)
    rows = read_learning_curve(path)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["val_loss"] for r in rows] == [0.9, 0.8, 0.6, 0.5]  # epoch 3 of the interrupted run replaced


def test_not_a_curve_is_named(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="x.csv"):
        read_learning_curve(path)
