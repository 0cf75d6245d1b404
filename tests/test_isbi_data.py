"""ISBI 2015 layout datalist, gold standard, folds, MS transforms, the three-plane inferer and the phantoms."""

import os

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import exception_chain_text
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from monai_hyperconv.apps.ms import (
    CheckISBIFilesd,
    GoldStandardd,
    OrthogonalPlaneInferer,
    OrthogonalSliced,
    RandOrthogonalSliced,
    pad_to_square,
)
from monai_hyperconv.apps.ms.isbi import (
    ISBI_CONTRASTS,
    find_isbi_images,
    gold_standard,
    isbi_fold,
    isbi_has_data,
    labelled_subjects,
)
from monai_hyperconv.apps.ms.phantoms import ensure_ms_dataset, lesion_map, make_phantom_subject


def write_subject(root, name, timepoints=2, labelled=True, shape=(12, 14, 10), seed=0, ext=".nii", folder="training"):
    """Tiny ISBI-layout subject: random contrasts (distinct per contrast), masks with a known overlap."""
    rng = np.random.default_rng(seed)
    base = os.path.join(root, folder, name)
    os.makedirs(os.path.join(base, "preprocessed"), exist_ok=True)
    os.makedirs(os.path.join(base, "masks"), exist_ok=True)
    for t in range(1, timepoints + 1):
        for c, contrast in enumerate(ISBI_CONTRASTS):
            data = (rng.random(shape) + 10 * c).astype(np.float32)
            nib.save(
                nib.Nifti1Image(data, np.eye(4)),
                os.path.join(base, "preprocessed", f"{name}_{t:02d}_{contrast}_pp{ext}"),
            )
        if labelled:
            for r in (1, 2):
                mask = (rng.random(shape) > 0.7).astype(np.uint8)
                nib.save(nib.Nifti1Image(mask, np.eye(4)), os.path.join(base, "masks", f"{name}_{t:02d}_mask{r}{ext}"))


def test_datalist_order_labels_and_test_subjects(tmp_path):
    write_subject(tmp_path, "training02", 2)
    write_subject(tmp_path, "training01", 3, ext=".nii.gz")
    write_subject(tmp_path, "test01", 2, labelled=False, folder="testdata_website")
    assert isbi_has_data(tmp_path) and not isbi_has_data(tmp_path / "nothing")
    entries = find_isbi_images(tmp_path)
    assert [(e["subject"], e["timepoint"]) for e in entries] == [
        ("test01", "01"),
        ("test01", "02"),
        ("training01", "01"),
        ("training01", "02"),
        ("training01", "03"),
        ("training02", "01"),
        ("training02", "02"),
    ]
    # channel order FLAIR, PD, T2, T1 (MPRAGE)
    assert [os.path.basename(p) for p in entries[2]["image"]] == [
        f"training01_01_{c}_pp.nii.gz" for c in ("flair", "pd", "t2", "mprage")
    ]
    assert entries[2]["mask2"].endswith("training01_01_mask2.nii.gz")
    assert "mask1" not in entries[0]
    assert len(find_isbi_images(tmp_path, labelled=True)) == 5
    assert len(find_isbi_images(tmp_path, labelled=False)) == 2
    assert labelled_subjects(entries) == ["training01", "training02"]


def test_missing_contrast_or_rater_is_named(tmp_path):
    write_subject(tmp_path, "training01", 1)
    os.remove(tmp_path / "training/training01/preprocessed/training01_01_t2_pp.nii")
    with pytest.raises(FileNotFoundError, match="training01_01_t2_pp.nii"):
        find_isbi_images(tmp_path)
    write_subject(tmp_path, "training01", 1)
    os.remove(tmp_path / "training/training01/masks/training01_01_mask2.nii")
    with pytest.raises(FileNotFoundError, match="training01_01_mask2.nii"):
        find_isbi_images(tmp_path)


def test_folds_hold_out_one_subject(tmp_path):
    for i in range(3):
        write_subject(tmp_path, f"training0{i + 1}", timepoints=i + 1, seed=i)
    write_subject(tmp_path, "test01", 1, labelled=False, folder="testdata_website")
    entries = find_isbi_images(tmp_path)
    seen = []
    for fold in range(3):
        train, val = isbi_fold(entries, fold)
        assert {e["subject"] for e in val} == {f"training0{fold + 1}"} and len(val) == fold + 1
        assert {e["subject"] for e in train} == {f"training0{i + 1}" for i in range(3)} - {f"training0{fold + 1}"}
        assert all("mask1" in e for e in train + val)  # the unlabelled test subject is in no fold
        seen += [e["subject"] for e in val]
    assert sorted(set(seen)) == labelled_subjects(entries)
    with pytest.raises(ValueError, match="0..2"):
        isbi_fold(entries, 3)
    with pytest.raises(ValueError, match="at least 2"):
        isbi_fold([e for e in entries if e["subject"] in ("training01", "test01")], 0)


