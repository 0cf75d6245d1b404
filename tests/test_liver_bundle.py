"""The liver lesion bundle end to end on tiny generated data: train -> resume -> inference -> evaluate through
``python -m monai.bundle run``, geometry of the predictions, bad inputs, verify_net_in_out / ckpt_export, torchrun."""

import csv
import hashlib
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from helpers import MULTI_GPU_FRAGMENT, exception_chain_text, torchrun_bundle
from monai.bundle import ckpt_export, verify_net_in_out
from monai.bundle import run as bundle_run

from monai_hyperconv.apps.liver import prepare_lits_datalist
from monai_hyperconv.utils.errors import summary_line

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUNDLE = os.path.join(REPO, "bundles", "liver_lesion_seg")
CONFIGS = os.path.join(BUNDLE, "configs")
TRAIN, INFER, EVAL, MULTI = (
    os.path.join(CONFIGS, f) for f in ("train.yaml", "inference.yaml", "evaluate.yaml", "multi_gpu_train.yaml")
)

# tiny everything: 4 synthetic 48x48 volumes (2 train / 1 val / 1 test), 32x32 slices, a 4-channel Hyper-UNet 5x5
TINY = {
    "synthetic": {"num_volumes": 4, "size": 48, "num_slices": [5, 6], "seed": 0},
    "image_size": 32,
    "batch_size": 4,
    "max_epochs": 1,
    "num_workers": 0,
    "cache_workers": 0,
    "network_def": {
        "_target_": "monai_hyperconv.networks.PaperUNet",
        "spatial_dims": "@spatial_dims",
        "in_channels": "@in_channels",
        "out_channels": "@out_channels",
        "channels": 4,
        "conv": "hyper",
        "kernel_size": 5,
        "hidden_channels": [4, 4, 2],
    },
}


def _write_yaml(path, content):
    with open(path, "w") as f:
        yaml.safe_dump(content, f)
    return str(path)


