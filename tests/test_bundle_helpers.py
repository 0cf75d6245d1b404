"""The named functions that replaced logic in the bundle configs (tests/test_configs_are_data.py): data-loader
workers, the amp flag, stacked engine outputs, optional run steps, and the task apps' datalist / naming helpers."""

import csv
import os

import pytest
import torch

from monai_hyperconv.apps.csmri import undersampling_probability
from monai_hyperconv.apps.liver import prepare_lits_datalist
from monai_hyperconv.apps.ms import (
    batch_image_meta,
    evaluation_dir,
    prediction_name,
    prepare_ms_datalist,
    write_fold_dice_report,
)
from monai_hyperconv.handlers import from_engine_stacked
from monai_hyperconv.utils import amp_enabled, auto_num_workers, available_cpus, run_if


def test_auto_num_workers_picks_from_the_machine_and_takes_given_counts():
    expected = max(0, min(8, available_cpus() - 1))
    assert auto_num_workers(None) == auto_num_workers("auto") == auto_num_workers("null") == expected
    assert auto_num_workers(None, max_workers=0) == 0
    assert auto_num_workers(3) == auto_num_workers("3") == 3 and auto_num_workers(0) == 0
    assert auto_num_workers(None, "cpu") == expected
    assert auto_num_workers(None, "cuda:0") == 0 and auto_num_workers(0, torch.device("cuda", 0)) == 0  # main process
    for bad in (-1, "two", 1.5, True):
        with pytest.raises(ValueError, match="num_workers"):
            auto_num_workers(bad)
    with pytest.raises(ValueError, match="augment_device cuda:0"):
        auto_num_workers(2, "cuda:0")


def test_amp_enabled_converts_the_flag_and_refuses_amp_off_cuda():
    assert (
        amp_enabled(False, "cpu") is False and amp_enabled("false", "cpu") is False and amp_enabled("0", "cpu") is False
    )
    assert amp_enabled("true", "cuda:0") is True and amp_enabled(True, torch.device("cuda", 1)) is True
    with pytest.raises(ValueError, match="CUDA device"):
        amp_enabled("true", torch.device("cpu"))
    with pytest.raises(ValueError, match="amp"):
        amp_enabled("maybe", "cuda:0")


def test_from_engine_stacked_stacks_each_key_over_the_items():
    out = [{"logits": torch.full((1, 2, 2), float(i)), "label": torch.full((1, 2, 2), -float(i))} for i in range(3)]
    logits, label = from_engine_stacked(["logits", "label"])(out)
    assert logits.shape == label.shape == (3, 1, 2, 2)
    assert logits[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0] and label[:, 0, 0, 0].tolist() == [0.0, -1.0, -2.0]
    (single,) = from_engine_stacked(["label"])(out[2])  # one dictionary (not decollated)
    assert single.shape == (1, 1, 2, 2) and float(single.sum()) == -8.0


def test_run_if_runs_only_when_the_flag_is_on():
    calls = []
    assert run_if("true", lambda: calls.append(1) or "done") == "done"
    assert run_if("false", lambda: calls.append(2)) is None and run_if(False, lambda: calls.append(3)) is None
    assert calls == [1]
    with pytest.raises(ValueError, match="run_noise_sweep"):
        run_if("sometimes", lambda: None, "run_noise_sweep")


def test_undersampling_probability():
    assert undersampling_probability(True) == undersampling_probability("true") == 1.0
    assert undersampling_probability("false") == undersampling_probability(False) == 0.0
    with pytest.raises(ValueError, match="undersample_input"):
        undersampling_probability("yes please")


def test_generate_data_false_as_a_string_requires_real_data(tmp_path):
    """``--generate_data false`` from the command line is the string 'false': no data may be generated."""
    tiny = {"num_volumes": 3, "size": 32, "num_slices": [3, 4], "seed": 0}
    with pytest.raises(FileNotFoundError, match="lits"):
        prepare_lits_datalist(str(tmp_path / "lits"), None, synthetic=tiny, generate_data="false")
    assert not (tmp_path / "lits").exists() or not os.listdir(tmp_path / "lits")
    with pytest.raises(ValueError, match="generate_data"):
        prepare_lits_datalist(str(tmp_path / "lits"), None, synthetic=tiny, generate_data="perhaps")
    with pytest.raises(FileNotFoundError, match="No ISBI 2015 time point"):
        prepare_ms_datalist(str(tmp_path / "isbi"), generate_data="false")
    assert not (tmp_path / "isbi").exists()


def test_ms_report_helpers(tmp_path):
    assert evaluation_dir("out/fold2") == "out/fold2"  # the held-out subject: the fold's own folder
    assert evaluation_dir("out/fold2", "training") == os.path.join("out/fold2", "training")
    meta = {"filename_or_obj": "/d/training/training03/preprocessed/training03_04_flair_pp.nii"}
    assert prediction_name(meta, None) == {"subject": "/d/training/training03/training03_04"}

    class Image:
        def __init__(self, m):
            self.meta = m

    assert batch_image_meta([{"image": Image(meta)}, {"image": Image({"a": 1})}]) == [meta, {"a": 1}]
    with open(tmp_path / "dice_raw.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "mean"])
        w.writerows([["training01_01_flair_pp.nii", 0.5], ["training01_02_flair_pp.nii", 0.7]])
    means = write_fold_dice_report(str(tmp_path), 1)
    assert means == pytest.approx({"training01": 0.6})
    with open(tmp_path / "dice.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["fold"], r["timepoint"]) for r in rows] == [("1", "01"), ("1", "02"), ("1", "mean")]
