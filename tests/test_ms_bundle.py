"""End-to-end checks of bundles/ms_lesion_seg on tiny ISBI-layout files written here.

Train (through ``python -m monai.bundle run``), resume, inference on test subjects without masks (volumes smaller
than the crop included), evaluation with the fold summary and the noise sweep, fold assignment, and bad inputs.
A 4-channel multi-branch Hyper-UNet keeps it fast.
"""

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import MULTI_GPU_FRAGMENT, exception_chain_text, torchrun_bundle
from monai.bundle import ConfigParser

from monai_hyperconv.apps.ms.isbi import ISBI_CONTRASTS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "bundles", "ms_lesion_seg", "configs")
TRAIN, INFER, EVAL = (os.path.join(CONFIGS, f) for f in ("train.yaml", "inference.yaml", "evaluate.yaml"))
# 1.5 mm voxels, shifted origin: predictions must carry this affine, not the identity
AFFINE = np.diag([1.5, 1.5, 1.5, 1.0])
AFFINE[:3, 3] = [-20.0, 10.0, 5.0]
TINY = {
    "image_size": [24, 32, 24],
    "max_epochs": 1,
    "slices_per_volume": 4,
    "batch_size": 8,
    "val_slice_stride": 3,
}


def _subject(root, name, shape, timepoints, labelled, seed, folder="training"):
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    brain = (grid**2).sum(0) < 0.8
    centres = rng.uniform(-0.4, 0.4, (3, 3))
    base = os.path.join(root, folder, name)
    for sub in ("preprocessed", "masks"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    for t in range(1, timepoints + 1):
        dist = np.min([np.sqrt(((grid - c[:, None, None, None]) ** 2).sum(0)) for c in centres], axis=0)
        lesion = (dist < 0.18 + 0.03 * t) & brain
        for c, contrast in enumerate(ISBI_CONTRASTS):
            sign = -1.0 if contrast == "mprage" else 1.0
            img = brain * (100.0 + 10 * c + 60.0 * sign * lesion + rng.normal(0, 5, shape))
            nib.save(
                nib.Nifti1Image(img.astype(np.float32), AFFINE),
                os.path.join(base, "preprocessed", f"{name}_{t:02d}_{contrast}_pp.nii"),
            )
        if labelled:
            # the raters differ at the borders
            for r, grow in ((1, 0.02), (2, -0.02)):
                mask = ((dist < 0.18 + 0.03 * t + grow) & brain).astype(np.uint8)
                nib.save(nib.Nifti1Image(mask, AFFINE), os.path.join(base, "masks", f"{name}_{t:02d}_mask{r}.nii"))


def write_dataset(root):
    _subject(root, "training01", (24, 28, 24), 2, True, 1)
    _subject(root, "training02", (20, 26, 18), 2, True, 2)  # smaller than the 24x32x24 crop
    _subject(root, "training03", (26, 34, 22), 2, True, 3)
    _subject(root, "test01", (20, 30, 18), 2, False, 4, folder="testdata_website")


def tiny_network(path):
    path.write_text(
        "network_def:\n"
        "  _target_: monai_hyperconv.networks.MultiBranchUNet\n"
        "  spatial_dims: '@spatial_dims'\n  in_channels: '@in_channels'\n  out_channels: '@out_channels'\n"
        "  channels: 4\n  conv: hyper\n  kernel_size: 5\n  hidden_channels: [8, 8, 4]\n"
    )
    return str(path)


def cli_args(overrides):
    args = []
    for k, v in overrides.items():
        args += [f"--{k}", v if isinstance(v, str) else repr(v)]
    return args


pytestmark = pytest.mark.usefixtures("one_thread_no_onednn")


def run_inprocess(config_files, **overrides):
    from monai.bundle import run

    run(config_file=list(config_files), **overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread_no_onednn):
    """A bundle root with the tiny dataset and a fold-0 model trained for 1 epoch by `python -m monai.bundle run`."""
    tmp = tmp_path_factory.mktemp("ms_bundle")
    write_dataset(tmp / "data")
    fragment = tiny_network(tmp / "tiny_net.yaml")
    common = {"bundle_root": str(tmp / "bundle"), "dataset_dir": str(tmp / "data"), **TINY}
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", repr([TRAIN, fragment]), *cli_args(common)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"tmp": tmp, "fragment": fragment, "common": common, "ckpt_dir": tmp / "bundle" / "models"}


@pytest.mark.slow
def test_training_writes_best_and_last_and_resumes(trained):
    ckpt = trained["ckpt_dir"]
    assert sorted(os.listdir(ckpt)) == ["checkpoint_last.pt", "model.pt"]
    last = torch.load(ckpt / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 2 and {"network", "optimizer", "checkpointer"} <= set(last)
    best = torch.load(ckpt / "model.pt", weights_only=True)
    assert best.keys() == last["network"].keys()  # a plain network state dict, no "module." prefix
    # resume: continues with epoch 2 from the last checkpoint instead of starting again
    run_inprocess([TRAIN, trained["fragment"]], **{**trained["common"], "max_epochs": 2, "resume": "true"})
    last = torch.load(ckpt / "checkpoint_last.pt", weights_only=True)
    # 4 training volumes x 4 slices, 8 slices a step: 2 steps an epoch
    assert last["trainer"]["iteration"] == 2 * 2 and last["trainer"]["max_epochs"] == 2


@pytest.mark.slow
def test_inference_writes_masks_in_the_input_grid(trained):
    out = trained["tmp"] / "bundle" / "outputs" / "fold0" / "predictions"
    run_inprocess([INFER, trained["fragment"]], **{k: v for k, v in trained["common"].items() if k != "max_epochs"})
    out = out / "testdata_website" / "test01"  # the input's folders below dataset_dir
    names = sorted(os.listdir(out))
    assert names == ["test01_01_lesion.nii.gz", "test01_02_lesion.nii.gz"]
    for t, name in enumerate(names, start=1):
        pred = nib.load(out / name)
        src = nib.load(
            trained["tmp"] / "data" / "testdata_website" / "test01" / "preprocessed" / f"test01_{t:02d}_flair_pp.nii"
        )
        assert pred.shape == src.shape == (20, 30, 18)  # smaller than the crop on two axes, larger on one
        np.testing.assert_allclose(pred.affine, src.affine)
        assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1}


@pytest.mark.slow
def test_evaluate_reports_fold_dice_summary_and_sweep(trained):
    common = {k: v for k, v in trained["common"].items() if k != "max_epochs"}
    sweep = {"gaussian": [0.0, 1.0]}
    run_inprocess([TRAIN, EVAL, trained["fragment"]], **common, noise_levels=sweep)
    # fold 1 evaluated with the fold-0 weights, only to get a second fold into the summary
    ckpt = str(trained["ckpt_dir"] / "model.pt")
    run_inprocess([TRAIN, EVAL, trained["fragment"]], **common, fold=1, checkpoint=ckpt, run_noise_sweep="false")
    outputs = trained["tmp"] / "bundle" / "outputs"
    per_fold = {}
    for fold, subject in ((0, "training01"), (1, "training02")):
        with open(outputs / f"fold{fold}" / "dice.csv") as f:
            rows = list(csv.DictReader(f))
        assert [(r["subject"], r["timepoint"]) for r in rows] == [(subject, "01"), (subject, "02"), (subject, "mean")]
        values = [float(r["dice"]) for r in rows]
        assert all(0.0 <= v <= 1.0 for v in values)
        np.testing.assert_allclose(values[2], np.mean(values[:2]), atol=1e-5)
        per_fold[fold] = values[2]
        # predictions of the held-out subject in its own grid (training02 is smaller than the crop)
        pred = nib.load(
            outputs / f"fold{fold}" / "eval_predictions" / "training" / subject / f"{subject}_01_lesion.nii.gz"
        )
        assert (
            pred.shape
            == nib.load(trained["tmp"] / "data" / "training" / subject / "masks" / f"{subject}_01_mask1.nii").shape
        )
    summary = json.loads((outputs / "fold_summary.json").read_text())
    assert summary["num_folds"] == 2
    np.testing.assert_allclose(summary["mean"], np.mean(list(per_fold.values())), atol=1e-5)
    np.testing.assert_allclose(summary["sd"], np.std(list(per_fold.values()), ddof=1), atol=1e-5)
    with open(outputs / "fold0" / "noise_sweep_hyper_mb_unet_5x5.csv") as f:
        sweep_rows = list(csv.DictReader(f))
    assert [(r["noise"], float(r["level"])) for r in sweep_rows] == [("gaussian", 0.0), ("gaussian", 1.0)]
    assert (outputs / "fold0" / "noise_sweep.png").is_file()
    # the training subjects' Dice goes to fold0/training/, never into the held-out report or the fold summary
    held_out = {p: _digest(outputs / p) for p in ("fold0/dice.csv", "fold0/metrics.csv", "fold_summary.json")}
    run_inprocess([TRAIN, EVAL, trained["fragment"]], **common, eval_on="training", run_noise_sweep="false")
    assert {p: _digest(outputs / p) for p in held_out} == held_out
    with open(outputs / "fold0" / "training" / "dice.csv") as f:
        assert {r["subject"] for r in csv.DictReader(f)} == {"training02", "training03"}


@pytest.mark.slow
def test_inference_puts_lesions_where_they_are(trained, tmp_path):
    """A hand-set network (lesion where the z-scored FLAIR > 1) through inference.yaml: the three-plane fusion and
    the undone crop and padding must put its masks on the raters' lesions, for volumes smaller and larger than
    the crop."""
    flair_threshold = torch.nn.Conv2d(4, 1, 1)
    with torch.no_grad():
        flair_threshold.weight.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0]).view(1, 4, 1, 1))
        flair_threshold.bias.fill_(-10.0)
    torch.save(flair_threshold.state_dict(), tmp_path / "threshold.pt")
    common = {k: v for k, v in trained["common"].items() if k != "max_epochs"}
    run_inprocess(
        [INFER],
        **common,
        network_def="$torch.nn.Conv2d(4, 1, 1)",
        checkpoint=str(tmp_path / "threshold.pt"),
        infer_on="labelled",
        prediction_dir=str(tmp_path / "pred"),
    )
    data = trained["tmp"] / "data" / "training"
    for subject in ("training01", "training02", "training03"):  # y: 28 < 32 (padded), all smaller, y 34 > 32 (cropped)
        for t in (1, 2):
            pred = tmp_path / "pred" / "training" / subject / f"{subject}_{t:02d}_lesion.nii.gz"
            pred = np.asarray(nib.load(pred).dataobj) > 0
            masks = [
                np.asarray(nib.load(data / subject / "masks" / f"{subject}_{t:02d}_mask{r}.nii").dataobj) > 0
                for r in (1, 2)
            ]
            inner, outer = masks[1], masks[0]  # the second rater drew the lesions smaller
            assert (pred & inner).sum() >= 0.9 * inner.sum(), (subject, t)  # found
            assert (pred & outer).sum() >= 0.9 * pred.sum(), (subject, t)  # in place