def _cli(configs, root, *args, timeout=300):
    """``python -m monai.bundle run`` in a subprocess; returns its output, raises with it on failure."""
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        repr(list(configs)),
        "--bundle_root",
        str(root),
    ]
    proc = subprocess.run(
        cmd + list(args),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _error_text(excinfo):
    return "".join(traceback.format_exception(excinfo.value))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run, resumed for a second epoch, then inference and evaluation, all through the CLI."""
    root = tmp_path_factory.mktemp("liver")
    tiny = _write_yaml(root / "tiny.yaml", TINY)
    logs = {"train": _cli([TRAIN, tiny], root)}
    logs["last_after_1"] = torch.load(root / "models" / "checkpoint_last.pt", weights_only=True)
    logs["model_after_1"] = _digest(root / "models" / "model.pt")
    logs["resume"] = _cli([TRAIN, tiny], root, "--resume", "true", "--max_epochs", "2")
    # the same entry point in-process (python -m monai.bundle run calls monai.bundle.run), to keep the test short
    bundle_run(config_file=[INFER, tiny], bundle_root=str(root))
    bundle_run(config_file=[TRAIN, EVAL, tiny], bundle_root=str(root))
    return root, logs


@pytest.mark.slow
def test_train_writes_best_and_last_checkpoints(trained):
    root, logs = trained
    assert sorted(f for f in os.listdir(root / "models")) == ["checkpoint_last.pt", "model.pt"]
    last = logs["last_after_1"]
    assert set(last) == {"network", "optimizer", "trainer", "checkpointer", "random_state"}
    assert last["trainer"]["iteration"] == last["trainer"]["epoch_length"] > 0  # one epoch
    assert last["checkpointer"]["best_epoch"] == 1
    # model.pt is a plain network state dict (model-zoo style) equal to the network of the best epoch
    best = torch.load(root / "models" / "model.pt", weights_only=True)
    assert all(not k.startswith("module.") for k in best) and "optimizer" not in best
    assert "val_loss" in logs["train"] and "val_mean_dice" in logs["train"]
    assert os.listdir(root / "outputs" / "tensorboard")
    assert os.path.isfile(root / "data" / "lits" / "volume-3.nii")  # the embedded data was generated


@pytest.mark.slow
def test_resume_continues_at_the_next_epoch(trained):
    root, logs = trained
    out = logs["resume"]
    assert "Resumed from" in out and "at epoch 1" in out
    assert "Epoch[2] Metrics" in out and "Epoch[1] Metrics" not in out  # epoch 1 was not trained again
    last = torch.load(root / "models" / "checkpoint_last.pt", weights_only=True)
    first = logs["last_after_1"]
    assert last["trainer"]["iteration"] == 2 * first["trainer"]["epoch_length"]
    state = last["optimizer"]["state"]
    assert int(next(iter(state.values()))["step"]) == last["trainer"]["iteration"]  # Adam continued, not restarted
    best_epoch = last["checkpointer"]["best_epoch"]
    assert best_epoch in (1, 2) and (best_epoch == 2) == (
        _digest(root / "models" / "model.pt") != logs["model_after_1"]
    )


@pytest.mark.slow
def test_inference_writes_one_label_volume_per_input_in_input_geometry(trained):
    root, _ = trained
    test_images = [
        os.path.join(root, "data", "lits", os.path.basename(p))
        for p in [i["image"] for i in yaml.safe_load(Path(root / "outputs" / "datalist.json").read_text())["test"]]
    ]
    for img_path in test_images:
        name = os.path.basename(img_path).split(".nii")[0]
        pred = nib.load(root / "outputs" / f"{name}_lesion.nii.gz")
        img = nib.load(img_path)
        assert pred.shape == img.shape and np.allclose(pred.affine, img.affine)
        assert pred.get_data_dtype() == np.uint8 and set(np.unique(np.asarray(pred.dataobj))) <= {0, 1}


@pytest.mark.slow
def test_evaluate_reports_test_dice_and_noise_sweep(trained):
    root, _logs = trained
    metrics = dict(csv.reader(Path(root / "outputs" / "metrics.csv").read_text().splitlines()))
    test_dice = float(metrics["test_dice"])
    assert 0.0 <= test_dice <= 1.0
    rows = list(csv.DictReader(Path(root / "outputs" / "noise_sweep_hyper_unet_5x5.csv").read_text().splitlines()))
    kinds = {r["noise"] for r in rows}
    assert kinds == {"salt_pepper", "gaussian", "speckle"}
    for kind in kinds:
        levels = [float(r["level"]) for r in rows if r["noise"] == kind]
        assert len(levels) >= 5 and levels[0] == 0.0 and levels == sorted(levels)
    # level 0 is the clean test set: the sweep reproduces the evaluator's Dice
    clean = [float(r["test_dice"]) for r in rows if float(r["level"]) == 0.0]
    assert np.allclose(clean, test_dice, atol=1e-5)
    assert os.path.getsize(root / "outputs" / "noise_sweep.png") > 1000


@pytest.mark.slow
def test_several_models_in_one_plot(trained, tmp_path):
    from monai_hyperconv.handlers import plot_noise_sweeps, read_sweep_csv, write_sweep_csv

    root, _ = trained
    metric, rows = read_sweep_csv(str(root / "outputs" / "noise_sweep_hyper_unet_5x5.csv"))
    write_sweep_csv(
        [(r["noise"], r["level"], r["value"] / 2) for r in rows],
        str(tmp_path / "noise_sweep_unet_5x5.csv"),
        "unet_5x5",
        metric,
    )
    write_sweep_csv(
        [(r["noise"], r["level"], r["value"]) for r in rows],
        str(tmp_path / "noise_sweep_hyper.csv"),
        "hyper_unet_5x5",
        metric,
    )
    import matplotlib.pyplot as plt

    created = []
    orig = plt.Figure.savefig
    plt.Figure.savefig = lambda self, *a, **k: (
        created.append([len(ax.lines) for ax in self.axes]),
        orig(self, *a, **k),
    )
    try:
        plot_noise_sweeps(str(tmp_path / "noise_sweep_*.csv"), str(tmp_path / "both.png"))
    finally:
        plt.Figure.savefig = orig
    assert created == [[2, 2, 2]]  # three panels (noise kinds), two models each
    assert os.path.isfile(tmp_path / "both.png")


def test_inference_undoes_orientation_and_resize_exactly(tmp_path):
    """With a fixed 'network' (logit > 0 where the windowed intensity (HU + 100) / 350 > 0.5) the prediction is HU > 75,
    voxel for voxel in the input's own orientation, for a LiTS-oriented and a permuted / flipped volume."""
    rng = np.random.default_rng(0)
    hu = rng.choice(np.array([-1000, -500, 0, 300], np.int16), size=(16, 16, 5))
    inputs = tmp_path / "in"
    inputs.mkdir()
    affine = np.diag([-0.7, -0.7, 3.0, 1.0])
    nib.save(nib.Nifti1Image(hu, affine), inputs / "volume-0.nii")
    ornt = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(affine), nib.orientations.axcodes2ornt(("S", "P", "L"))
    )
    other = nib.Nifti1Image(hu, affine).as_reoriented(ornt)
    nib.save(other, inputs / "volume-1.nii.gz")
    torch.save({}, tmp_path / "identity.pt")
    bundle_run(
        config_file=[INFER],
        bundle_root=str(tmp_path),
        input_dir=str(inputs),
        image_size=16,
        network_def="$torch.nn.Threshold(0.5, -1.0)",
        checkpoint=str(tmp_path / "identity.pt"),
        output_dir=str(tmp_path / "out"),
    )
    for name, src in (("volume-0", inputs / "volume-0.nii"), ("volume-1", inputs / "volume-1.nii.gz")):
        img = nib.load(src)
        pred = nib.load(tmp_path / "out" / f"{name}_lesion.nii.gz")
        assert pred.shape == img.shape and np.allclose(pred.affine, img.affine)
        np.testing.assert_array_equal(np.asarray(pred.dataobj), (np.asarray(img.dataobj) > 75).astype(np.uint8))


