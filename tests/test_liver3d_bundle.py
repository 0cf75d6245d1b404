"""bundles/liver_lesion_seg_3d on tiny embedded volumes: lesion-balanced 3D patches at the bundle's voxel size, the
3D network fragments and MONAI's DynUNet / SegResNet made hyper networks inside the bundle's config, inference
writing predictions in the input's space, and (slow) a whole training + evaluation run."""

import copy
import csv
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import TINY_BUNDLE_OVERRIDES, tiny_bundle_workflow
from monai.bundle import ConfigParser

from monai_hyperconv import HyperConv3d, HyperConvTranspose3d
from monai_hyperconv.layers import HyperConvNd
from monai_hyperconv.networks import PaperUNet, receptive_field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "bundles", "liver_lesion_seg_3d", "configs")
TINY = TINY_BUNDLE_OVERRIDES["liver_lesion_seg_3d"]

pytestmark = pytest.mark.usefixtures("one_thread_no_onednn")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A bundle root whose embedded data (4 tiny volumes) and datalist are generated once for the module."""
    root = tmp_path_factory.mktemp("liver3d")
    _parser(str(root), ["train.yaml"]).get_parsed_content("datalist")
    return str(root)


def _parser(root: str, files: list[str], **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, f) for f in files])
    parser.update({"bundle_root": root, **copy.deepcopy(TINY), **overrides})
    return parser


def test_training_patches_are_lesion_balanced_at_the_bundle_spacing(tiny_root):
    parser = _parser(tiny_root, ["train.yaml"])
    data = parser.get_parsed_content("train#dataset#data")
    transform = parser.get_parsed_content("train#preprocessing")
    transform.set_random_state(0)
    patches = [p for _ in range(4) for item in data for p in transform(dict(item))]
    assert len(patches) == 4 * len(data) * TINY["num_samples"]
    for p in patches:
        assert tuple(p["image"].shape) == (1, *TINY["image_size"]) == tuple(p["label"].shape)
        assert set(torch.unique(p["label"]).tolist()) <= {0.0, 1.0}
        assert -0.1 <= float(p["image"].min()) and float(p["image"].max()) <= 1.1  # HU window, shift up to +-0.1
    with_lesion = np.mean([bool(p["label"].any()) for p in patches])
    volumes = [parser.get_parsed_content("validate#preprocessing")(dict(item)) for item in data]
    lesion_fraction = np.mean([float(v["label"].mean()) for v in volumes])
    # pos = neg = 1: about half the patches are centred on lesion, where lesion fills < 5 % of a volume
    assert lesion_fraction < 0.05 and with_lesion >= 0.4, (with_lesion, lesion_fraction)
    # resampled to `spacing` (10 mm): the volume covers the same extent as the file
    nii = nib.load(data[0]["image"])
    extent = np.array(nii.shape) * np.array(nii.header.get_zooms()[:3])
    assert np.allclose(np.array(volumes[0]["image"].shape[1:]) * 10.0, extent, atol=10.0)


FRAGMENTS = {"hyper_unet_3x3": 3, "hyper_unet_5x5": 5, "hyper_unet_7x7": 7, "unet_3x3": 3}


def test_network_fragments_are_3d_networks_in_this_bundle(tiny_root):
    """configs/networks fragments take spatial_dims from the bundle: merged on it they give 3D networks whose hyper
    parameters do not depend on the kernel size, with receptive fields 68 / 128 / 188 voxels."""
    counts, fields = {}, {}
    for name, k in FRAGMENTS.items():
        parser = _parser(tiny_root, ["train.yaml", f"../../../configs/networks/{name}.yaml"])
        parser["network_def#channels"] = 4
        net = parser.get_parsed_content("network_def")
        assert isinstance(net, PaperUNet) and net.spatial_dims == 3
        convs = [m for m in net.modules() if isinstance(m, (HyperConv3d, torch.nn.Conv3d)) and max(m.kernel_size) > 1]
        hyper = name.startswith("hyper")
        assert all(isinstance(m, HyperConv3d) == hyper for m in convs)
        assert {m.kernel_size for m in convs if not hyper or isinstance(m, HyperConv3d)} >= {(k, k, k)}
        counts[name], fields[name] = sum(p.numel() for p in net.parameters()), receptive_field(net)
        y = net(torch.rand(1, 1, 16, 16, 16))
        assert y.shape == (1, 1, 16, 16, 16)
    assert counts["hyper_unet_3x3"] == counts["hyper_unet_5x5"] == counts["hyper_unet_7x7"] < counts["unet_3x3"]
    assert [fields[n] for n in ("hyper_unet_3x3", "hyper_unet_5x5", "hyper_unet_7x7", "unet_3x3")] == [68, 128, 188, 68]


HYPERIZED = {
    "DynUNet": {
        "_target_": "DynUNet",
        "spatial_dims": "@spatial_dims",
        "in_channels": "@in_channels",
        "out_channels": "@out_channels",
        "kernel_size": [3, 3, 3, 3],
        "strides": [1, 2, 2, 2],
        "upsample_kernel_size": [2, 2, 2],
        "filters": [4, 8, 8, 8],
    },
    "SegResNet": {
        "_target_": "SegResNet",
        "spatial_dims": "@spatial_dims",
        "in_channels": "@in_channels",
        "out_channels": "@out_channels",
        "init_filters": 8,
        "blocks_down": [1, 1, 1, 1],
        "blocks_up": [1, 1, 1],
    },
}


@pytest.mark.parametrize("name", sorted(HYPERIZED))
def test_hyperized_monai_networks_train_in_this_bundle(tiny_root, name):
    """``network_def`` = ``monai_hyperconv.hyperize`` of MONAI's DynUNet (nnU-Net's architecture) / SegResNet: every
    3D convolution with a kernel > 1 becomes a hyper-convolution, and one step of the bundle's loss on a batch of its
    training patches reaches every kernel network."""
    network_def = {"_target_": "monai_hyperconv.hyperize", "model": HYPERIZED[name], "kernel_size": 5}
    parser = _parser(tiny_root, ["train.yaml"], network_def=network_def)
    net = parser.get_parsed_content("network")
    assert not [
        m for m in net.modules() if type(m) in (torch.nn.Conv3d, torch.nn.ConvTranspose3d) and max(m.kernel_size) > 1
    ]
    hyper = [m for m in net.modules() if isinstance(m, HyperConvNd)]
    assert len(hyper) >= 8 and all(m.spatial_dims == 3 for m in hyper)
    assert all(m.kernel_size == (5, 5, 5) for m in hyper if isinstance(m, HyperConv3d))
    if name == "DynUNet":
        assert any(isinstance(m, HyperConvTranspose3d) for m in hyper)
    batch = next(iter(parser.get_parsed_content("train#dataloader")))
    loss = parser.get_parsed_content("loss")(net(batch["image"]), batch["label"])
    loss.backward()
    assert torch.isfinite(loss)
    for m in hyper:
        grads = [p.grad for p in m.parameters() if p.requires_grad and p is not m.bias]
        assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_inference_writes_predictions_in_the_input_space(tiny_root, tmp_path):
    """Sliding window at the bundle's voxel size, Invertd back to the file's grid: one uint8 0/1 volume per input with
    the input's shape and affine, named after it."""
    out = str(tmp_path / "pred")
    parser = _parser(tiny_root, ["inference.yaml"], **{"network_def#channels": 4})
    os.makedirs(os.path.join(tiny_root, "models"), exist_ok=True)
    torch.save(parser.get_parsed_content("network_def").state_dict(), os.path.join(tiny_root, "models", "model.pt"))
    wf = tiny_bundle_workflow("liver_lesion_seg_3d", "infer", ["inference.yaml"], tiny_root, output_dir=out,
                              **{"network_def#channels": 4})  # fmt: skip
    wf.initialize()
    try:
        wf.run()
    finally:
        wf.finalize()
    files = parser.get_parsed_content("files")
    assert files
    for item in files:
        name = os.path.basename(item["image"]).replace(".nii.gz", "").replace(".nii", "")
        pred, src = nib.load(str(tmp_path / "pred" / f"{name}_lesion.nii.gz")), nib.load(item["image"])
        assert pred.shape == src.shape and np.allclose(pred.affine, src.affine, atol=1e-4)
        values = np.unique(np.asarray(pred.dataobj))
        assert pred.get_data_dtype() == np.uint8 and set(values.tolist()) <= {0, 1}


