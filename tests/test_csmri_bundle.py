"""The CS-MRI bundle end to end on tiny data: train (CLI) -> inference -> evaluate, resume, network fragments, bad input."""

import csv
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import MULTI_GPU_FRAGMENT, exception_chain_text, torchrun_bundle
from monai.bundle import ConfigParser
from monai.bundle import run as bundle_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bundles", "csmri_recon", "configs")
TRAIN = os.path.join(CONFIGS, "train.yaml")
INFERENCE = os.path.join(CONFIGS, "inference.yaml")
EVALUATE = [TRAIN, os.path.join(CONFIGS, "evaluate.yaml")]
# tiny everything: 32x32 slices, a 4-channel Hyper-UNet, one epoch, no worker processes
TINY = {
    "image_size": 32,
    "batch_size": 2,
    "max_epochs": 1,
    "num_workers": 0,
    "cache_workers": 0,
    "slices_per_volume": 2,
    "generate_data": False,
    "network_def#channels": 4,
    "network_def#hidden_channels": [4, 4, 2],
}


def _phantom(rng, shape):
    grids = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    r = sum((g / rng.uniform(0.5, 0.9)) ** 2 for g in grids)
    return ((r < 1) * (0.6 + 0.4 * np.cos(3 * grids[0]))).astype(np.float32)


def _write_dataset(folder):
    """Five subjects of two 2D slices and one subject with a 3D volume (two slices taken from it)."""
    rng = np.random.default_rng(0)
    for s in range(5):
        for k in range(2):
            path = os.path.join(folder, f"case{s}", f"slice{k}.nii.gz")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            nib.save(nib.Nifti1Image(_phantom(rng, (40, 48)), np.eye(4)), path)
    os.makedirs(os.path.join(folder, "sub-vol", "anat"))
    nib.save(
        nib.Nifti1Image(_phantom(rng, (40, 48, 10)), np.eye(4)), os.path.join(folder, "sub-vol", "anat", "t1.nii.gz")
    )


def _args(bundle_root, dataset_dir, **extra):
    return {"bundle_root": str(bundle_root), "dataset_dir": str(dataset_dir), **TINY, **extra}