def _identity_inference(tmp_path, inputs, **overrides):
    """The liver inference config with a fixed threshold 'network' on the volumes of ``inputs``."""
    if not (tmp_path / "identity.pt").exists():
        torch.save({}, tmp_path / "identity.pt")
    bundle_run(
        **{
            "config_file": [INFER],
            "bundle_root": str(tmp_path),
            "input_dir": str(inputs),
            "image_size": 16,
            "network_def": "$torch.nn.Threshold(0.5, -1.0)",
            "checkpoint": str(tmp_path / "identity.pt"),
            "dataset_dir": str(tmp_path / "lits"),
            "output_dir": str(tmp_path / "out"),
            **overrides,
        }
    )


def test_liver_outputs_never_overwrite_or_feed_back(tmp_path):
    """Issue 24 probes: predictions into the input folder, a second run into the same folder, a postfix that names
    masks like CT volumes, and a training datalist over the predictions' folder."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    _tiny_dataset(inputs, n=2)
    before = _digest(inputs / "volume-1.nii")
    for output_dir, pattern in (
        (inputs, r"output_dir .*in.* is input_dir .*outputs would be read as inputs"),
        (inputs / "predictions", r"output_dir .*predictions.* is inside input_dir"),
        (tmp_path, r"output_dir .* contains input_dir"),
    ):
        with pytest.raises(Exception) as e:
            _identity_inference(tmp_path, inputs, output_dir=str(output_dir))
        assert re.search(pattern, summary_line(e.value)), summary_line(e.value)
    assert sorted(os.listdir(inputs)) == sorted(f"{k}-{i}.nii" for k in ("volume", "segmentation") for i in (0, 1))
    assert _digest(inputs / "volume-1.nii") == before
    with pytest.raises(Exception) as e:
        _identity_inference(tmp_path, inputs, output_postfix="")
    assert re.search(r"output_postfix '' would name the predicted masks volume-N\.nii\.gz", summary_line(e.value))

    _identity_inference(tmp_path, inputs)
    out = tmp_path / "out"
    assert sorted(f for f in os.listdir(out) if f.endswith(".nii.gz")) == [
        "volume-0_lesion.nii.gz",
        "volume-1_lesion.nii.gz",
    ]
    written = _digest(out / "volume-0_lesion.nii.gz")
    os.remove(out / "volume-0_lesion.nii.gz")
    (out / "volume-1_lesion.nii.gz").write_bytes(b"a user's file")
    with pytest.raises(Exception) as e:  # refused before anything is written
        _identity_inference(tmp_path, inputs)
    line = summary_line(e.value)
    assert re.search(r"volume-1_lesion\.nii\.gz exists and this run did not write it .*--overwrite true", line), line
    assert (out / "volume-1_lesion.nii.gz").read_bytes() == b"a user's file"
    assert not (out / "volume-0_lesion.nii.gz").exists()
    _identity_inference(tmp_path, inputs, overwrite=True)
    assert _digest(out / "volume-0_lesion.nii.gz") == written and nib.load(out / "volume-1_lesion.nii.gz").shape

    # the output folder is marked: a training datalist over it is refused, naming it
    with pytest.raises(ValueError, match=r"dataset_dir .*out.* is an output folder of a monai_hyperconv run"):
        prepare_lits_datalist(str(out), generate_data=False)


# ---------------------------------------------------------------- bad input


def _tiny_dataset(folder, n=3, shape=(16, 16, 3)):
    rng = np.random.default_rng(0)
    for i in range(n):
        lab = np.zeros(shape, np.uint8)
        lab[4:10, 4:10] = 1
        lab[5:7, 5:7, 1] = 2
        nib.save(
            nib.Nifti1Image(rng.integers(-200, 300, shape).astype(np.int16), np.eye(4)),
            os.path.join(folder, f"volume-{i}.nii"),
        )
        nib.save(nib.Nifti1Image(lab, np.eye(4)), os.path.join(folder, f"segmentation-{i}.nii"))


def _break_nan(d):
    a = np.asarray(nib.load(d / "volume-1.nii").dataobj).astype(np.float32)
    a[3, 3, 1] = np.nan
    nib.save(nib.Nifti1Image(a, np.eye(4)), d / "volume-1.nii")


BAD_INPUTS = {
    "missing segmentation": (
        lambda d: os.remove(d / "segmentation-1.nii"),
        [r"volume-1\.nii has no segmentation", r"segmentation-1\.nii"],
    ),
    "mismatched shapes": (
        lambda d: nib.save(nib.Nifti1Image(np.zeros((16, 12, 3), np.uint8), np.eye(4)), d / "segmentation-1.nii"),
        [r"Shape mismatch: .*volume-1\.nii has spatial shape \(16, 16, 3\) but .*segmentation-1\.nii"],
    ),
    "label out of range": (
        lambda d: nib.save(nib.Nifti1Image(np.full((16, 16, 3), 3, np.uint8), np.eye(4)), d / "segmentation-1.nii"),
        [r"segmentation-1\.nii: 'label' holds values \{3\} outside the expected labels \[0, 1, 2\]"],
    ),
    "NaN voxels": (_break_nan, [r"volume-1\.nii: 'image' has 1 NaN or infinite voxels"]),
    "unreadable file": (lambda d: (d / "volume-1.nii").write_bytes(b"not a nifti file" * 10), [r"volume-1\.nii"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_stops_naming_the_file_and_keeps_outputs(tmp_path, case):
    data = tmp_path / "lits"
    data.mkdir()
    _tiny_dataset(data)
    breaker, patterns = BAD_INPUTS[case]
    breaker(data)
    ckpt = tmp_path / "models"
    ckpt.mkdir()
    for name in ("model.pt", "checkpoint_last.pt"):
        torch.save({"sentinel": torch.arange(3)}, ckpt / name)
    before = {n: _digest(ckpt / n) for n in os.listdir(ckpt)}
    overrides = {k: v for k, v in TINY.items() if k != "synthetic"}
    # every split holds one of the three volumes, so the broken one is met whichever split it lands in (evaluate.yaml's
    # validate#dataset holds the test split; the validation split is set back for its turn)
    with pytest.raises(Exception) as excinfo:
        for split in ("training", "validation", "test"):
            part = "train" if split == "training" else "validate"
            bundle_run(
                config_file=[TRAIN, EVAL],
                bundle_root=str(tmp_path),
                dataset_dir=str(data),
                generate_data=False,
                run=[f"$@{part}#dataset"],
                **overrides,
                **({"validate#dataset#data": "$@datalist['validation']"} if split == "validation" else {}),
            )
    text = _error_text(excinfo)
    import re

    for p in patterns:
        assert re.search(p, text), f"{case}: {p!r} not in the error:\n{text[-3000:]}"
    assert {n: _digest(ckpt / n) for n in os.listdir(ckpt)} == before


def test_missing_dataset_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the dataset's parent should be")
    with pytest.raises(Exception) as excinfo:
        bundle_run(
            config_file=[TRAIN],
            bundle_root=str(tmp_path),
            dataset_dir=str(blocker / "lits"),
            run=["$@datalist"],
            **{k: v for k, v in TINY.items() if k != "network_def"},
        )
    text = _error_text(excinfo)
    assert "PermissionError" in text and str(blocker / "lits") in text and "cannot be generated" in text


def test_missing_real_data_without_generation(tmp_path):
    with pytest.raises(Exception) as excinfo:
        bundle_run(
            config_file=[TRAIN],
            bundle_root=str(tmp_path),
            dataset_dir=str(tmp_path / "nowhere"),
            generate_data=False,
            run=["$@datalist"],
        )
    assert "LiTS dataset folder" in _error_text(excinfo) and "nowhere" in _error_text(excinfo)


def test_resume_without_checkpoint_names_the_file(tmp_path):
    from ignite.engine import Engine

    from monai_hyperconv.handlers import ResumableCheckpointer

    net = torch.nn.Linear(2, 1)
    handler = ResumableCheckpointer(str(tmp_path / "ckpt"), {"network": net}, resume=True)
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    with pytest.raises(FileNotFoundError, match=r"checkpoint_last\.pt"):
        engine.run([0], max_epochs=1)


# ---------------------------------------------------------------- MONAI bundle scripts


def _assert_same_outputs_as_trained_network(exported, root, tiny):
    """``exported`` computes what the bundle's hyper network_def with ``models/model.pt`` computes."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([INFER, tiny])
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(root / "models" / "model.pt", weights_only=True))
    net.eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), net(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_verify_net_in_out_and_ckpt_export(trained, tmp_path):
    root, _ = trained
    tiny = _write_yaml(tmp_path / "tiny.yaml", TINY)
    verify_net_in_out(
        net_id="network_def",
        meta_file=os.path.join(CONFIGS, "metadata.json"),
        config_file=[INFER, tiny],
        bundle_root=str(root),
        device="cpu",
    )
    ts = tmp_path / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts),
        ckpt_file=str(root / "models" / "model.pt"),
        meta_file=os.path.join(CONFIGS, "metadata.json"),
        config_file=[INFER, tiny],
        bundle_root=str(root),
        use_trace=True,
        input_shape=[1, 1, 32, 32],
    )
    _assert_same_outputs_as_trained_network(torch.jit.load(str(ts)), root, tiny)


