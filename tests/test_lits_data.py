"""LiTS datalists, the paper's split, the embedded synthetic CT generator and the bundle's volume preprocessing."""

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose

from monai_hyperconv.apps.liver import (
    LITS_SPLIT,
    ensure_synthetic_lits,
    find_lits_pairs,
    generate_synthetic_lits,
    lits_inference_files,
    prepare_lits_datalist,
    split_counts,
    split_lits,
    synthetic_ct,
)
from monai_hyperconv.data import VolumeSliceDataset

TRAIN_YAML = os.path.join(os.path.dirname(__file__), "..", "bundles", "liver_lesion_seg", "configs", "train.yaml")


def write_lits_pair(folder, n, image, label, affine, ext=".nii"):
    """Write volume-n / segmentation-n as LiTS does (int16 HU, uint8 labels)."""
    os.makedirs(folder, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(image, np.int16), affine), os.path.join(folder, f"volume-{n}{ext}"))
    nib.save(nib.Nifti1Image(np.asarray(label, np.uint8), affine), os.path.join(folder, f"segmentation-{n}{ext}"))


def phantom(shape=(24, 20, 6), seed=0):
    """An asymmetric HU volume and a label with liver and a corner tumour."""
    rng = np.random.default_rng(seed)
    image = rng.integers(-300, 400, size=shape).astype(np.int16)
    label = np.zeros(shape, np.uint8)
    label[4:16, 3:12, 1:5] = 1
    label[5:8, 4:6, 2:4] = 2
    return image, label


def volume_transforms(image_size):
    parser = ConfigParser()
    parser.read_config(TRAIN_YAML)
    parser["image_size"] = image_size
    return Compose(parser.get_parsed_content("volume_transforms"))


def test_split_counts_paper_proportions():
    assert split_counts(131) == list(LITS_SPLIT)
    for n in range(3, 40):
        counts = split_counts(n)
        assert sum(counts) == n and min(counts) >= 1
        assert counts[0] >= counts[1]  # training always the largest part
    with pytest.raises(ValueError, match="at least 3 volumes"):
        split_counts(2)


def test_split_is_seeded_disjoint_and_complete():
    pairs = [{"image": f"volume-{i}.nii", "label": f"segmentation-{i}.nii"} for i in range(12)]
    a, b, c = split_lits(pairs, seed=0), split_lits(pairs, seed=0), split_lits(pairs, seed=1)
    assert a == b and a != c
    names = [p["image"] for k in ("training", "validation", "test") for p in a[k]]
    assert sorted(names) == sorted(p["image"] for p in pairs)
    assert [len(a[k]) for k in ("training", "validation", "test")] == split_counts(12)


def test_find_pairs_layout_and_missing_segmentation(tmp_path):
    img, lab = phantom()
    for n, ext in ((2, ".nii"), (10, ".nii.gz"), (1, ".nii")):
        write_lits_pair(tmp_path, n, img, lab, np.eye(4), ext)
    (tmp_path / "notes.txt").write_text("not a volume")
    pairs = find_lits_pairs(str(tmp_path))
    assert [os.path.basename(p["image"]) for p in pairs] == ["volume-1.nii", "volume-2.nii", "volume-10.nii.gz"]
    assert pairs[2]["label"].endswith("segmentation-10.nii.gz")
    os.remove(tmp_path / "segmentation-2.nii")
    with pytest.raises(FileNotFoundError, match=r"volume-2\.nii has no segmentation.*segmentation-2\.nii"):
        find_lits_pairs(str(tmp_path))


