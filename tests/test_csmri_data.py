"""CS-MRI data: subject grouping and split, slice loading, embedded ICBM152 slices, evaluation reports."""

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset

from monai_hyperconv.apps.csmri import (
    CSMRITestReport,
    LoadMRISliced,
    ensure_icbm152_slices,
    find_csmri_images,
    generate_icbm152_slices,
    image_name,
    load_csmri_datalist,
    plot_noise_examples,
    prepare_csmri_datalist,
    read_test_report,
    split_by_subject,
    subject_of,
)
from monai_hyperconv.transforms.kspace import PoissonUndersample


def _save(path, array, affine=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.float32), np.eye(4) if affine is None else affine), path)
    return path


@pytest.mark.parametrize(
    "relpath, subject",
    [
        ("sub-0051456/anat/sub-0051456_T1w.nii.gz", "sub-0051456"),
        ("Caltech/0051456/session_1/anat_1/mprage.nii.gz", "Caltech/0051456"),
        ("Caltech/0051457/session_1/anat_1/mprage.nii.gz", "Caltech/0051457"),
        ("case7/slice_003.nii", "case7"),
        ("slice_003.nii.gz", "slice_003"),
    ],
)
def test_subject_of_abide_bids_and_flat_layouts(relpath, subject):
    assert subject_of(relpath) == subject


def test_find_images_2d_and_3d_and_bad_dimensionality(tmp_path):
    _save(str(tmp_path / "s1" / "a.nii.gz"), np.random.rand(20, 24))
    _save(str(tmp_path / "s1" / "b.nii.gz"), np.random.rand(20, 24, 1))
    _save(str(tmp_path / "sub-02" / "anat" / "t1.nii.gz"), np.random.rand(10, 12, 14))
    (tmp_path / "notes.txt").write_text("ignored")
    items = find_csmri_images(str(tmp_path), slices_per_volume=3, slice_range=(0.2, 0.8))
    assert [it["slice"] for it in items if it["subject"] == "s1"] == [-1.0, -1.0]
    assert [it["slice"] for it in items if it["subject"] == "sub-02"] == pytest.approx([0.2, 0.5, 0.8])
    _save(str(tmp_path / "s3" / "bad.nii.gz"), np.random.rand(6, 6, 6, 2))
    with pytest.raises(ValueError, match=r"bad\.nii\.gz.*expected a 2D slice"):
        find_csmri_images(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_csmri_images(str(tmp_path / "missing"))


def test_split_by_subject_keeps_subjects_whole_and_is_seeded():
    items = [{"image": f"{s}_{k}.nii", "slice": -1.0, "subject": f"s{s}"} for s in range(14) for k in range(3)]
    split = split_by_subject(items, seed=0)
    subjects = {k: {it["subject"] for it in v} for k, v in split.items()}
    assert [len(subjects[k]) for k in ("training", "validation", "test")] == [8, 2, 4]  # 2000 / 500 / 1000
    assert not (subjects["training"] & subjects["test"]) and not (subjects["training"] & subjects["validation"])
    assert sum(len(v) for v in split.values()) == len(items)
    assert split == split_by_subject(items, seed=0)
    assert split != split_by_subject(items, seed=1)
    with pytest.raises(ValueError, match="2 subjects"):
        split_by_subject(items[:6])


def test_load_slice_of_volume_reoriented_to_ras_and_scaled(tmp_path):
    vol = np.random.default_rng(0).random((8, 10, 12)).astype(np.float32) * 1000
    # an LPS-like affine: first two axes flipped; the RAS slice k is the array slice k with both axes reversed
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    path = _save(str(tmp_path / "vol.nii.gz"), vol, affine)
    loader = LoadMRISliced()
    out = loader({"image": path, "slice": 0.5})["image"]
    k = round(0.5 * 11)
    assert out.shape == (1, 8, 10) and out.meta["patch_index"] == k
    expected = vol[::-1, ::-1, k]
    lo, hi = vol.min(), np.percentile(vol, 99.5)
    np.testing.assert_allclose(out[0].numpy(), np.clip((expected - lo) / (hi - lo), 0, 1), atol=1e-5)
    assert float(out.affine[2, 3]) == pytest.approx(2.0 * k)  # the slice's own position
    assert image_name(out.meta, root_dir=str(tmp_path)) == f"vol.nii.gz_z{k}"
    with pytest.raises(ValueError, match=r"vol\.nii\.gz is a 3D volume"):
        loader({"image": path})


def test_load_2d_slice_and_bad_files(tmp_path):
    img = np.random.default_rng(1).random((16, 20, 1)) * 5
    out = LoadMRISliced()({"image": _save(str(tmp_path / "a.nii.gz"), img)})["image"]
    assert out.shape == (1, 16, 20) and float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert out.meta["filename_or_obj"].endswith("a.nii.gz") and "patch_index" not in out.meta
    bad = img.copy()
    bad[3, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"nan\.nii\.gz.*NaN"):
        LoadMRISliced()({"image": _save(str(tmp_path / "nan.nii.gz"), bad)})
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        LoadMRISliced()({"image": str(tmp_path / "missing.nii.gz")})


def test_prepare_datalist_writes_reuses_and_checks(tmp_path):
    data = tmp_path / "data"
    for s in range(4):
        for k in range(2):
            _save(str(data / f"case{s}" / f"slice{k}.nii.gz"), np.random.rand(12, 12))
    path = str(tmp_path / "out" / "datalist.json")
    split = prepare_csmri_datalist(str(data), path, seed=0)
    assert [len(split[k]) for k in ("training", "validation", "test")] == [4, 2, 2]
    stored = json.loads(Path(path).read_text())
    assert not os.path.isabs(stored["training"][0]["image"])
    assert load_csmri_datalist(path, str(data)) == split
    # an edited JSON is reused as it is (the user's own split)
    stored["test"] = stored["test"][:1]
    Path(path).write_text(json.dumps(stored))
    assert len(prepare_csmri_datalist(str(data), path)["test"]) == 1
    os.remove(os.path.join(str(data), stored["test"][0]["image"]))
    with pytest.raises(FileNotFoundError, match="slice"):
        prepare_csmri_datalist(str(data), path)
    Path(path).write_text(json.dumps({"training": []}))
    with pytest.raises(ValueError, match="lacks the lists"):
        load_csmri_datalist(path, str(data))


def test_empty_or_foreign_dataset_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="No T1 NIfTI file"):
        prepare_csmri_datalist(str(empty), None, synthetic=None)
    (empty / "readme.txt").write_text("not data")
    with pytest.raises(FileNotFoundError, match="holds no .nii"):
        ensure_icbm152_slices(str(empty))


