"""TrainingMonitor records per-layer kernel movement and gradients of a real training step; off, it does nothing."""

import csv

import pytest
import torch
from ignite.engine import Engine

from monai_hyperconv import PaperUNet
from monai_hyperconv.analysis.training_monitor import TrainingMonitor, summarize_monitor


def _trainer(net, lr=1e-2):
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)

    def step(engine, batch):
        optimizer.zero_grad(set_to_none=True)
        loss = net(batch).pow(2).mean()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    return Engine(step)


@pytest.mark.parametrize("conv", ["hyper", "regular"])
def test_monitor_rows(tmp_path, conv):
    torch.manual_seed(0)
    net = PaperUNet(2, 1, 1, channels=4, conv=conv, kernel_size=5, dropout=0.0)
    trainer = _trainer(net)
    TrainingMonitor(net, str(tmp_path), enabled=True, tensorboard=False).attach(trainer)
    data = [torch.randn(2, 1, 16, 16) for _ in range(3)]
    trainer.run(data, max_epochs=1)
    with open(tmp_path / "training_monitor.csv") as f:
        rows = list(csv.DictReader(f))
    layers = {r["layer"] for r in rows}
    assert len(rows) == 3 * len(layers) and len(layers) == 17  # every 5x5 / 3x3 layer, the 1x1 head skipped
    assert {r["kind"] for r in rows} == {conv}
    assert all(float(r["rel_change"]) > 0 and float(r["grad_norm"]) > 0 for r in rows)  # the kernels moved
    if conv == "hyper":
        assert all(float(r["grad_hidden"]) > 0 and float(r["grad_out_weight"]) > 0 for r in rows)
    summary = summarize_monitor(str(tmp_path / "training_monitor.csv"))
    assert len(summary) == 17 and all(s["steps"] == 3 for s in summary)


def test_monitor_off_writes_nothing(tmp_path):
    net = PaperUNet(2, 1, 1, channels=4, conv="hyper", kernel_size=3)
    trainer = _trainer(net)
    TrainingMonitor(net, str(tmp_path / "out"), enabled="false").attach(trainer)
    trainer.run([torch.randn(2, 1, 16, 16)], max_epochs=1)
    assert not (tmp_path / "out").exists()