def test_datalist_written_reused_and_overridable(tmp_path):
    data = tmp_path / "lits"
    img, lab = phantom()
    for n in range(5):
        write_lits_pair(data, n, img, lab, np.eye(4))
    dl_file = str(tmp_path / "out" / "datalist.json")
    first = prepare_lits_datalist(str(data), dl_file, seed=3, synthetic=None)
    saved = json.loads(Path(dl_file).read_text())
    assert saved["test"][0]["image"] == os.path.basename(first["test"][0]["image"])  # relative to dataset_dir
    assert [len(first[k]) for k in ("training", "validation", "test")] == [3, 1, 1]
    # a user-given datalist overrides the split
    custom = {
        "training": [{"image": "volume-4.nii", "label": "segmentation-4.nii"}],
        "validation": [{"image": "volume-3.nii", "label": "segmentation-3.nii"}],
        "test": [{"image": "volume-0.nii", "label": "segmentation-0.nii"}],
    }
    Path(dl_file).write_text(json.dumps(custom))
    again = prepare_lits_datalist(str(data), dl_file, seed=3, synthetic=None)
    assert again["training"][0]["image"] == str(data / "volume-4.nii")
    assert lits_inference_files(None, dataset_dir=str(data), datalist_file=dl_file) == [
        {"image": str(data / "volume-0.nii")}
    ]
    assert [os.path.basename(f["image"]) for f in lits_inference_files(str(data))] == [
        f"volume-{n}.nii" for n in range(5)
    ]
    # a listed file that does not exist is named
    custom["test"][0]["image"] = "volume-99.nii"
    Path(dl_file).write_text(json.dumps(custom))
    with pytest.raises(FileNotFoundError, match="volume-99.nii"):
        prepare_lits_datalist(str(data), dl_file, synthetic=None)
    with pytest.raises(FileNotFoundError, match="No LiTS volumes"):
        prepare_lits_datalist(str(tmp_path / "out"), None, synthetic=None)


def test_two_orientations_preprocess_identically(tmp_path):
    """The same physical volume stored in LiTS orientation and in a permuted/flipped one gives the same slices."""
    img, lab = phantom()
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    affine[:3, 3] = [100.0, 90.0, -20.0]
    write_lits_pair(tmp_path / "a", 0, img, lab, affine)
    ref = nib.Nifti1Image(img, affine)
    ornt = nib.orientations.axcodes2ornt(("S", "A", "L"))  # slices first, rows flipped
    transform = nib.orientations.ornt_transform(nib.orientations.io_orientation(affine), ornt)
    img_b = ref.as_reoriented(transform)
    lab_b = nib.Nifti1Image(lab, affine).as_reoriented(transform)
    assert img_b.shape == (6, 20, 24)
    write_lits_pair(tmp_path / "b", 0, np.asarray(img_b.dataobj), np.asarray(lab_b.dataobj), img_b.affine, ".nii.gz")

    pre = volume_transforms(image_size=16)
    out = [
        pre({"image": str(tmp_path / d / f"volume-0{e}"), "label": str(tmp_path / d / f"segmentation-0{e}")})
        for d, e in (("a", ".nii"), ("b", ".nii.gz"))
    ]
    for o in out:
        assert o["image"].shape == (1, 16, 16, 6)  # axial slices on the last axis, resized in plane
        assert o["image"].dtype == torch.float16 and o["label"].dtype == torch.uint8
        assert 0.0 <= float(o["image"].min()) and float(o["image"].max()) <= 1.0  # HU window [-100, 250] -> [0, 1]
        assert set(torch.unique(o["label"]).tolist()) == {0, 1}  # tumour mask only (liver is background)
    assert torch.equal(out[0]["image"].as_tensor(), out[1]["image"].as_tensor())
    assert torch.equal(out[0]["label"].as_tensor(), out[1]["label"].as_tensor())
    # the tumour lies in the slices where it was written (k = 2, 3 of 6, z increasing in both files)
    assert out[0]["label"][0].sum(dim=(0, 1)).nonzero().flatten().tolist() == [2, 3]


def test_volume_slice_dataset_indexes_every_slice():
    vols = [
        {
            "image": torch.arange(2 * 3 * 4 * n, dtype=torch.float32).reshape(1, 3, 4, 2 * n),
            "label": torch.zeros(1, 3, 4, 2 * n),
            "other": 1,
        }
        for n in (1, 3)
    ]
    ds = VolumeSliceDataset(vols)
    assert len(ds) == 2 + 6
    item = ds[5]  # volume 1, slice 3
    assert (item["volume"], item["slice"]) == (1, 3)
    assert torch.equal(item["image"], vols[1]["image"][..., 3]) and "other" not in item
    flipped = VolumeSliceDataset(vols, transform=lambda d: {**d, "image": d["image"].flip(-1)})
    assert torch.equal(flipped[0]["image"], vols[0]["image"][..., 0].flip(-1))
    with pytest.raises(ValueError, match="different spatial shapes"):
        VolumeSliceDataset([{"image": torch.zeros(1, 3, 4, 2), "label": torch.zeros(1, 3, 5, 2)}])


