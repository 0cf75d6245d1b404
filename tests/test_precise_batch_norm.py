"""Precise batch norm: running statistics recomputed with the epoch's final weights, training left exactly as it was."""

import pytest
import torch
from ignite.engine import Events
from monai.engines import PrepareBatchExtraInput, SupervisedTrainer

from monai_hyperconv.handlers import PreciseBatchNormStats, recompute_batch_norm_stats


class _Net(torch.nn.Module):
    """conv -> batch norm -> dropout -> conv; ``shift`` (a keyword input) is added to the input when given."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(4)
        self.drop = torch.nn.Dropout(0.5)
        self.head = torch.nn.Conv2d(4, 1, 1)
        self.shifts_seen = []

    def forward(self, x, shift=None):
        if shift is not None:
            self.shifts_seen.append(float(shift.flatten()[0]))
            x = x + shift
        return self.head(self.drop(torch.relu(self.norm(self.conv(x)))))


def _batches(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {"image": 3 * torch.randn(4, 1, 8, 8, generator=g) + 2, "label": torch.randn(4, 1, 8, 8, generator=g),
         "shift": torch.full((4, 1, 1, 1), float(i))}
        for i in range(n)
    ]  # fmt: skip


def test_recompute_gives_the_average_batch_statistics_and_draws_no_random_numbers():
    torch.manual_seed(0)
    net = _Net().train()
    inputs = [b["image"] for b in _batches(3)]
    state = torch.get_rng_state()
    assert recompute_batch_norm_stats(net, inputs) == 1
    assert torch.equal(torch.get_rng_state(), state)  # dropout stayed off
    assert net.training and net.drop.training and net.norm.momentum == 0.1  # modes and momentum restored
    with torch.no_grad():
        feats = [net.conv(x) for x in inputs]
    mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(net.norm.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(net.norm.running_var, var, rtol=1e-4, atol=1e-5)
    assert recompute_batch_norm_stats(torch.nn.Conv2d(1, 1, 1), inputs) == 0


def _train(handler_batches, prepare_batch=None, epochs=2):
    torch.manual_seed(0)
    net = _Net()
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=epochs,
        train_data_loader=_batches(),
        epoch_length=6,
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), lr=0.05),
        loss_function=torch.nn.MSELoss(),
        prepare_batch=prepare_batch or PrepareBatchExtraInput({}),
        decollate=False,
    )
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output["loss"].item()))
    PreciseBatchNormStats(net, handler_batches).attach(trainer)
    trainer.run()
    return net, losses


def test_training_is_unchanged_and_the_statistics_come_from_the_last_batches():
    plain, plain_losses = _train(0)
    precise, precise_losses = _train(3)
    assert precise_losses == plain_losses  # bit for bit: only the running statistics differ
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), precise.parameters()))
    assert not torch.allclose(plain.norm.running_var, precise.norm.running_var)
    expected = _Net()
    expected.load_state_dict(precise.state_dict())
    recompute_batch_norm_stats(expected, [b["image"] for b in _batches()[-3:]])  # the epoch's last 3 batches
    torch.testing.assert_close(precise.norm.running_mean, expected.norm.running_mean)
    torch.testing.assert_close(precise.norm.running_var, expected.norm.running_var)


def test_keyword_inputs_reach_the_network():
    net, _ = _train(2, PrepareBatchExtraInput({"shift": "shift"}), epochs=1)
    # 6 training steps see shifts 0..5, then the recomputation sees the last two batches again
    assert net.shifts_seen == [0, 1, 2, 3, 4, 5, 4, 5]


def test_num_batches_is_checked():
    with pytest.raises(ValueError, match="num_batches must be null or an integer >= 0"):
        PreciseBatchNormStats(_Net(), -1)
    assert PreciseBatchNormStats(_Net(), None).num_batches == 0