def test_generate_icbm152_slices_deterministic_distinct_subjects(tmp_path):
    kw = {"num_subjects": 3, "slices_per_subject": 2, "seed": 5}
    paths = generate_icbm152_slices(str(tmp_path / "a"), **kw)
    assert len(paths) == 6 and all(os.path.isfile(p) for p in paths)
    assert json.loads(Path(tmp_path / "a" / "icbm152_slices.json").read_text())["seed"] == 5
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary folder left
    arrays = [np.asarray(nib.load(p).dataobj) for p in paths]
    assert all(a.shape == (197, 233) and a.min() >= 0 and a.max() <= 1 for a in arrays)
    # a brain in the middle: bright tissue in the centre, background at the border
    assert all(a[80:120, 90:140].mean() > 0.3 and a[:5].max() == 0 for a in arrays)
    again = generate_icbm152_slices(str(tmp_path / "b"), **kw)
    assert [os.path.relpath(p, tmp_path / "b") for p in again] == [os.path.relpath(p, tmp_path / "a") for p in paths]
    np.testing.assert_array_equal(np.asarray(nib.load(again[0]).dataobj), arrays[0])
    # subjects differ (deformation, contrast), even at a close slice position
    assert not np.allclose(arrays[0], arrays[2])
    # present data are reused, not regenerated
    assert ensure_icbm152_slices(str(tmp_path / "a")) is False


def _tiny_loader(n=3, size=32):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        y, x = np.mgrid[:size, :size]
        label = ((x - 16) ** 2 / 100 + (y - 16) ** 2 / 60 < 1).astype(np.float32) * rng.uniform(0.5, 1.0)
        label = torch.from_numpy(label)[None]
        items.append({"image": PoissonUndersample()(label), "label": label})
    return DataLoader(Dataset(items), batch_size=2), items


def test_test_report_and_plots_with_identity_network(tmp_path):
    loader, items = _tiny_loader()
    report = CSMRITestReport(torch.nn.Identity(), loader, str(tmp_path), model_name="identity")
    rows = report.run()
    assert len(rows) == 3
    stored = read_test_report(report.csv_path)
    # the identity network returns its zero-filled input: same PSNR and SSIM as the input
    assert all(r["psnr"] == pytest.approx(r["zero_filled_psnr"]) for r in stored)
    assert all(r["ssim"] == pytest.approx(r["zero_filled_ssim"]) for r in stored)
    perfect = CSMRITestReport(_Oracle(loader), loader, str(tmp_path), model_name="oracle")
    assert all(r[2] > 100 for r in perfect.run())  # the exact target: (near) infinite PSNR
    assert os.path.getsize(report.png_path) > 0
    png = plot_noise_examples(torch.nn.Identity(), items, [0.0, 0.1], str(tmp_path / "ex.png"), model_name="identity")
    assert os.path.getsize(png) > 0