def test_volume_slice_dataset_preprocesses_each_datalist_volume_once():
    """data + volume_transform (the model-zoo's ``train#dataset#data``): each entry is preprocessed once, cached,
    and served slice by slice like ready volumes."""
    calls = []

    def load(entry):
        calls.append(entry["n"])
        n = entry["n"]
        return {
            "image": torch.arange(12 * n, dtype=torch.float32).reshape(1, 2, 3, 2 * n),
            "label": torch.ones(1, 2, 3, 2 * n),
        }

    datalist = [{"n": 1}, {"n": 2}]
    ds = VolumeSliceDataset(datalist, volume_transform=load, transform=lambda d: {**d, "image": -d["image"]})
    assert len(ds) == 2 + 4
    for _ in range(2):  # a second epoch reads the cache
        items = [ds[i] for i in range(len(ds))]
    assert sorted(calls) == [1, 2]
    ready = VolumeSliceDataset([load(e) for e in datalist])
    for i, item in enumerate(items):
        assert torch.equal(item["image"], -ready[i]["image"]) and (item["volume"], item["slice"]) == (
            ready[i]["volume"],
            ready[i]["slice"],
        )


def test_synthetic_ct_is_lits_like_and_deterministic(tmp_path):
    kwargs = {"num_volumes": 2, "size": 64, "num_slices": (10, 14), "seed": 7}
    pairs = generate_synthetic_lits(str(tmp_path / "a"), **kwargs)
    generate_synthetic_lits(str(tmp_path / "b"), **kwargs)
    assert sorted(os.listdir(tmp_path / "a")) == [
        "segmentation-0.nii",
        "segmentation-1.nii",
        "volume-0.nii",
        "volume-1.nii",
    ]
    for p in pairs:
        img, seg = nib.load(p["image"]), nib.load(p["label"])
        a, s = np.asarray(img.dataobj), np.asarray(seg.dataobj)
        assert img.get_data_dtype() == np.int16 and a.shape[:2] == (64, 64) and 10 <= a.shape[2] <= 14
        assert np.allclose(img.affine, seg.affine) and a.shape == s.shape
        spacing = nib.affines.voxel_sizes(img.affine)
        assert 340 <= spacing[0] * 64 <= 420 and 0.8 <= spacing[2] <= 5.0  # realistic field of view and slices
        assert set(np.unique(s).tolist()) == {0, 1, 2}
        assert a.min() >= -1024 and (a[s == 0] < -900).mean() > 0.1  # air around the body
        liver = a[s == 1].astype(float)
        assert 40 < liver.mean() < 90
        # hypo- and hyper-dense lesions: far from the liver value, farther than the liver's own noise
        contrast = np.abs(a[s == 2] - np.median(liver)).mean()
        assert contrast > 25 and contrast > 1.5 * np.abs(liver - np.median(liver)).mean()
        assert (s == 2).any(axis=(0, 1)).mean() >= 0.3  # lesion slices are frequent
        b = str(p["image"]).replace(os.sep + "a" + os.sep, os.sep + "b" + os.sep)
        assert np.array_equal(a, np.asarray(nib.load(b).dataobj))
    other = synthetic_ct.synthetic_ct_volume(np.random.default_rng([8, 0]), 64, 10)[0]
    assert not np.array_equal(other, np.asarray(nib.load(pairs[0]["image"]).dataobj)[..., :10])


def test_ensure_synthetic_generates_once_atomically(tmp_path, monkeypatch):
    target = tmp_path / "data" / "lits"
    kwargs = {"num_volumes": 3, "size": 32, "num_slices": (4, 5), "seed": 0}
    assert ensure_synthetic_lits(str(target), **kwargs) is True
    assert len(find_lits_pairs(str(target))) == 3 and (target / synthetic_ct.MARKER_FILENAME).exists()
    stamp = os.path.getmtime(target / "volume-0.nii")
    assert ensure_synthetic_lits(str(target), **kwargs) is False  # reused
    assert os.path.getmtime(target / "volume-0.nii") == stamp
    assert os.listdir(tmp_path / "data") == ["lits"]  # no temporary folder left

    # an interrupted generation leaves neither a dataset nor a temporary folder
    def broken(out_dir, **kw):
        generate_synthetic_lits(out_dir, num_volumes=1, size=32, num_slices=(4, 4))
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic_ct, "generate_synthetic_lits", broken)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_lits(str(tmp_path / "other" / "lits"), **kwargs)
    assert os.listdir(tmp_path / "other") == []
    # an existing folder with other files (no volumes) gets the pairs moved in
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "README").write_text("x")
    monkeypatch.undo()
    ensure_synthetic_lits(str(tmp_path / "mixed"), **kwargs)
    assert len(find_lits_pairs(str(tmp_path / "mixed"))) == 3