def test_ms_predictions_unique_per_input_and_never_overwrite(tmp_path):
    """Issue 24 probes: the same subject and time point in two input folders gives two files; a user's file in the
    prediction folder is refused before anything is written (replaced with overwrite); a prediction_dir inside
    dataset_dir is refused; the prediction folder is never read as data."""
    from monai.bundle import run

    from monai_hyperconv.apps.ms import find_isbi_images
    from monai_hyperconv.utils.errors import summary_line

    data = tmp_path / "data"
    _subject(data, "training01", (12, 14, 10), 1, True, 1)
    _subject(data, "training02", (12, 14, 10), 1, True, 2)
    _subject(data, "test01", (12, 14, 10), 1, False, 4, folder="site_a")
    _subject(data, "test01", (12, 14, 10), 1, False, 5, folder="site_b")  # same subject and time point
    torch.save(torch.nn.Conv2d(4, 1, 1).state_dict(), tmp_path / "conv.pt")
    pred = tmp_path / "pred"
    common = {
        "config_file": [INFER],
        "bundle_root": str(tmp_path / "bundle"),
        "dataset_dir": str(data),
        "image_size": [16, 16, 16],
        "num_workers": 0,
        "network_def": "$torch.nn.Conv2d(4, 1, 1)",
        "checkpoint": str(tmp_path / "conv.pt"),
        "prediction_dir": str(pred),
    }
    with pytest.raises(Exception) as e:
        run(**{**common, "prediction_dir": str(data / "predictions")})
    assert "prediction_dir" in summary_line(e.value) and "is inside dataset_dir" in summary_line(e.value)
    assert not (data / "predictions").exists()

    run(**common)
    written = sorted(str(p.relative_to(pred)) for p in pred.rglob("*.nii.gz"))
    assert written == ["site_a/test01/test01_01_lesion.nii.gz", "site_b/test01/test01_01_lesion.nii.gz"]
    user_file = pred / "site_b" / "test01" / "test01_01_lesion.nii.gz"
    user_file.write_bytes(b"not ours")
    os.remove(pred / "site_a" / "test01" / "test01_01_lesion.nii.gz")
    with pytest.raises(Exception) as e:
        run(**common)
    assert "test01_01_lesion.nii.gz exists and this run did not write it" in summary_line(e.value)
    assert (
        user_file.read_bytes() == b"not ours" and not (pred / "site_a" / "test01" / "test01_01_lesion.nii.gz").exists()
    )
    run(**common, overwrite=True)
    assert nib.load(user_file).shape == (12, 14, 10)

    # predictions copied under dataset_dir are never read as data
    shutil.copytree(pred, data / "old_predictions")
    for sub in ("site_a", "site_b"):
        preprocessed = data / "old_predictions" / sub / "test01" / "preprocessed"
        shutil.copytree(data / sub / "test01" / "preprocessed", preprocessed)
    assert len(find_isbi_images(data)) == 4


