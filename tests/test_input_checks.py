"""Input checks where inputs are read, and refusals before any work, on files these tests write."""

import os
import traceback
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import run as bundle_run
from monai.transforms import EnsureChannelFirstd

from monai_hyperconv.handlers import describe_checkpoint_mismatch, load_network_weights
from monai_hyperconv.networks import PaperUNet
from monai_hyperconv.transforms import CheckedLoadImaged, CheckImageLabeld
from monai_hyperconv.utils import check_network_input_size, prepare_run
from monai_hyperconv.utils.errors import summary_line

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TRAIN = os.path.join(REPO, "bundles", "liver_lesion_seg", "configs", "train.yaml")


# run locks taken by the code under test are released after each test (conftest.py)
pytestmark = pytest.mark.usefixtures("release_run_locks")


def _save(path, array, affine=None):
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), str(path))
    return str(path)


def _load(image, label=None, **check):
    keys = ["image"] + (["label"] if label else [])
    d = {"image": image, **({"label": label} if label else {})}
    d = EnsureChannelFirstd(keys)(CheckedLoadImaged(keys, image_only=True)(d))
    return CheckImageLabeld(["image", "label"], allowed_labels=(0, 1), **check)(d)


def test_truncated_gzip_names_the_file(tmp_path):
    path = _save(tmp_path / "volume-0.nii.gz", np.random.default_rng(0).normal(size=(32, 32, 8)).astype(np.float32))
    raw = Path(path).read_bytes()
    Path(path).write_bytes(raw[: len(raw) // 2])  # an interrupted download
    with pytest.raises(ValueError, match=r"volume-0\.nii\.gz: cannot be read .*expected a complete image file"):
        _load(path)


def test_four_d_volume_is_refused_at_load(tmp_path):
    img = _save(tmp_path / "v.nii", np.zeros((8, 8, 3, 2), np.float32))
    lab = _save(tmp_path / "s.nii", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"v\.nii: 'image' has shape \(8, 8, 3\) with 2 channel\(s\); expected 3 "):
        _load(img, lab, channels=1, spatial_dims=3)
    _load(
        _save(tmp_path / "ok.nii", np.arange(192, dtype=np.float32).reshape(8, 8, 3)), lab, channels=1, spatial_dims=3
    )


def test_orientation_mismatch_and_singular_affine(tmp_path):
    img = _save(tmp_path / "v.nii", np.arange(192, dtype=np.float32).reshape(8, 8, 3))
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    lab = _save(tmp_path / "s.nii", np.zeros((8, 8, 3), np.uint8), flipped)
    with pytest.raises(ValueError, match=r"Orientation mismatch: .*v\.nii is RAS but .*s\.nii is LAS"):
        _load(img, lab)
    # nibabel will not even write a singular affine; a reader that yields one (or NaN) is caught the same way
    from monai.data import MetaTensor

    from monai_hyperconv.transforms import check_affine

    for affine in (np.diag([1.0, 0.0, 1.0, 1.0]), np.full((4, 4), np.nan)):
        with pytest.raises(ValueError, match=r"flat\.nii: the voxel-to-world matrix .* singular or not finite"):
            check_affine(MetaTensor(torch.zeros(1, 8, 8, 3), affine=torch.as_tensor(affine)), None, "flat.nii")


def test_network_input_size():
    net = PaperUNet(2, 1, 1, channels=4)
    check_network_input_size(net, 32)
    with pytest.raises(ValueError, match=r"image_size 36 .* divide by 8 \(e\.g\. 32\)"):
        check_network_input_size(net, 36)
    with pytest.raises(ValueError, match=r"\[72, 90\]"):
        check_network_input_size(net, [72, 90])


def test_prepare_run_refuses_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="dataset_dir .*afile.* is a file"):
        prepare_run(tmp_path / "models", tmp_path / "out", tmp_path / "afile")
    with pytest.raises((PermissionError, NotADirectoryError), match="ckpt_dir"):
        prepare_run(tmp_path / "afile" / "models")  # cannot be created
    assert not (tmp_path / "models").exists() and not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_ckpt_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="ckpt_dir .*ro.* not writable"):
            prepare_run(ro)
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize(
    "setting,pattern",
    [
        ({"image_size": 36}, r"image_size 36 does not fit the network"),
        ({"dataset_dir_is_file": True}, r"dataset_dir .* is a file"),
    ],
)
def test_bundle_refuses_before_generating_data(tmp_path, setting, pattern):
    """The liver bundle with data generation on: the error comes before the synthetic set is written."""
    data = tmp_path / "lits"
    if setting.pop("dataset_dir_is_file", False):
        data.write_text("not a folder")
    with pytest.raises(Exception) as e:
        bundle_run(
            config_file=[TRAIN],
            bundle_root=str(tmp_path),
            dataset_dir=str(data),
            synthetic={"num_volumes": 4, "size": 48, "num_slices": [5, 6], "seed": 0},
            **setting,
        )
    assert __import__("re").search(pattern, summary_line(e.value)), "".join(traceback.format_exception(e.value))
    assert not data.is_dir() and not (tmp_path / "outputs" / "datalist.json").exists()


