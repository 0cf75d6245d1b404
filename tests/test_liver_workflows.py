"""Reusable bundle machinery (monai_hyperconv.handlers, .transforms, .utils): atomic saving, best/last checkpoints and resume, checks,
noise sweep."""

import csv
import os

import pytest
import torch
from ignite.engine import Engine
from monai.metrics import DiceMetric

from monai_hyperconv.handlers import NoiseSweep, ResumableCheckpointer, read_sweep_csv, run_noise_sweep
from monai_hyperconv.transforms import CheckImageLabeld
from monai_hyperconv.utils import atomic_torch_save, ensure_writable_dir


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle")


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "ckpt" / "model.pt"
    atomic_torch_save({"w": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_torch_save({"w": _Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))
    assert os.listdir(tmp_path / "ckpt") == ["model.pt"]  # no temporary file left


def _fake_training(tmp_path, losses, resume=False, max_epochs=None):
    """A trainer whose 'validator' reports the given losses, one per epoch; returns (checkpointer, net, trainer)."""
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(engine, batch):
        opt.zero_grad()
        net(torch.ones(1, 2)).sum().backward()
        opt.step()

    trainer = Engine(step)
    validator = Engine(lambda e, b: None)

    @trainer.on(__import__("ignite").engine.Events.EPOCH_COMPLETED)
    def validate(engine):
        validator.state.metrics = {"val_loss": losses[engine.state.epoch - 1]}

    ckpt = ResumableCheckpointer(str(tmp_path), {"network": net, "optimizer": opt}, validator=validator, resume=resume)
    ckpt.attach(trainer)
    trainer.run([0, 1, 2], max_epochs=max_epochs or len(losses))
    return ckpt, net, trainer


def test_best_by_validation_loss_and_resume(tmp_path):
    losses = [0.9, 0.5, 0.7, 0.6]
    ckpt, _net, _trainer = _fake_training(tmp_path, losses[:3])
    assert (ckpt.best_epoch, ckpt.best_metric) == (2, 0.5)
    last = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 9 and last["checkpointer"] == {"best_metric": 0.5, "best_epoch": 2}
    best_before = torch.load(tmp_path / "model.pt", weights_only=True)
    # resume to epoch 4: only epoch 4 runs; its loss 0.6 > 0.5 so model.pt is kept
    ckpt2, net2, trainer2 = _fake_training(tmp_path, losses, resume=True)
    assert trainer2.state.epoch == 4 and trainer2.state.iteration == 12
    assert (ckpt2.best_epoch, ckpt2.best_metric) == (2, 0.5)
    for k, v in torch.load(tmp_path / "model.pt", weights_only=True).items():
        assert torch.equal(v, best_before[k])
    # the resumed network continued from the saved weights: 12 SGD steps in all, same as an uninterrupted run
    ref = torch.nn.Linear(2, 1)
    ref.load_state_dict(last["network"])
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ref(torch.ones(1, 2)).sum().backward()
        opt.step()
    torch.testing.assert_close(net2.weight, ref.weight)


def test_fresh_run_moves_earlier_checkpoints_aside(tmp_path):
    _fake_training(tmp_path, [0.9, 0.5])
    earlier = {n: (tmp_path / n).read_bytes() for n in ("model.pt", "checkpoint_last.pt")}
    _fake_training(tmp_path, [0.8])  # resume false: a new run into the same folder
    kept = list((tmp_path / "previous").iterdir())
    assert len(kept) == 1 and {n: (kept[0] / n).read_bytes() for n in earlier} == earlier
    assert torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)["checkpointer"]["best_epoch"] == 1
    _fake_training(tmp_path, [0.8, 0.7], resume=True)  # resuming continues in place, nothing moved
    assert len(list((tmp_path / "previous").iterdir())) == 1


def test_checkpointer_names_a_missing_metric(tmp_path):
    net = torch.nn.Linear(2, 1)
    trainer = Engine(lambda e, b: None)
    ResumableCheckpointer(str(tmp_path), {"network": net}, metric_name="val_loss").attach(trainer)
    with pytest.raises(KeyError, match="val_loss"):
        trainer.run([0], max_epochs=1)


def test_check_image_label_messages():
    from monai.data import MetaTensor

    img = MetaTensor(torch.arange(32.0).reshape(1, 4, 4, 2), meta={"filename_or_obj": "/d/volume-7.nii"})
    lab = MetaTensor(torch.zeros(1, 4, 4, 2), meta={"filename_or_obj": "/d/segmentation-7.nii"})
    check = CheckImageLabeld(("image", "label"), allowed_labels=(0, 1, 2))
    assert check({"image": img, "label": lab})["image"] is img
    lab[0, 0, 0, 0] = 5
    with pytest.raises(ValueError, match=r"segmentation-7\.nii: 'label' holds values \{5\}"):
        check({"image": img, "label": lab})
    img[0, 1, 1, 1] = float("inf")
    with pytest.raises(ValueError, match=r"volume-7\.nii: 'image' has 1 NaN or infinite"):
        check({"image": img})
    with pytest.raises(
        ValueError, match=r"volume-7\.nii has spatial shape \(4, 4, 2\) but .*segmentation-7\.nii has \(4, 4\)"
    ):
        check({"image": torch.arange(32.0).reshape(1, 4, 4, 2) + img.new_zeros(1), "label": lab[..., 0]})


def test_ensure_writable_dir(tmp_path):
    assert os.path.isdir(ensure_writable_dir(tmp_path / "a" / "b"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(PermissionError, match="file"):
        ensure_writable_dir(tmp_path / "file" / "sub", "output folder")


def test_noise_sweep_levels_degrade_a_thresholding_model(tmp_path):
    """A fixed 'model' (logit = image - 0.5) segments a clean bright square perfectly; noise lowers its Dice."""
    label = torch.zeros(4, 1, 32, 32)
    label[:, :, 8:24, 8:24] = 1
    image = 0.2 + 0.6 * label
    data = [{"image": image, "label": label}]
    net = torch.nn.Module()
    net.forward = lambda x: x - 0.5
    noises = {"salt_pepper": [0.0, 0.1, 0.4], "gaussian": [0.0, 0.2, 0.5], "speckle": [0.0, 0.5, 1.5]}
    sweep = NoiseSweep(
        net, data, noises, DiceMetric(), str(tmp_path), model_name="thresh", post_pred=lambda x: (x > 0).float()
    )
    rows = sweep.run()
    for kind in noises:
        values = [v for k, _, v in rows if k == kind]
        assert values[0] == pytest.approx(1.0)  # clean
        assert values[0] > values[1] > values[2]  # monotone degradation with the level
    metric_name, saved = read_sweep_csv(sweep.csv_path)
    assert metric_name == "dice" and len(saved) == 9 and saved[0]["model"] == "thresh"
    assert os.path.getsize(sweep.png_path) > 1000
    # same seed, same noise: a second run gives identical numbers
    assert run_noise_sweep(net, data, noises, DiceMetric(), post_pred=lambda x: (x > 0).float()) == rows
    with open(sweep.csv_path) as f:
        assert next(csv.reader(f)) == ["model", "noise", "level", "dice"]


def test_init_output_bias_starts_outputs_at_the_prior():
    from monai_hyperconv.networks import PaperUNet, init_output_bias

    net = PaperUNet(2, 1, 1, channels=4, conv="hyper", kernel_size=5)
    assert init_output_bias(net, None) is net
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():  # training mode: batch statistics, as at the start of training
        before = torch.sigmoid(net(x)).mean().item()
        init_output_bias(torch.nn.DataParallel(net), 0.01)
        after = torch.sigmoid(net(x))
    assert abs(before - 0.5) < 0.2 and after.mean().item() < 0.05  # from ~0.5 to ~the prior
    assert torch.allclose(net.head.bias, torch.logit(torch.tensor(0.01)))
    with pytest.raises(ValueError, match="prior"):
        init_output_bias(net, 1.0)
    with pytest.raises(ValueError, match="no convolution"):
        init_output_bias(torch.nn.Linear(2, 2), 0.1)


def test_epoch_time_limit_stops_at_an_epoch_boundary():
    """A fake clock, no sleeping: iterations of 0.25 s, epochs of 0.5 s. Training ends after the last epoch whose
    successor (estimated by the longest epoch so far) would end past the budget, at an epoch boundary."""
    from monai_hyperconv.handlers import EpochTimeLimit

    now = [0.0]

    def tick(engine, batch):
        now[0] += 0.25 if engine.state.epoch != 2 else 0.5  # epoch 2 takes 1 s: the estimate of later epochs

    def run(limit):
        now[0] = 0.0
        trainer = Engine(tick)
        EpochTimeLimit(limit, clock=lambda: now[0]).attach(trainer)  # the budget runs from here
        trainer.run([0, 1], max_epochs=20)
        return trainer.state.epoch, trainer.state.iteration, now[0]

    # epochs end at 0.5, 1.5, 2.0, 2.5, 3.0 s...; from epoch 2 on the next one is expected to take 1 s (the longest)
    assert run(3.4) == (4, 8, 2.5)  # 2.5 + 1 > 3.4 (the last epoch's 0.5 s would have allowed a fifth)
    assert run(3.5) == (5, 10, 3.0)  # an epoch expected to end exactly at the budget runs
    assert run(2.4) == (2, 4, 1.5)
    assert run(0.4) == (1, 2, 0.5)  # never less than one epoch
    assert run(None) == (20, 40, 10.5)


def test_as_bool_reads_command_line_flags():
    from monai_hyperconv.utils import as_bool

    assert [as_bool(v) for v in (True, 1, "true", "True", " YES ", "on", "1")] == [True] * 7
    assert [as_bool(v) for v in (False, 0, "false", "False", "no", "off", "0")] == [False] * 7
    for bad in ("ture", 2, None, ""):
        with pytest.raises(ValueError, match="resume must be true or false"):
            as_bool(bad, "resume")


@pytest.mark.parametrize(
    ("given", "expected"), [(None, None), ("null", None), ("None", None), ("450", 450.0), (30, 30.0)]
)
def test_time_limit_reads_null_and_numbers_from_the_command_line(given, expected):
    from monai_hyperconv.handlers import EpochTimeLimit

    # fire passes `--train_time_limit null` as the string "null"; it must disable the limit, not crash after an epoch
    assert EpochTimeLimit(given).limit_sec == expected


@pytest.mark.parametrize("given", ["soon", -1, "inf"])
def test_time_limit_refuses_other_values_when_built(given):
    from monai_hyperconv.handlers import EpochTimeLimit

    with pytest.raises(ValueError, match="train_time_limit"):
        EpochTimeLimit(given)
