"""The CS-MRI real-scan check (configs/real_scans.yaml) on a small real T1 volume, and the embedded head slices."""

import csv
import json
import os
import subprocess
import sys

import nibabel as nib
import nibabel.tests
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from monai_hyperconv.apps.csmri import (
    LoadMRISliced,
    ensure_head_slices,
    generate_head_slices,
    real_scan_items,
    summarize_by_volume,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "bundles", "csmri_recon")
CONFIGS = [os.path.join(B, "configs", f) for f in ("train.yaml", "evaluate.yaml", "real_scans.yaml")]
HEAD = os.path.join(B, "resources", "pydeface_mean_head_2mm.nii.gz")
# nibabel's own test data: a real, small (33 x 41 x 25, 2 mm) anatomical scan; no download
ANATOMICAL = os.path.join(os.path.dirname(nibabel.tests.__file__), "data", "anatomical.nii")
TINY = {
    "image_size": 32,
    "batch_size": 2,
    "cache_workers": 0,
    "network_def#channels": 4,
    "network_def#hidden_channels": [4, 4, 2],
    "real_slices_per_volume": 3,
    "noise_levels": [0.0, 0.2],
    "example_levels": [0.0, 0.2],
}


def _real_folder(tmp_path):
    """Two volumes: nibabel's anatomical scan, and the same scan resampled to anisotropic 2 x 3 mm axial voxels."""
    folder = tmp_path / "real"
    (folder / "subject_b").mkdir(parents=True)
    img = nib.load(ANATOMICAL)
    nib.save(img, folder / "anatomical.nii.gz")
    data = np.asarray(img.dataobj, dtype=np.float32)[:, ::3]  # every third row along the second axis: 6 mm there
    affine = img.affine.copy()
    affine[:3, 1] *= 3
    nib.save(nib.Nifti1Image(data, affine), folder / "subject_b" / "t1.nii.gz")
    return folder


@pytest.mark.slow
def test_real_scan_command_on_a_small_real_volume(tmp_path):
    folder = _real_folder(tmp_path)
    bundle, ckpt, out = tmp_path / "bundle", tmp_path / "models", tmp_path / "out"
    parser = ConfigParser()
    parser.read_config(CONFIGS)
    for k, v in TINY.items():
        parser[k] = v
    ckpt.mkdir()
    torch.save(parser.get_parsed_content("network_def").state_dict(), ckpt / "model.pt")
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        "[" + ",".join(f"'{c}'" for c in CONFIGS) + "]",
    ]
    args = {"bundle_root": bundle, "ckpt_dir": ckpt, "output_dir": out, "real_scans_dir": folder, **TINY}
    for k, v in args.items():
        cmd += [f"--{k}", str(v).replace(" ", "")]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # every file is test data: 3 slices of each of the 2 volumes, none of the embedded data generated
    with open(out / "test_psnr_hyper_unet_5x5_nl8.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert all(np.isfinite(float(r["psnr"])) and 0 < float(r["zero_filled_psnr"]) < 60 for r in rows)
    assert not (bundle / "data").exists()
    with open(out / "real_scans_hyper_unet_5x5_nl8.csv") as f:
        volumes = {r["volume"]: r for r in csv.DictReader(f)}
    assert set(volumes) == {"anatomical.nii.gz", "subject_b/t1.nii.gz"}
    assert all(int(r["slices"]) == 3 for r in volumes.values())
    mean = np.mean([float(r["psnr"]) for r in rows if r["image"].startswith("anatomical")])
    assert float(volumes["anatomical.nii.gz"]["psnr"]) == pytest.approx(mean, abs=1e-3)
    for png in ("test_psnr.png", "noise_sweep.png", "noise_examples_hyper_unet_5x5_nl8.png"):
        assert (out / png).stat().st_size > 0
    with open(out / "noise_sweep_zero_filled.csv") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_real_scan_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="real_scans_dir"):
        real_scan_items(None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        real_scan_items(str(tmp_path / "empty"))


def test_square_pixels_keeps_proportions(tmp_path):
    folder = _real_folder(tmp_path)
    iso = LoadMRISliced(square_pixels=True).slice_of(str(folder / "anatomical.nii.gz"), 0.5)
    aniso = LoadMRISliced(square_pixels=True).slice_of(str(folder / "subject_b" / "t1.nii.gz"), 0.5)
    raw = LoadMRISliced().slice_of(str(folder / "subject_b" / "t1.nii.gz"), 0.5)
    assert (raw.shape[-1] - 1) * 3 + 1 == aniso.shape[-1] and aniso.shape[-2] == raw.shape[-2]
    # the same physical field of view as the isotropic scan, within a pixel
    assert abs(aniso.shape[-1] - iso.shape[-1]) <= 2
    spacing = torch.linalg.norm(aniso.affine[:3, :2], dim=0)
    assert float(spacing[0]) == pytest.approx(float(spacing[1]), rel=1e-6)


def test_summarize_by_volume(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        "model,image,psnr,ssim,zero_filled_psnr,zero_filled_ssim\n"
        "m,a.nii.gz_z3,30,0.9,25,0.5\nm,a.nii.gz_z7,26,0.8,27,0.6\nm,b/c.nii.gz,20,0.5,21,0.6\n"
    )
    rows = {r["volume"]: r for r in summarize_by_volume(str(path))}
    assert rows["a.nii.gz"]["slices"] == 2 and rows["a.nii.gz"]["psnr_gain"] == pytest.approx(2.0)
    assert rows["a.nii.gz"]["min_slice_psnr_gain"] == pytest.approx(-1.0)
    assert rows["a.nii.gz"]["slices_above_zero_filled"] == 1
    assert rows["b/c.nii.gz"]["psnr_gain"] == pytest.approx(-1.0)


def test_head_slices_deterministic_varied_heads(tmp_path):
    kw = {"num_subjects": 3, "slices_per_subject": 2, "size": (200, 220), "seed": 4}
    paths = generate_head_slices(str(tmp_path / "a"), HEAD, **kw)
    again = generate_head_slices(str(tmp_path / "b"), HEAD, **kw)
    assert len(paths) == 6
    assert json.loads((tmp_path / "a" / "head_slices.json").read_text())["seed"] == 4
    images = [np.asarray(nib.load(p).dataobj) for p in paths]
    for p, q in zip(paths, again):
        np.testing.assert_array_equal(np.asarray(nib.load(p).dataobj), np.asarray(nib.load(q).dataobj))
    for img in images:
        assert img.shape == (200, 220) and img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0
        # a head in a dark (noisy) background: the border is dark, the centre is not
        assert img[:5].mean() < 0.15 and img[80:120, 90:130].mean() > 0.1
    assert not np.allclose(images[0], images[2])  # other subjects, other slices
    assert ensure_head_slices(str(tmp_path / "a"), HEAD) is False  # reused
    with pytest.raises(FileNotFoundError, match="Head template"):
        generate_head_slices(str(tmp_path / "c"), str(tmp_path / "missing.nii.gz"), **kw)


def test_find_head_template_bundle_root_then_checkout(tmp_path):
    from monai_hyperconv.apps.csmri import HEAD_TEMPLATE, find_head_template

    # a bundle_root without resources (the repository's configs run elsewhere): the checkout's bundle
    assert os.path.samefile(find_head_template(str(tmp_path)), HEAD)
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / HEAD_TEMPLATE).write_bytes(b"")
    assert find_head_template(str(tmp_path)) == str(tmp_path / "resources" / HEAD_TEMPLATE)