@pytest.mark.slow
def test_checkpoint_of_another_network_names_the_fragment(tmp_path):
    """A regular UNet 3x3 model.pt (configs/networks/unet_3x3.yaml) loaded into a Hyper-UNet 5x5."""
    from monai_hyperconv.networks.summary import DEFAULT_CONFIG_DIR, network_from_fragment

    ckpt = tmp_path / "model.pt"
    torch.save(network_from_fragment(DEFAULT_CONFIG_DIR / "unet_3x3.yaml").state_dict(), ckpt)
    hyper = network_from_fragment(DEFAULT_CONFIG_DIR / "hyper_unet_5x5.yaml")
    with pytest.raises(RuntimeError) as e:
        load_network_weights(hyper, ckpt)
    message = str(e.value)
    assert str(ckpt) in message and "PaperUNet" in message and "unet_3x3.yaml" in message and "merge" in message
    assert "hyper_unet_5x5.yaml" not in message.split("holds")[-1]
    # a narrower UNet 3x3 (8 channels): the fragment with the same layers, other widths
    narrow = PaperUNet(2, 1, 1, channels=8, conv="regular", kernel_size=3).state_dict()
    text = describe_checkpoint_mismatch(narrow, hyper, "narrow.pt")
    assert "unet_3x3.yaml" in text and "other widths" in text


# ---------------------------------------------------------------- issue 24, item 3: what real data gets wrong


def _lits_pair(folder, n=0, shape=(16, 16, 6), label_affine=None, image=None):
    """``volume-n.nii`` / ``segmentation-n.nii`` in the LiTS layout (1 mm voxels at the origin unless told)."""
    rng = np.random.default_rng(n)
    volume = rng.integers(-200, 300, shape).astype(np.int16) if image is None else image
    label = np.zeros(shape, np.uint8)
    label[4:10, 4:10] = 1
    img = _save(folder / f"volume-{n}.nii", volume)
    return img, _save(folder / f"segmentation-{n}.nii", label, label_affine)


@pytest.mark.parametrize(
    "label_affine,pattern",
    [
        (np.array([[1, 0, 0, 30.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), r"origin shifted by 30 mm"),
        (np.diag([1.5, 1.5, 1.5, 1.0]), r"voxel size \(1\.5, 1\.5, 1\.5\) mm vs \(1, 1, 1\) mm"),
    ],
)
def test_a_label_off_the_image_grid_is_refused_naming_both_files(tmp_path, label_affine, pattern):
    """A mask shifted 30 mm or with 1.5x voxels has the image's orientation codes and shape: it trained silently."""
    img, lab = _lits_pair(tmp_path, label_affine=label_affine)
    with pytest.raises(
        ValueError,
        match=rf"Affine mismatch: .*segmentation-0\.nii does not lie on the grid of .*volume-0\.nii: .*{pattern}",
    ):
        _load(img, lab)


def test_affines_equal_within_float_rounding_pass(tmp_path):
    img, lab = _lits_pair(tmp_path, label_affine=np.diag([1.0, 1.0, 1.0, 1.0]) + 1e-6 * np.eye(4, k=1))
    _load(img, lab)


def test_a_constant_image_is_refused(tmp_path):
    img, lab = _lits_pair(tmp_path, image=np.zeros((16, 16, 6), np.int16))
    with pytest.raises(ValueError, match=r"volume-0\.nii: 'image' \(channel 0\) holds the single value 0 everywhere"):
        _load(img, lab)


def test_a_complex_volume_is_refused_not_cast(tmp_path):
    """nibabel loads a complex64 NIfTI as float with the imaginary part dropped (a warning at most)."""
    volume = (np.ones((16, 16, 6)) + 1j * np.arange(6)).astype(np.complex64)
    img = _save(tmp_path / "volume-0.nii", volume)
    with pytest.raises(ValueError, match=r"volume-0\.nii: complex-valued voxels \(complex64\); expected a real-valued"):
        _load(img)


def test_a_volume_too_small_for_the_network_is_refused(tmp_path):
    net = PaperUNet(2, 1, 1, channels=4)
    from monai_hyperconv.utils import min_input_size

    assert min_input_size(net) == 8 and min_input_size(torch.nn.Identity()) == 1
    img, lab = _lits_pair(tmp_path, shape=(16, 4, 3))
    with pytest.raises(
        ValueError,
        match=r"volume-0\.nii: spatial shape \(16, 4, 3\) is too small for the network; expected at least \(8, 8, 1\)",
    ):
        _load(img, lab, min_size=8, axial_min_size=1)
    _load(*_lits_pair(tmp_path, n=1, shape=(8, 8, 1)), min_size=8, axial_min_size=1)  # one axial slice is enough