def test_datalist_of_another_folder_is_not_reused(tmp_path, caplog):
    """The bundle's default datalist lives in output_dir: pointing dataset_dir at other data must split that data."""
    img, lab = phantom()
    for n in range(4):
        write_lits_pair(tmp_path / "small", n, img, lab, np.eye(4))
    for n in range(8):
        write_lits_pair(tmp_path / "large", n, img, lab, np.eye(4))
    dl_file = str(tmp_path / "out" / "datalist.json")
    prepare_lits_datalist(str(tmp_path / "small"), dl_file, synthetic=None)
    large = prepare_lits_datalist(str(tmp_path / "large"), dl_file, synthetic=None)
    assert sum(len(large[k]) for k in ("training", "validation", "test")) == 8
    assert all(item["image"].startswith(str(tmp_path / "large")) for k in large for item in large[k])
    assert "splitting it and replacing" in caplog.text
    assert json.loads(Path(dl_file).read_text())["source"]["dataset_dir"] == os.path.realpath(tmp_path / "large")
    # the same items elsewhere (a moved or copied dataset): the split is reused
    shutil.copytree(tmp_path / "large", tmp_path / "copy")
    assert prepare_lits_datalist(str(tmp_path / "copy"), dl_file, synthetic=None)["test"][0]["image"] == large["test"][
        0
    ]["image"].replace(str(tmp_path / "large"), str(tmp_path / "copy"))


def test_datalist_of_a_changed_folder_is_an_error(tmp_path):
    """A new split of a changed folder could move training volumes into the test set: refuse and say why."""
    img, lab = phantom()
    for n in range(5):
        write_lits_pair(tmp_path / "lits", n, img, lab, np.eye(4))
    dl_file = str(tmp_path / "datalist.json")
    prepare_lits_datalist(str(tmp_path / "lits"), dl_file, synthetic=None)
    write_lits_pair(tmp_path / "lits", 5, img, lab, np.eye(4))
    with pytest.raises(ValueError, match=r"datalist.json.*volume-5.nii"):
        prepare_lits_datalist(str(tmp_path / "lits"), dl_file, synthetic=None)
    for name in ("volume-2.nii", "segmentation-2.nii", "volume-5.nii", "segmentation-5.nii"):
        os.remove(tmp_path / "lits" / name)
    with pytest.raises(FileNotFoundError, match=r"datalist.json.*volume-2.nii"):
        prepare_lits_datalist(str(tmp_path / "lits"), dl_file, synthetic=None)


def test_reused_synthetic_data_warns_about_other_generator_arguments(tmp_path, caplog):
    kw = {"num_volumes": 3, "size": 32, "num_slices": [3, 4], "seed": 0}
    assert synthetic_ct.ensure_synthetic_lits(str(tmp_path / "lits"), **kw)
    assert not synthetic_ct.ensure_synthetic_lits(str(tmp_path / "lits"), **kw)
    assert "other arguments" not in caplog.text
    assert not synthetic_ct.ensure_synthetic_lits(str(tmp_path / "lits"), **{**kw, "num_volumes": 8})
    assert "'num_volumes': (3, 8)" in caplog.text and "delete the folder" in caplog.text


def test_too_few_volumes_to_split_names_the_folder(tmp_path):
    img, lab = phantom()
    for n in range(2):
        write_lits_pair(tmp_path / "lits", n, img, lab, np.eye(4))
    with pytest.raises(ValueError, match=r"LiTS dataset folder .*lits'.*Need at least 3 volumes .* found 2"):
        prepare_lits_datalist(str(tmp_path / "lits"), None, synthetic=None)