@pytest.mark.slow
@pytest.mark.parametrize("fold", [0, 1, 2])
def test_fold_ids_hold_out_one_subject(trained, fold):
    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update(
        {"dataset_dir": trained["common"]["dataset_dir"], "bundle_root": trained["common"]["bundle_root"], "fold": fold}
    )
    train, val = parser.get_parsed_content("fold_split")
    held_out = f"training0{fold + 1}"
    assert {e["subject"] for e in val} == {held_out} and len(val) == 2
    assert held_out not in {e["subject"] for e in train} and len(train) == 4
    # every fold trains into models/ (model.pt where the model-zoo looks); a fold's own folder is an override
    assert parser.get_parsed_content("ckpt_dir") == os.path.join(trained["common"]["bundle_root"], "models")
    assert parser.get_parsed_content("fold_dir").endswith(f"outputs/fold{fold}")


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.slow
def test_bad_inputs_name_the_file_and_keep_checkpoints(trained, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(trained["tmp"] / "data", data)
    bundle = tmp_path / "bundle"
    shutil.copytree(trained["tmp"] / "bundle" / "models", bundle / "models")
    before = {p: _digest(bundle / "models" / p) for p in ("model.pt", "checkpoint_last.pt")}
    common = {**trained["common"], "bundle_root": str(bundle), "dataset_dir": str(data), "max_epochs": 1}
    # rater masks of another shape
    bad_mask = data / "training" / "training03" / "masks" / "training03_02_mask2.nii"
    nib.save(nib.Nifti1Image(np.zeros((26, 34, 21), np.uint8), AFFINE), bad_mask)
    with pytest.raises(Exception) as err:
        run_inprocess([TRAIN, trained["fragment"]], **common)
    assert "training03_02_mask2.nii" in exception_chain_text(err.value) and "(26, 34, 21)" in exception_chain_text(
        err.value
    )
    # a missing contrast
    os.remove(data / "training" / "training01" / "preprocessed" / "training01_01_pd_pp.nii")
    with pytest.raises(Exception) as err:
        run_inprocess([TRAIN, trained["fragment"]], **common)
    assert "training01_01_pd_pp.nii" in exception_chain_text(err.value)
    # nothing written before was lost or touched
    assert before == {p: _digest(bundle / "models" / p) for p in before}


@pytest.mark.slow
def test_torchrun_two_process_gloo(tmp_path):
    """multi_gpu_train.yaml on CPU: two gloo processes, rank 0 writes the checkpoints of the unwrapped network."""
    write_dataset(tmp_path / "data")
    fragment = tiny_network(tmp_path / "tiny_net.yaml")
    common = {"bundle_root": str(tmp_path / "bundle"), "dataset_dir": str(tmp_path / "data"), **TINY, "max_epochs": 2}
    torchrun_bundle(
        [TRAIN, MULTI_GPU_FRAGMENT, os.path.join(CONFIGS, "multi_gpu_train.yaml"), fragment], cli_args(common), cwd=REPO
    )
    ckpt = tmp_path / "bundle" / "models"
    best = torch.load(ckpt / "model.pt", weights_only=True)
    assert all(not k.startswith("module.") for k in best)
    last = torch.load(ckpt / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 2 * last["trainer"]["epoch_length"]


# ---------------------------------------------------------------- issue 24, item 3: what real ISBI data gets wrong


def _ms_preprocessing(tmp_path):
    """The MS bundle's shared 3D loading chain (train.yaml ``preprocessing``) on the first time point under data/."""
    from monai.transforms import Compose

    from monai_hyperconv.apps.ms import find_isbi_images

    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({"dataset_dir": str(tmp_path / "data"), "bundle_root": str(tmp_path / "bundle")})
    entry = find_isbi_images(tmp_path / "data", labelled=True)[0]
    return lambda: Compose(parser.get_parsed_content("preprocessing"), map_items=False)(entry)


def _rewrite(path, affine=None, data=None):
    old = nib.load(path)
    array = np.asarray(old.dataobj).copy() if data is None else data  # a copy: the file is memory-mapped
    nib.save(nib.Nifti1Image(array, old.affine if affine is None else affine), path)


@pytest.mark.parametrize(
    "tag,affine,pattern",
    [
        ("mask2", AFFINE + np.pad(np.eye(3)[:, :1] * 30, ((0, 1), (3, 0))), r"origin shifted by 30 mm"),
        (
            "mask1",
            np.diag([2.25, 2.25, 2.25, 1.0]),
            r"voxel size \(2\.25, 2\.25, 2\.25\) mm vs \(1\.5, 1\.5, 1\.5\) mm",
        ),
        (
            "t2_pp",
            np.diag([2.25, 2.25, 2.25, 1.0]),
            r"voxel size \(2\.25, 2\.25, 2\.25\) mm vs \(1\.5, 1\.5, 1\.5\) mm",
        ),
    ],
)
def test_ms_files_off_the_flair_grid_are_refused(tmp_path, tag, affine, pattern):
    """A rater mask shifted 30 mm, a contrast with 1.5x voxels: same shape and orientation codes. The contrast used to
    fail inside MONAI's stacking as "truncated download or copy?"."""
    _subject(tmp_path / "data", "training01", (12, 14, 10), 1, True, 1)
    folder = "masks" if tag.startswith("mask") else "preprocessed"
    path = tmp_path / "data" / "training" / "training01" / folder / f"training01_01_{tag}.nii"
    _rewrite(path, affine=affine)
    with pytest.raises(Exception) as e:
        _ms_preprocessing(tmp_path)()
    message = exception_chain_text(e.value)
    assert re.search(
        rf"Affine mismatch: .*training01_01_{tag}\.nii does not lie on the grid of .*flair_pp\.nii: .*{pattern}",
        message,
    ), message
    assert "truncated" not in message


def test_ms_constant_contrast_and_one_slice_time_point_are_named(tmp_path):
    _subject(tmp_path / "data", "training01", (12, 14, 10), 1, True, 1)
    t2 = tmp_path / "data" / "training" / "training01" / "preprocessed" / "training01_01_t2_pp.nii"
    _rewrite(t2, data=np.zeros((12, 14, 10), np.float32))
    with pytest.raises(Exception) as e:
        _ms_preprocessing(tmp_path)()
    assert re.search(
        r"training01_01_t2_pp\.nii: 'image' \(channel 2\) holds the single value 0 everywhere",
        exception_chain_text(e.value),
    ), exception_chain_text(e.value)

    shutil.rmtree(tmp_path / "data")
    _subject(tmp_path / "data", "training01", (12, 14, 1), 1, True, 1)  # a 1-slice "volume"
    with pytest.raises(Exception) as e:
        _ms_preprocessing(tmp_path)()
    assert re.search(
        r"flair_pp\.nii: spatial shape \(12, 14, 1\) is too small for the network; expected at least \(8, 8, 8\)",
        exception_chain_text(e.value),
    ), exception_chain_text(e.value)
