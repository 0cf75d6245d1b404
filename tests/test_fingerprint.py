"""Run fingerprints: digests that change with what they digest and not with how it was stored, and one epoch of the
liver bundle fingerprinted twice on one machine gives the same digests at every stage."""

import os

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_hyperconv.analysis.fingerprint import array_digest, folder_digests, run_fingerprint, state_digest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONFIGS = os.path.join(REPO, "bundles", "liver_lesion_seg", "configs")


def test_state_digest_follows_every_weight():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    before = state_digest(net)
    assert state_digest(net) == before
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] += 1e-7
    assert state_digest(net) != before
    net[1].running_mean += 1  # buffers count too
    assert len({before, state_digest(net)}) == 2


def test_array_digest_sees_dtype_shape_and_values():
    a = np.arange(6, dtype=np.float32)
    assert array_digest(a) == array_digest(torch.arange(6, dtype=torch.float32))
    assert len({array_digest(a), array_digest(a.reshape(2, 3)), array_digest(a.astype(np.float64))}) == 3


def test_folder_digests_read_decoded_images_not_gzip_bytes(tmp_path):
    data = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    for name in ("a", "b"):
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / f"{name}.nii.gz"))
        os.utime(tmp_path / f"{name}.nii.gz", (0, 0))
    (tmp_path / "notes.txt").write_text("not an image")
    digests = folder_digests(str(tmp_path))
    assert list(digests) == ["a.nii.gz", "b.nii.gz"] and digests["a.nii.gz"] == digests["b.nii.gz"]


@pytest.mark.slow
def test_one_epoch_twice_gives_the_same_digests(tmp_path):
    tiny = {
        "bundle_root": os.path.dirname(CONFIGS),
        "dataset_dir": str(tmp_path / "lits"),
        "synthetic": {"num_volumes": 4, "size": 48, "num_slices": [5, 6], "seed": 0},
        "image_size": 32,
        "batch_size": 4,
        "num_workers": 0,
        "cache_workers": 2,
        "network_def#channels": 4,
    }
    configs = [os.path.join(CONFIGS, "train.yaml")]
    runs = [run_fingerprint(configs, output_file=str(tmp_path / f"run{i}.json"), **tiny) for i in range(2)]
    assert runs[0]["data"]["files"] == 8 and len(runs[0]["iterations"]) == 3
    assert all("image" in it and "label" in it for it in runs[0]["iterations"])
    for key in ("data", "initial_weights", "iterations", "epoch1_weights", "epoch1_metrics"):
        assert runs[0][key] == runs[1][key], key
    assert os.path.isfile(tmp_path / "run1.json")
