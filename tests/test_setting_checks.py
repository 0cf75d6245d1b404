"""Settings that cannot work fail in the function that takes them, naming the setting (issue 24, item 3)."""

import json
import math
import re

import pytest
from helpers import exception_chain_text, tiny_bundle_workflow

from monai_hyperconv.apps.liver import prepare_lits_datalist
from monai_hyperconv.data.datalist import read_split_json
from monai_hyperconv.networks import PaperUNet
from monai_hyperconv.utils import check_image_size, check_learning_rate, prepare_run


@pytest.mark.parametrize("size", [0, -8, -16, math.nan, "nan", 12.5, [32, 0], [32, -8, 32], [], True, None])
def test_image_size_must_be_positive_integers(size):
    with pytest.raises(ValueError, match=r"image_size must be an integer >= 1"):
        check_image_size(size)


@pytest.mark.parametrize("size", [1, 32, 32.0, "64", [24, 32, 24], (8, 8)])
def test_image_size_accepts_positive_integers(size):
    check_image_size(size)


def test_prepare_run_refuses_a_zero_image_size_that_pooling_accepts(tmp_path):
    net = PaperUNet(spatial_dims=2, in_channels=1, out_channels=1, channels=4, conv="regular", kernel_size=3)
    assert 0 % 2**net.pools == 0  # the divisibility check alone let 0 through
    with pytest.raises(ValueError, match=r"slice_size must be an integer >= 1 .* got 0"):
        prepare_run(network=net, image_size=0, size_name="slice_size")


@pytest.mark.parametrize("lr", [math.nan, "nan", math.inf, "-inf", 0, -1e-4, "fast", None, True])
def test_learning_rate_must_be_finite_and_positive(lr):
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number > 0 .* got"):
        check_learning_rate(lr)


def test_learning_rate_from_the_command_line_is_a_float():
    assert check_learning_rate("1e-4") == 1e-4 and check_learning_rate(3) == 3.0


@pytest.mark.parametrize("empty", [["validation"], ["training"], ["training", "validation"]])
def test_a_datalist_with_an_empty_list_is_named(tmp_path, empty):
    path = tmp_path / "datalist.json"
    content = {"training": [{"image": "a.nii"}], "validation": [{"image": "b.nii"}], "test": []}
    path.write_text(json.dumps({**content, **{k: [] for k in empty}}))
    with pytest.raises(ValueError, match=rf"datalist\.json.*no items in {re.escape(repr(empty))}"):
        read_split_json(str(path))


def test_liver_datalist_file_with_an_empty_validation_list_fails_before_training(tmp_path):
    data = tmp_path / "lits"
    data.mkdir()
    for n in range(3):  # the files the datalist names must exist: only the empty list is wrong
        (data / f"volume-{n}.nii").write_bytes(b"")
        (data / f"segmentation-{n}.nii").write_bytes(b"")
    datalist = tmp_path / "datalist.json"
    datalist.write_text(
        json.dumps(
            {
                "training": [{"image": "volume-0.nii", "label": "segmentation-0.nii"}],
                "validation": [],
                "test": [{"image": "volume-2.nii", "label": "segmentation-2.nii"}],
            }
        )
    )
    with pytest.raises(ValueError, match=r"no items in \['validation'\]"):
        prepare_lits_datalist(str(data), str(datalist), generate_data=False)


@pytest.mark.parametrize("bundle", ["liver_lesion_seg", "liver_lesion_seg_3d", "ms_lesion_seg", "csmri_recon"])
def test_bundles_refuse_a_nan_learning_rate_at_initialize(tmp_path, bundle):
    wf = tiny_bundle_workflow(bundle, "train", ["train.yaml"], str(tmp_path / "b"), learning_rate="nan")
    try:
        with pytest.raises(Exception) as e:
            wf.initialize()
    finally:
        from monai_hyperconv.utils import release_all

        release_all()
    assert "learning_rate must be a finite number > 0" in exception_chain_text(e.value)
    assert not (tmp_path / "b" / "data").exists()  # failed before any data was generated
