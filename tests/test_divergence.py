"""A diverged run stops at once with the learning rate in its message, and never keeps NaN weights or a NaN "best"."""

import math
import os

import pytest
import torch
from helpers import exception_chain_text, tiny_bundle_workflow
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator

from monai_hyperconv.handlers import (
    ResumableCheckpointer,
    StopOnNonFiniteLoss,
    StopOnNonFiniteOutput,
    TrainingDivergedError,
)


def _training(tmp_path, losses, val_losses, lr=0.1, mode="min", poison_at=None):
    """A trainer (SGD on a linear layer) whose step reports ``losses[iteration - 1]``, a validator reporting
    ``val_losses[epoch - 1]``, the checkpointer and the loss guard; ``poison_at``: epoch whose end leaves NaN weights."""
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=lr)

    def step(engine, batch):
        opt.zero_grad()
        net(torch.ones(1, 2)).sum().backward()
        opt.step()
        return {"loss": torch.tensor(losses[engine.state.iteration - 1])}

    trainer = Engine(step)
    trainer.optimizer = opt  # as MONAI's SupervisedTrainer has it
    validator = Engine(lambda e, b: None)

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine):
        validator.state.iteration += 1
        validator.state.metrics = {"val_loss": val_losses[engine.state.epoch - 1]}
        if engine.state.epoch == poison_at:
            with torch.no_grad():
                net.weight.fill_(math.nan)

    ckpt = ResumableCheckpointer(str(tmp_path), {"network": net, "optimizer": opt}, validator=validator, mode=mode)
    ckpt.attach(trainer)
    StopOnNonFiniteLoss(checkpointer=ckpt).attach(trainer)
    return trainer, ckpt, net


def _finite_file(path):
    state = torch.load(path, weights_only=True)
    state = state.get("network", state)
    return all(torch.isfinite(v).all() for v in state.values())


def test_nan_loss_stops_at_once_naming_epoch_iteration_and_learning_rate(tmp_path):
    losses = [0.9, 0.8, 0.7, math.nan, 0.5, 0.4]  # two iterations per epoch: NaN at epoch 2, iteration 2
    trainer, ckpt, _ = _training(tmp_path, losses, [0.5, 0.4, 0.3], lr=1e12)
    best_before = (tmp_path / "model.pt", tmp_path / "checkpoint_last.pt")
    with pytest.raises(TrainingDivergedError) as e:
        trainer.run([0, 1], max_epochs=3)
    message = str(e.value)
    assert "loss is NaN at epoch 2, iteration 2 of 2" in message and "learning rate 1e+12" in message
    assert "lower learning_rate" in message and "model.pt of epoch 1" in message
    assert trainer.state.iteration == 4  # no further step
    # the files of epoch 1 are intact and finite
    assert all(p.is_file() and _finite_file(p) for p in best_before)
    assert torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)["trainer"]["iteration"] == 2
    assert ckpt.best_epoch == 1


def test_infinite_loss_stops_too(tmp_path):
    trainer, _, _ = _training(tmp_path, [math.inf, 0.1], [0.5])
    with pytest.raises(TrainingDivergedError, match="loss is infinite at epoch 1, iteration 1"):
        trainer.run([0, 1], max_epochs=1)


@pytest.mark.parametrize(
    "mode, val_losses, best_epoch",
    [
        ("min", [math.nan, 0.5, 0.7], 2),
        ("min", [0.5, math.nan, 0.7], 1),
        ("min", [0.5, -math.inf, 0.7], 1),
        ("max", [20.0, math.inf, math.nan], 1),
    ],
)
def test_a_non_finite_validation_metric_is_never_the_best(tmp_path, mode, val_losses, best_epoch):
    trainer, ckpt, _ = _training(tmp_path, [0.1] * 6, val_losses, mode=mode)
    trainer.run([0, 1], max_epochs=3)
    assert ckpt.best_epoch == best_epoch and math.isfinite(ckpt.best_metric)
    assert _finite_file(tmp_path / "model.pt")


def test_a_run_without_any_finite_validation_fails_instead_of_leaving_no_model(tmp_path):
    trainer, _, _ = _training(tmp_path, [0.1] * 4, [math.nan, math.nan])
    with pytest.raises(TrainingDivergedError, match=r"without writing .*model\.pt: no validated epoch had a finite"):
        trainer.run([0, 1], max_epochs=2)
    assert not (tmp_path / "model.pt").exists()


def test_nan_weights_are_never_written(tmp_path):
    trainer, _, _ = _training(tmp_path, [0.1] * 6, [0.5, 0.4, 0.3], poison_at=2)
    with pytest.raises(TrainingDivergedError, match="'network' hold NaN or infinite values after epoch 2"):
        trainer.run([0, 1], max_epochs=3)
    last = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 2 and last["checkpointer"]["best_epoch"] == 1
    assert _finite_file(tmp_path / "model.pt") and _finite_file(tmp_path / "checkpoint_last.pt")


def test_epochs_before_the_first_validation_write_the_last_checkpoint_only(tmp_path):
    net = torch.nn.Linear(2, 1)
    trainer = Engine(lambda e, b: None)
    validator = Engine(lambda e, b: None)

    @trainer.on(Events.EPOCH_COMPLETED(every=2))  # val_interval 2: attached before the checkpointer, as in bundles
    def validate(engine):
        validator.state.iteration += 1
        validator.state.metrics = {"val_loss": 1.0 / engine.state.epoch}

    ckpt = ResumableCheckpointer(str(tmp_path), {"network": net}, validator=validator)
    ckpt.attach(trainer)
    trainer.run([0], max_epochs=3)
    assert ckpt.best_epoch == 2 and (tmp_path / "model.pt").is_file()


def test_validation_output_nan_stops_before_metrics(tmp_path):
    class NaNNet(torch.nn.Module):
        def forward(self, x):
            return x * math.nan

    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=3e5)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=[{"image": torch.ones(1, 1, 4, 4), "label": torch.ones(1, 1, 4, 4)}],
        network=NaNNet(),
        val_handlers=[StopOnNonFiniteOutput(optimizer=optimizer)],
    )
    with pytest.raises(TrainingDivergedError, match=r"validation output is NaN at epoch 1 \(learning rate 300000\)"):
        evaluator.run()


@pytest.mark.parametrize("bundle", ["liver_lesion_seg", "liver_lesion_seg_3d", "csmri_recon"])
def test_bundle_with_a_huge_learning_rate_fails_naming_it_and_keeps_no_nan_model(tmp_path, bundle):
    root = str(tmp_path / "bundle")
    wf = tiny_bundle_workflow(
        bundle,
        "train",
        ["train.yaml"],
        root,
        dataset_dir=str(tmp_path / "data"),
        learning_rate=1e12,
        max_epochs=3,
        **{"network_def#channels": 4},
    )
    wf.initialize()
    try:
        with pytest.raises(Exception) as e:
            wf.run()
    finally:
        wf.finalize()
    text = exception_chain_text(e.value)
    assert "Training diverged" in text and "learning rate 1e+12" in text and "lower learning_rate" in text
    model = os.path.join(root, "models", "model.pt")
    assert not os.path.exists(model) or _finite_file(model)