def _cli(config_file, args):
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_file]
    for k, v in args.items():
        cmd += [f"--{k}", str(v).replace(" ", "") if isinstance(v, list) else str(v)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("csmri")
    data, bundle = base / "data", base / "bundle"
    _write_dataset(str(data))
    result = _cli(TRAIN, _args(bundle, data))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return base, data, bundle


@pytest.mark.slow
def test_train_inference_evaluate(trained):
    base, data, bundle = trained
    ckpt = bundle / "models"
    assert (ckpt / "model.pt").is_file() and (ckpt / "checkpoint_last.pt").is_file()
    last = torch.load(ckpt / "checkpoint_last.pt", weights_only=True)
    assert set(last) >= {"network", "optimizer", "trainer", "checkpointer"}
    assert last["trainer"]["iteration"] == last["trainer"]["epoch_length"] > 0  # one epoch
    # model.pt holds the network's weights (best validation loss)
    assert set(torch.load(ckpt / "model.pt", weights_only=True)) == set(last["network"])

    bundle_run(config_file=INFERENCE, **_args(bundle, data, output_dir=str(base / "pred")))
    test_items = ConfigParser.load_config_file(str(bundle / "outputs" / "datalist.json"))["test"]
    recons = sorted(
        os.path.relpath(os.path.join(r, f), base / "pred")
        for r, _, fs in os.walk(base / "pred")
        for f in fs
        if f.endswith("_recon.nii.gz")
    )
    assert len(recons) == len(test_items) > 0
    img = nib.load(os.path.join(base / "pred", recons[0]))
    assert img.shape == (32, 32) and np.isfinite(np.asarray(img.dataobj)).all()

    bundle_run(config_file=EVALUATE, **_args(bundle, data, noise_levels=[0.0, 0.1, 0.3], example_levels=[0.0, 0.3]))
    out = bundle / "outputs"
    with open(out / "test_psnr_hyper_unet_5x5_nl8.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(test_items)
    assert all(np.isfinite(float(r["psnr"])) and 0 < float(r["zero_filled_psnr"]) < 60 for r in rows)
    sweeps = {}
    for name in ("zero_filled", "hyper_unet_5x5_nl8"):
        with open(out / f"noise_sweep_{name}.csv") as f:
            sweeps[name] = [float(r["psnr"]) for r in csv.DictReader(f)]
    assert len(sweeps["zero_filled"]) == len(sweeps["hyper_unet_5x5_nl8"]) == 3
    # more k-space noise, worse zero-filled input
    assert sweeps["zero_filled"][0] > sweeps["zero_filled"][-1]
    # the clean sweep level is the report's zero-filled mean
    assert sweeps["zero_filled"][0] == pytest.approx(np.mean([float(r["zero_filled_psnr"]) for r in rows]), abs=0.05)
    for png in ("test_psnr.png", "noise_sweep.png", "noise_examples_hyper_unet_5x5_nl8.png"):
        assert (out / png).stat().st_size > 0

    # the training split's PSNR (the comparison's train column), without the sweep
    train_out = base / "train_eval"
    bundle_run(
        config_file=EVALUATE,
        **_args(bundle, data, output_dir=str(train_out), eval_split="training", run_noise_sweep="false"),
    )
    train_items = ConfigParser.load_config_file(str(bundle / "outputs" / "datalist.json"))["training"]
    with open(train_out / "test_psnr_hyper_unet_5x5_nl8.csv") as f:
        assert len(list(csv.DictReader(f))) == len(train_items) != len(test_items)
    assert not list(train_out.glob("noise_*"))


@pytest.mark.slow
def test_resume_continues_at_the_next_epoch(trained, tmp_path):
    _, data, bundle = trained
    shutil.copytree(bundle / "models", tmp_path / "models")
    shutil.copytree(bundle / "outputs", tmp_path / "outputs")
    bundle_run(config_file=TRAIN, **_args(tmp_path, data, max_epochs=2, resume=True))
    last = torch.load(tmp_path / "models" / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 2 * last["trainer"]["epoch_length"]  # epoch 2 done, not restarted
    assert last["checkpointer"]["best_epoch"] in (1, 2)


def test_network_fragments_swap_the_model():
    parser = ConfigParser()
    parser.read_config([TRAIN, os.path.join(ROOT, "configs", "networks", "unet_5x5.yaml")])
    parser.update({"network_def#channels": 4})
    net = parser.get_parsed_content("network_def")
    assert not any("Hyper" in type(m).__name__ for m in net.modules())
    default = ConfigParser()
    default.read_config(TRAIN)
    default.update({"network_def#channels": 4})
    hyper = [m for m in default.get_parsed_content("network_def").modules() if type(m).__name__ == "HyperConv2d"]
    assert hyper and all(tuple(m.hidden_channels)[-1] == 8 for m in hyper)  # N_L = 8 by default
    x = torch.rand(1, 1, 32, 32)
    assert net(x).shape == x.shape


def test_bad_inputs_are_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception) as e:
        bundle_run(config_file=TRAIN, **_args(tmp_path / "b1", empty))
    assert "No T1 NIfTI file" in exception_chain_text(e.value) and "empty" in exception_chain_text(e.value)

    data = tmp_path / "data"
    _write_dataset(str(data))
    for s in range(5):  # a NaN in one slice of every subject: the training split holds one
        bad = np.asarray(nib.load(str(data / f"case{s}" / "slice1.nii.gz")).dataobj).copy()
        bad[5, 5] = np.nan
        nib.save(nib.Nifti1Image(bad, np.eye(4)), str(data / f"case{s}" / "slice1.nii.gz"))
    with pytest.raises(Exception) as e:
        bundle_run(config_file=TRAIN, **_args(tmp_path / "b2", data))
    assert "/slice1.nii.gz: 'image' has 1 NaN" in exception_chain_text(e.value)

    os.remove(data / "case0" / "slice1.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), str(data / "case0" / "4d.nii.gz"))
    with pytest.raises(Exception) as e:
        bundle_run(config_file=TRAIN, **_args(tmp_path / "b3", data))
    assert "4d.nii.gz" in exception_chain_text(
        e.value
    ) and "expected a 2D slice (H, W) or a 3D" in exception_chain_text(e.value)

    with pytest.raises(Exception) as e:
        bundle_run(config_file=INFERENCE, **_args(tmp_path / "b4", data, input_dir=str(empty)))
    assert "model.pt" in exception_chain_text(e.value)


@pytest.mark.slow
def test_inference_on_an_empty_input_folder_is_named(trained, tmp_path):
    _, data, bundle = trained
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception) as e:
        bundle_run(config_file=INFERENCE, **_args(bundle, data, input_dir=str(empty), output_dir=str(tmp_path / "out")))
    assert "No .nii / .nii.gz file in the inference input folder" in exception_chain_text(e.value)
    assert str(empty) in exception_chain_text(e.value)


@pytest.mark.slow
def test_lowercase_false_on_the_command_line_means_false(tmp_path):
    """fire passes `--generate_data false` as the string 'false': it must not generate data (nor read as true)."""
    missing = tmp_path / "missing"
    result = _cli(TRAIN, _args(tmp_path / "bundle", missing, generate_data="false"))
    assert (
        result.returncode != 0 and f"CS-MRI dataset folder '{missing}' does not exist" in result.stdout + result.stderr
    )
    assert not missing.exists()
    result = _cli(TRAIN, _args(tmp_path / "bundle", missing, generate_data="nein"))
    assert result.returncode != 0 and "generate_data must be true or false, got 'nein'" in result.stdout + result.stderr


@pytest.mark.slow
def test_torchrun_two_process_gloo(tmp_path):
    """multi_gpu_train.yaml on CPU: two gloo processes, rank 0 writes the checkpoints of the unwrapped network."""
    _write_dataset(str(tmp_path / "data"))
    args = []
    for k, v in _args(tmp_path / "bundle", tmp_path / "data", max_epochs=2).items():
        args += [f"--{k}", str(v).replace(" ", "") if isinstance(v, list) else str(v)]
    torchrun_bundle([TRAIN, MULTI_GPU_FRAGMENT, os.path.join(CONFIGS, "multi_gpu_train.yaml")], args, cwd=ROOT)
    ckpt = tmp_path / "bundle" / "models"
    best = torch.load(ckpt / "model.pt", weights_only=True)
    assert all(not k.startswith("module.") for k in best)
    last = torch.load(ckpt / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 2 * last["trainer"]["epoch_length"]


def _identity_inference(tmp_path, inputs, **overrides):
    """inference.yaml with an identity 'network' (the reconstruction is the zero-filled input) on ``inputs``."""
    if not (tmp_path / "identity.pt").exists():
        torch.save({}, tmp_path / "identity.pt")
    args = _args(tmp_path / "bundle", tmp_path / "data", input_dir=str(inputs), output_dir=str(tmp_path / "out"))
    args.update(network_def="$torch.nn.Identity()", checkpoint=str(tmp_path / "identity.pt"), **overrides)
    args = {k: v for k, v in args.items() if not k.startswith("network_def#")}
    bundle_run(config_file=INFERENCE, **args)


def test_csmri_outputs_never_overwrite_or_feed_back(tmp_path):
    """Issue 24 probes: x.nii and x.nii.gz would share an output; output_dir inside input_dir; a second run into the
    same folder; the outputs are never read back as inputs."""
    from monai_hyperconv.apps.csmri import find_csmri_images
    from monai_hyperconv.utils.errors import summary_line

    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    (inputs / "site").mkdir(parents=True)
    nib.save(nib.Nifti1Image(_phantom(rng, (40, 48)), np.eye(4)), inputs / "site" / "x.nii")
    nib.save(nib.Nifti1Image(_phantom(rng, (40, 48)), np.eye(4)), inputs / "site" / "x.nii.gz")
    with pytest.raises(Exception) as e:
        _identity_inference(tmp_path, inputs)
    line = summary_line(e.value)
    assert "x.nii and " in line and "x.nii.gz would both be saved as" in line and "x_recon.nii.gz" in line, line
    assert not list((tmp_path / "out").rglob("*.nii*"))  # refused before anything is written

    os.remove(inputs / "site" / "x.nii.gz")
    nib.save(nib.Nifti1Image(_phantom(rng, (40, 48, 10)), np.eye(4)), inputs / "site" / "vol.nii.gz")
    with pytest.raises(Exception) as e:
        _identity_inference(tmp_path, inputs, output_dir=str(inputs / "out"))
    assert "is inside input_dir" in summary_line(e.value)
    assert not (inputs / "out").exists()

    _identity_inference(tmp_path, inputs)
    out = tmp_path / "out"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.nii.gz"))
    k = [round(f * 9) for f in (0.3, 0.7)]  # slices_per_volume 2 over slice_range [0.3, 0.7] of 10 axial slices
    assert written == sorted(
        [f"site/vol_{kind}_{i}.nii.gz" for kind in ("recon", "zero_filled") for i in k]
        + ["site/x_recon.nii.gz", "site/x_zero_filled.nii.gz"]
    )
    with pytest.raises(Exception) as e:  # a second run into the same folder: nothing replaced without asking
        _identity_inference(tmp_path, inputs)
    assert "exists and this run did not write it" in summary_line(e.value) and "--overwrite true" in summary_line(
        e.value
    )
    _identity_inference(tmp_path, inputs, overwrite=True)

    # outputs moved below the input folder are not read as inputs: the output folder is marked
    shutil.move(str(out), str(inputs / "old_out"))
    assert sorted(os.path.basename(i["image"]) for i in find_csmri_images(str(inputs), 2)) == ["vol.nii.gz"] * 2 + [
        "x.nii"
    ]


@pytest.mark.slow
def test_data_consistency_train_evaluate_infer(tmp_path):
    """--data_consistency true: trained, validated, evaluated and inferred with the measured k-space passed to the
    network (its outputs keep the measured samples), and refused on inputs that are zero-filled already."""
    from monai_hyperconv.utils.errors import summary_line

    _write_dataset(str(tmp_path / "data"))
    bundle = tmp_path / "bundle"
    result = _cli(TRAIN, _args(bundle, tmp_path / "data", data_consistency="true", max_epochs=2))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(bundle / "outputs" / "learning_curve.csv") as f:
        assert len(list(csv.DictReader(f))) == 2

    bundle_run(config_file=EVALUATE, **_args(bundle, tmp_path / "data", data_consistency=True, noise_levels=[0.0, 0.3],
                                             example_levels=[0.0]))  # fmt: skip
    with open(bundle / "outputs" / "test_psnr_hyper_unet_5x5_nl8.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(np.isfinite(float(r["psnr"])) for r in rows)

    # the same network without its measurement gives other reconstructions: the k-space did reach it
    pred = {}
    for flag in ("true", "false"):
        out = tmp_path / f"pred_{flag}"
        bundle_run(
            config_file=INFERENCE, **_args(bundle, tmp_path / "data", output_dir=str(out), data_consistency=flag)
        )
        pred[flag] = {
            os.path.relpath(os.path.join(r, f), out): np.asarray(nib.load(os.path.join(r, f)).dataobj)
            for r, _, fs in os.walk(out) for f in fs if f.endswith("_recon.nii.gz")
        }  # fmt: skip
    assert pred["true"].keys() == pred["false"].keys() and pred["true"]
    assert any(not np.allclose(pred["true"][k], pred["false"][k]) for k in pred["true"])

    with pytest.raises(Exception) as e:
        bundle_run(config_file=INFERENCE, **_args(bundle, tmp_path / "data", output_dir=str(tmp_path / "zf"),
                                                  data_consistency="true", undersample_input="false"))  # fmt: skip
    assert "data_consistency needs the measured k-space" in summary_line(e.value)
    assert not (tmp_path / "zf").exists() or not list((tmp_path / "zf").rglob("*.nii*"))