class _Oracle(torch.nn.Module):
    """Returns the targets of the loader in order (a perfect reconstruction)."""

    def __init__(self, loader):
        super().__init__()
        self.targets = iter([b["label"] for b in loader])

    def forward(self, x):
        return next(self.targets) + 1e-7


def test_load_weights_model_and_last_checkpoint_and_errors(tmp_path):
    from monai_hyperconv.handlers import load_network_weights as load_weights

    net = torch.nn.Conv2d(1, 1, 3)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    torch.save({"network": net.state_dict(), "optimizer": {}}, tmp_path / "last.pt")
    for name in ("model.pt", "last.pt"):
        other = torch.nn.Conv2d(1, 1, 3)
        load_weights(other, str(tmp_path / name))
        torch.testing.assert_close(other.weight, net.weight)
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_weights(net, str(tmp_path / "nothing.pt"))
    with pytest.raises(RuntimeError, match=r"model\.pt does not fit"):
        load_weights(torch.nn.Conv2d(1, 2, 3), str(tmp_path / "model.pt"))


# ---------------------------------------------------------------- issue 24, item 3: what real T1 data gets wrong


def test_a_4d_series_is_refused_not_read_as_slices(tmp_path):
    """(X, Y, 1, T): the old shape logic dropped the singleton and read the T frames as the slices of a volume."""
    from monai_hyperconv.apps.csmri import LoadMRISliced, find_csmri_images

    series = np.random.default_rng(0).random((16, 16, 1, 5)).astype(np.float32)
    nib.save(nib.Nifti1Image(series, np.eye(4)), tmp_path / "t1_series.nii.gz")
    with pytest.raises(
        ValueError, match=r"t1_series\.nii\.gz: shape \(16, 16, 1, 5\); expected a 2D slice .* not a series"
    ):
        find_csmri_images(str(tmp_path))
    with pytest.raises(ValueError, match=r"t1_series\.nii\.gz: shape \(16, 16, 1, 5\)"):
        LoadMRISliced()({"image": str(tmp_path / "t1_series.nii.gz"), "slice": 0.5})


def test_a_complex_t1_is_refused_where_it_is_found_and_loaded(tmp_path):
    from monai_hyperconv.apps.csmri import LoadMRISliced, find_csmri_images

    t1 = (np.ones((16, 16)) + 1j * np.eye(16)).astype(np.complex64)
    nib.save(nib.Nifti1Image(t1, np.eye(4)), tmp_path / "t1.nii")
    with pytest.raises(ValueError, match=r"t1\.nii: complex-valued voxels \(complex64\)"):
        find_csmri_images(str(tmp_path))
    with pytest.raises(ValueError, match=r"t1\.nii: complex-valued voxels \(complex64\)"):
        LoadMRISliced()({"image": str(tmp_path / "t1.nii"), "slice": -1.0})


def test_an_all_zero_test_slice_is_refused_not_reported_as_psnr_inf(tmp_path):
    """A zero target made the report say "zero-filled PSNR inf"; a blank slice of a volume is named with its index."""
    from monai_hyperconv.apps.csmri import LoadMRISliced

    nib.save(nib.Nifti1Image(np.zeros((16, 16), np.float32), np.eye(4)), tmp_path / "blank.nii")
    with pytest.raises(ValueError, match=r"blank\.nii: 'image' \(channel 0\) holds the single value 0 everywhere"):
        LoadMRISliced()({"image": str(tmp_path / "blank.nii"), "slice": -1.0})
    volume = np.zeros((16, 16, 10), np.float32)
    volume[4:12, 4:12, 5:] = 1.0  # the head starts at slice 5
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "head.nii")
    with pytest.raises(
        ValueError, match=r"head\.nii \(axial slice 2\): 'image' \(channel 0\) holds the single value 0"
    ):
        LoadMRISliced()({"image": str(tmp_path / "head.nii"), "slice": 0.2})
    assert LoadMRISliced()({"image": str(tmp_path / "head.nii"), "slice": 0.7})["image"].shape == (1, 16, 16)