def test_validation_evaluation_and_sweep_share_the_sliding_window_inferer(tmp_path):
    """Validation, test Dice and the noise sweep run the network through one SlidingWindowInferer, whose window
    cpu_quick.yaml enlarges beyond its training patch."""
    from monai.inferers import SlidingWindowInferer

    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, f) for f in ("train.yaml", "evaluate.yaml", "cpu_quick.yaml")])
    parser["bundle_root"] = str(tmp_path)
    inferer = parser.get_parsed_content("validate#inferer")
    assert isinstance(inferer, SlidingWindowInferer)
    # (MONAI stores references with "::" for "#")
    assert parser["validate#evaluator#inferer"] == parser["noise_sweep"]["inferer"] == "@validate::inferer"
    assert list(inferer.roi_size) == [48, 48, 48] and parser.get_parsed_content("image_size") == [32, 32, 32]


@pytest.mark.slow
def test_bundle_trains_and_evaluates(tmp_path):
    """Two epochs of train.yaml on tiny data write model.pt, the learning curve, then evaluate.yaml writes metrics.csv
    and the noise sweep, all through `monai.bundle run` as a user runs it."""
    import subprocess
    import sys

    root = tmp_path / "b"
    args = ["--bundle_root", str(root), "--max_epochs", "2", "--network_def#channels", "4"]
    for key, value in TINY.items():
        args += [f"--{key}", repr(value) if not isinstance(value, (int, float)) else str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for files in (["train.yaml"], ["train.yaml", "evaluate.yaml"]):
        config = repr([os.path.join(CONFIGS, f) for f in files])
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config, *args]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, timeout=600, env=env)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert (root / "models" / "model.pt").is_file()
    with open(root / "outputs" / "learning_curve.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    with open(root / "outputs" / "metrics.csv") as f:
        text = f.read()
    assert "test_dice" in text and "test_mean_dice" in text
    assert (root / "outputs" / "noise_sweep_hyper_unet_5x5x5.csv").is_file()


@pytest.mark.slow
def test_batch_norm_probe_runs_and_reports_both_validations(tmp_path):
    """scripts/batch_norm_probe.py (the measurement behind precise batch norm) runs one epoch and prints both lines."""
    script = os.path.join(REPO, "bundles", "liver_lesion_seg_3d", "scripts", "batch_norm_probe.py")
    result = subprocess.run(
        [sys.executable, script, "--epochs", "1", "--dataset_dir", str(tmp_path / "data")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("after 1 epochs")]
    assert len(lines) == 2 and "running averages" in lines[0] and "recomputed on" in lines[1]
    assert all("val_loss" in line for line in lines)