@pytest.mark.slow
def test_materialized_export_has_no_kernel_networks_and_same_outputs(trained, tmp_path):
    """configs/export/materialize.yaml: materialized weights, then MONAI's ckpt_export of network_materialized."""
    root, _ = trained
    tiny = _write_yaml(tmp_path / "tiny.yaml", TINY)
    configs = [INFER, os.path.join(REPO, "configs", "export", "materialize.yaml"), tiny]
    out = str(tmp_path / "model_materialized.pt")
    with pytest.raises(Exception) as e:
        bundle_run(
            config_file=configs,
            bundle_root=str(root),
            checkpoint=str(tmp_path / "none.pt"),
            materialized_checkpoint=out,
        )
    assert "none.pt" in exception_chain_text(e.value) and not os.path.exists(out)
    bundle_run(config_file=configs, bundle_root=str(root), materialized_checkpoint=out)  # from models/model.pt
    weights = torch.load(tmp_path / "model_materialized.pt", weights_only=True)
    assert weights and not [k for k in weights if "kernel_net" in k]
    ts = tmp_path / "model_materialized.ts"
    ckpt_export(
        net_id="network_materialized",
        filepath=str(ts),
        ckpt_file=str(tmp_path / "model_materialized.pt"),
        meta_file=os.path.join(CONFIGS, "metadata.json"),
        config_file=configs,
        bundle_root=str(root),
        use_trace=True,
        input_shape=[1, 1, 32, 32],
    )
    _assert_same_outputs_as_trained_network(torch.jit.load(str(ts)), root, tiny)