def test_gold_standard_is_the_intersection(tmp_path):
    m1 = np.array([[0, 1, 1], [1, 0, 1]])
    m2 = np.array([[1, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(gold_standard(m1, m2), [[0, 1, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match="a.nii.*b.nii"):
        gold_standard(m1, m2[:, :2], "a.nii", "b.nii")
    # through the loading chain on files
    write_subject(tmp_path, "training01", 1)
    entry = find_isbi_images(tmp_path)[0]
    load = Compose(
        [
            CheckISBIFilesd(),
            LoadImaged(["image", "mask1", "mask2"]),
            EnsureChannelFirstd(["image", "mask1", "mask2"]),
            GoldStandardd(),
        ]
    )
    d = load(entry)
    assert d["image"].shape == (4, 12, 14, 10) and "mask1" not in d
    m1, m2 = (np.asarray(nib.load(entry[k]).dataobj) for k in ("mask1", "mask2"))
    np.testing.assert_array_equal(d["label"][0].numpy(), m1 & m2)
    assert 0 < d["label"].sum() < min(m1.sum(), m2.sum())
    # channel c of the image is the c-th contrast of ISBI_CONTRASTS (values 10 c + [0, 1))
    assert [int(d["image"][c].min()) // 10 for c in range(4)] == [0, 1, 2, 3]


def test_bad_rater_masks_are_named(tmp_path):
    write_subject(tmp_path, "training01", 1)
    entry = find_isbi_images(tmp_path)[0]
    nib.save(nib.Nifti1Image(np.zeros((12, 14, 9), np.uint8), np.eye(4)), entry["mask2"])
    with pytest.raises(ValueError, match=r"training01_01_mask2.nii.*\(12, 14, 9\)"):
        CheckISBIFilesd()(entry)
    # the transform after loading also refuses it, naming the file
    load = Compose(
        [LoadImaged(["image", "mask1", "mask2"]), EnsureChannelFirstd(["image", "mask1", "mask2"]), GoldStandardd()]
    )
    with pytest.raises(Exception) as err:
        load(entry)
    assert "training01_01_mask2.nii" in exception_chain_text(err.value) and "12, 14, 9" in exception_chain_text(
        err.value
    )
    nib.save(nib.Nifti1Image(np.full((12, 14, 10), 2, np.uint8), np.eye(4)), entry["mask2"])
    with pytest.raises(Exception) as err:
        load(entry)
    assert "training01_01_mask2.nii: rater mask holds values [0, 2]" in exception_chain_text(err.value) or (
        "training01_01_mask2.nii" in exception_chain_text(err.value) and "binary" in exception_chain_text(err.value)
    )


def _volume():
    g = torch.Generator().manual_seed(0)
    image = torch.zeros(2, 10, 13, 8)
    image[:, 2:8, 3:11, 1:7] = torch.rand(2, 6, 8, 6, generator=g) + 0.1  # "brain" away from the borders
    label = torch.zeros(1, 10, 13, 8)
    label[0, 4, 5, 3] = label[0, 5, 5, 3] = 1
    return {"image": image, "label": label}


def test_random_slices_are_square_seeded_and_positive():
    d = _volume()
    sampler = RandOrthogonalSliced(num_samples=12, pos_fraction=1.0, slice_size=16)
    sampler.set_random_state(3)
    samples = sampler(d)
    assert len(samples) == 12 and {s["plane"] for s in samples} == {0, 1, 2}
    for s in samples:
        assert s["image"].shape == (2, 16, 16) and s["label"].shape == (1, 16, 16)
        assert s["label"].sum() > 0  # every slice goes through the lesion
        expected = pad_to_square(d["image"].select(1 + s["plane"], s["slice_index"]), 16)
        torch.testing.assert_close(s["image"], expected)
    again = RandOrthogonalSliced(num_samples=12, pos_fraction=1.0, slice_size=16).set_random_state(3)(d)
    assert [(s["plane"], s["slice_index"]) for s in again] == [(s["plane"], s["slice_index"]) for s in samples]
    negatives = RandOrthogonalSliced(num_samples=30, pos_fraction=0.0).set_random_state(0)(d)
    assert all(s["image"].abs().sum() > 0 for s in negatives)  # brain slices only
    assert negatives[0]["image"].shape[-1] == 13  # default slice_size: the largest in-plane size


def test_validation_slices_cover_the_brain():
    d = _volume()
    samples = OrthogonalSliced(stride=1)(d)
    # brain occupies 6, 8 and 6 slices along the three axes
    assert [sum(s["plane"] == p for s in samples) for p in range(3)] == [6, 8, 6]
    assert len(OrthogonalSliced(stride=2)(d)) == 3 + 4 + 3


@pytest.mark.parametrize("slice_size", [None, 24])
def test_plane_fusion_puts_every_slice_back(slice_size):
    volume = torch.rand(2, 3, 10, 13, 8)

    for planes in ((0,), (1,), (2,), (0, 1, 2)):
        in_plane = [s for p in planes for a, s in enumerate((10, 13, 8)) if a != p]

        def first_channel(
            x, in_plane=in_plane
        ):  # a "network" returning its input's first channel: fusion must rebuild the volume
            assert x.shape[-1] == x.shape[-2] == (slice_size or max(in_plane))
            return x[:, :1]

        fused = OrthogonalPlaneInferer(planes=planes, slice_size=slice_size, sw_batch_size=4, activation=None)(
            volume, first_channel
        )
        assert fused.shape == (2, 1, 10, 13, 8)
        torch.testing.assert_close(fused, volume[:, :1])
    # probabilities are averaged over the planes: a network that sees one plane's slice shape differently
    shapes = []
    OrthogonalPlaneInferer(sw_batch_size=100, activation="sigmoid")(
        volume[:1], lambda x: shapes.append(x.shape) or x[:, :1]
    )
    assert [s[0] for s in shapes] == [10, 13, 8]  # one call per plane with all of its slices


def test_phantoms_are_deterministic_and_mri_like(tmp_path):
    a = make_phantom_subject([5, 0], num_timepoints=3, voxel_size=4)
    b = make_phantom_subject([5, 0], num_timepoints=3, voxel_size=4)
    np.testing.assert_array_equal(a.wm, b.wm)
    np.testing.assert_array_equal(lesion_map(a, 2), lesion_map(b, 2))
    assert len(a.lesions) >= 8
    root = ensure_ms_dataset(
        tmp_path / "ms", num_subjects=2, num_timepoints=[2, 3, 1], num_test_subjects=1, seed=1, voxel_size=4
    )
    entries = find_isbi_images(root)
    assert [(e["subject"], e["timepoint"]) for e in entries] == [
        ("test01", "01"),
        ("training01", "01"),
        ("training01", "02"),
        ("training02", "01"),
        ("training02", "02"),
        ("training02", "03"),
    ]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # the temporary folder is gone
    stamp = os.path.getmtime(entries[1]["image"][0])
    ensure_ms_dataset(root, seed=99)  # holds data: left alone
    assert os.path.getmtime(entries[1]["image"][0]) == stamp
    e = entries[-1]
    flair, pd, t2, t1 = (np.asarray(nib.load(p).dataobj) for p in e["image"])
    m1, m2 = (np.asarray(nib.load(e[k]).dataobj) for k in ("mask1", "mask2"))
    gold = gold_standard(m1, m2).astype(bool)
    assert gold.sum() > 0 and (m1 != m2).sum() > 0  # raters agree on cores, differ at borders
    rater_dice = 2 * (m1 & m2).sum() / (m1.sum() + m2.sum())
    assert 0.4 < rater_dice < 0.95
    affine = nib.load(e["image"][0]).affine
    assert flair.shape == (49, 58, 47) and np.allclose(np.diag(affine)[:3], 4)
    wm = make_phantom_subject([1, 1], 3, 4).wm > 0.9
    wm &= ~ndilate(gold)
    # lesions: bright on FLAIR, PD and T2, dark on T1, relative to normal-appearing white matter
    for img, brighter in ((flair, True), (pd, True), (t2, True), (t1, False)):
        assert (img[gold].mean() > img[wm].mean()) == brighter


def ndilate(mask):
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=2)


def test_phantoms_are_not_mixed_into_a_folder_of_other_files(tmp_path):
    """Real data in another layout must not be silently replaced or joined by phantoms."""
    (tmp_path / "ms" / "raw").mkdir(parents=True)
    (tmp_path / "ms" / "raw" / "patient01_flair.nii").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"ms'? holds files but no ISBI 2015 layout"):
        ensure_ms_dataset(tmp_path / "ms", num_subjects=2, num_timepoints=1, num_test_subjects=0, voxel_size=4)
    assert sorted(os.listdir(tmp_path / "ms")) == ["raw"]
    with pytest.raises(FileNotFoundError, match="No ISBI 2015 time point"):
        find_isbi_images(tmp_path / "ms")
