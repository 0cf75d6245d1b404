"""Exact resume: the random state in checkpoint_last.pt makes an interrupted + resumed training replay the
uninterrupted one bit for bit (dropout, augmentation, shuffling, DataLoader workers)."""

import random

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, RandAffined, RandGaussianNoised

from monai_hyperconv.handlers import (
    ResumableCheckpointer,
    TrainingRandomState,
    randomizable_transforms,
    replays_exactly,
)
from monai_hyperconv.utils.run_lock import release_all


def _augmentation():
    return Compose(
        [
            RandGaussianNoised(keys="x", prob=0.5, std=0.1),
            RandAffined(keys="x", prob=1.0, rotate_range=0.5, scale_range=0.1, padding_mode="zeros"),
        ]
    )


def _loader(num_workers=0, persistent=False):
    data = [{"x": torch.full((1, 8, 8), float(i)), "y": torch.tensor([float(i % 2)])} for i in range(12)]
    return DataLoader(
        Dataset(data, _augmentation()),
        batch_size=4,
        shuffle=True,
        num_workers=num_workers,
        persistent_workers=persistent,
    )


def _draws(loader):
    """What an epoch consumes: shuffled, augmented batches, dropout masks, numpy and python draws."""
    batches = [b["x"].clone() for b in loader]
    drop = torch.nn.functional.dropout(torch.ones(16), 0.5, training=True)
    return batches, drop, np.random.rand(3), random.random()


def test_randomizable_transforms_finds_inner_generators():
    found = randomizable_transforms(_loader().dataset)
    names = [type(t).__name__ for t in found]
    # Compose, both dict transforms and RandAffined's inner array transform (its own RandomState)
    assert {"Compose", "RandGaussianNoised", "RandAffined", "RandAffine"} <= set(names)
    assert len({id(t.R) for t in found}) == len(found)


def test_state_capture_and_restore_replays_an_epoch():
    loader = _loader()
    state = TrainingRandomState(loader)
    saved = state.state_dict()
    first = _draws(loader)
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # anything in between
    for t in randomizable_transforms(loader.dataset):
        t.set_random_state(7)
    state.load_state_dict(saved)
    again = _draws(loader)
    for a, b in zip(first[0], again[0]):
        assert torch.equal(a, b)
    assert torch.equal(first[1], again[1]) and np.array_equal(first[2], again[2]) and first[3] == again[3]
    # and the draws are random at all: without the restore, the next epoch differs
    assert not all(torch.equal(a, b) for a, b in zip(again[0], _draws(loader)[0]))


def test_state_survives_weights_only_load(tmp_path):
    loader = _loader()
    torch.save(TrainingRandomState(loader).state_dict(), tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)  # the bundle loads checkpoints this way
    assert loaded["world_size"] == 1
    assert len(loaded["ranks"][0]["transforms"]) == len(randomizable_transforms(loader.dataset)) >= 4


def test_restore_refuses_other_transforms_and_world_size():
    state = TrainingRandomState(_loader()).state_dict()
    other = DataLoader(Dataset([{"x": torch.zeros(1, 4, 4)}], RandGaussianNoised(keys="x", prob=1.0)), batch_size=1)
    with pytest.raises(ValueError, match="random transform"):
        TrainingRandomState(other).load_state_dict(state)
    with pytest.raises(ValueError, match="same number of processes"):
        TrainingRandomState(_loader()).load_state_dict({**state, "world_size": 2})


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4, 1)

    def forward(self, x):
        h = torch.nn.functional.dropout(torch.relu(self.bn(self.conv(x))), 0.5, training=self.training)
        return self.head(h.mean((2, 3)))


def _train(ckpt_dir, max_epochs, resume, num_workers=0, persistent=False, scramble=False):
    """A small trainer with dropout, batch norm, shuffling and augmentation; returns the final network."""
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    net, loader = _Net(), _loader(num_workers, persistent)
    for i, t in enumerate(randomizable_transforms(loader.dataset)):
        t.set_random_state(i)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    if scramble:  # a resumed process starts from other random states: the checkpoint must restore them all
        torch.manual_seed(99), np.random.seed(99), random.seed(99)

    def step(engine, batch):
        net.train()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(batch["x"]), batch["y"])
        loss.backward()
        opt.step()
        return loss.item()

    trainer, validator = Engine(step), Engine(lambda e, b: None)

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine):
        validator.state.metrics = {"val_loss": 1.0 / engine.state.epoch}

    ResumableCheckpointer(str(ckpt_dir), {"network": net, "optimizer": opt}, validator=validator, resume=resume).attach(
        trainer
    )
    trainer.run(loader, max_epochs=max_epochs)
    release_all()
    return net


@pytest.mark.slow
@pytest.mark.parametrize("num_workers,persistent", [(0, False), (2, False)])
def test_interrupted_and_resumed_training_equals_the_uninterrupted_one(tmp_path, num_workers, persistent):
    whole = _train(tmp_path / "whole", 3, False, num_workers, persistent)
    _train(tmp_path / "split", 1, False, num_workers, persistent)
    state = torch.load(tmp_path / "split" / "checkpoint_last.pt", weights_only=True)
    resumed = _train(tmp_path / "split", 3, True, num_workers, persistent, scramble=True)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # not trivially equal: the same checkpoint without its random state resumes into other weights
    del state["random_state"]
    (tmp_path / "none").mkdir()
    torch.save(state, tmp_path / "none" / "checkpoint_last.pt")
    without = _train(tmp_path / "none", 3, True, num_workers, persistent, scramble=True)
    assert not all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), without.state_dict().values()))


def test_persistent_workers_are_reported_as_not_replayable(tmp_path, caplog):
    """Persistent workers keep their transforms' state between epochs, beyond a checkpoint's reach: said at start."""
    assert replays_exactly(_loader(2, False)) and replays_exactly(_loader(0, False))
    assert not replays_exactly(_loader(2, True))
    trainer = Engine(lambda e, b: None)
    state = TrainingRandomState()
    state.attach(trainer)
    loader = _loader(2, True)
    with caplog.at_level("WARNING"):
        trainer.run(loader, max_epochs=1)
    assert state.dataloader is loader
    assert any("persistent workers" in r.getMessage() for r in caplog.records)