def _torchrun_train(root, **overrides):
    """train.yaml + configs/multi_gpu.yaml + multi_gpu_train.yaml on the tiny data in two gloo processes; returns their output."""
    tiny = _write_yaml(root / "tiny.yaml", {**TINY, **overrides})
    return torchrun_bundle([TRAIN, MULTI_GPU_FRAGMENT, MULTI, tiny], ["--bundle_root", str(root)], cwd=REPO)


@pytest.mark.slow
def test_torchrun_two_process_gloo(tmp_path):
    _torchrun_train(tmp_path, max_epochs=2)
    last = torch.load(tmp_path / "models" / "checkpoint_last.pt", weights_only=True)
    best = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert all(not k.startswith("module.") for k in best)  # saved unwrapped from DistributedDataParallel
    # each rank sees half of the training slices per epoch
    n_train = sum(
        nib.load(os.path.join(tmp_path, "data", "lits", os.path.basename(i["image"]))).shape[2]
        for i in yaml.safe_load(Path(tmp_path / "outputs" / "datalist.json").read_text())["training"]
    )
    per_rank = -(-n_train // 2)
    assert last["trainer"]["epoch_length"] == -(-per_rank // TINY["batch_size"])
    assert last["trainer"]["iteration"] == 2 * last["trainer"]["epoch_length"]


@pytest.mark.slow
def test_killed_run_resumes_at_the_right_epoch(tmp_path):
    """Kill a training process after its first checkpoint, resume with --resume true, finish all epochs."""
    tiny = _write_yaml(tmp_path / "tiny.yaml", {**TINY, "max_epochs": 3})
    done = _train_and_kill(tmp_path, tiny)
    last = tmp_path / "models" / "checkpoint_last.pt"
    epoch_length = torch.load(last, weights_only=True)["trainer"]["epoch_length"]
    assert 1 <= done < 3, "the run finished before it could be killed; nothing to resume"
    out = _cli([TRAIN, tiny], tmp_path, "--resume", "true")
    assert f"at epoch {done}" in out and f"Epoch[{done}] Metrics" not in out and "Epoch[3] Metrics" in out
    final = torch.load(last, weights_only=True)
    assert final["trainer"]["iteration"] == 3 * epoch_length
    assert int(next(iter(final["optimizer"]["state"].values()))["step"]) == 3 * epoch_length


def _train_and_kill(root, tiny):
    """Start a training and SIGKILL it once checkpoint_last.pt exists; returns the epochs it holds."""
    import signal
    import time

    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        repr([TRAIN, tiny]),
        "--bundle_root",
        str(root),
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    last = root / "models" / "checkpoint_last.pt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    trainer = torch.load(last, weights_only=True)["trainer"]
    return trainer["iteration"] // trainer["epoch_length"]


@pytest.mark.slow
def test_killed_and_resumed_run_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    """kill -9 after the first checkpoint_last.pt, --resume true: the same final weights as one uninterrupted run,
    with dropout (PaperUNet's), augmentation (flips, affine), shuffling and a DataLoader worker (started anew each epoch) on."""
    settings = {**TINY, "max_epochs": 3, "num_workers": 1}
    whole, split = tmp_path / "whole", tmp_path / "split"
    whole.mkdir(), split.mkdir()
    _cli([TRAIN, _write_yaml(whole / "tiny.yaml", settings)], whole)
    tiny = _write_yaml(split / "tiny.yaml", settings)
    done = _train_and_kill(split, tiny)
    assert 1 <= done < 3, "the run finished before it could be killed; nothing to resume"
    assert (split / "models" / ".run.lock").exists()  # left by the killed run: stale, taken over below
    _cli([TRAIN, tiny], split, "--resume", "true")
    a = torch.load(whole / "models" / "checkpoint_last.pt", weights_only=True)
    b = torch.load(split / "models" / "checkpoint_last.pt", weights_only=True)
    assert a["trainer"]["iteration"] == b["trainer"]["iteration"] == 3 * a["trainer"]["epoch_length"]
    for k, v in a["network"].items():
        assert torch.equal(v, b["network"][k]), k
    assert not (split / "models" / ".run.lock").exists()  # released at exit


@pytest.mark.slow
def test_torchrun_time_limit_stops_every_rank_at_the_same_epoch(tmp_path):
    """train_time_limit also holds under torchrun: both ranks stop after epoch 1, none hangs.

    The budget (0.1 s) is below twice any tiny epoch's duration, so the run must stop after the first epoch."""
    out = _torchrun_train(tmp_path, max_epochs=3, train_time_limit=0.1)
    assert "EpochTimeLimit: stopping after epoch 1" in out
    last = torch.load(tmp_path / "models" / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == last["trainer"]["epoch_length"]
