"""Outputs never overwrite or feed back (issue 24, item 2): the guard MONAI's savers write through, on its own."""

import os

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import SaveImage

from monai_hyperconv.utils.outputs import (
    GuardedFolderLayout,
    check_folders_apart,
    check_no_overwrite,
    check_planned_outputs,
    mark_output_dir,
)


def _save(layout, source, patch_index=None):
    image = MetaTensor(torch.zeros(1, 4, 4, 4))
    image.meta.update(filename_or_obj=str(source), patch_index=patch_index)
    SaveImage(folder_layout=layout, output_ext=".nii.gz", resample=False, print_log=False)(image)


def test_a_name_is_handed_out_once_per_input_and_never_over_a_foreign_file(tmp_path):
    layout = GuardedFolderLayout(tmp_path / "out", postfix="seg", extension=".nii.gz", data_root_dir=tmp_path / "in")
    _save(layout, tmp_path / "in" / "a" / "x.nii")
    _save(layout, tmp_path / "in" / "a" / "x.nii")  # the same input again (e.g. one slice taken twice): fine
    _save(layout, tmp_path / "in" / "b" / "x.nii")  # same name, another folder: another file
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.nii.gz")) == [
        "a/x_seg.nii.gz",
        "b/x_seg.nii.gz",
    ]
    with pytest.raises(FileExistsError, match=r"x\.nii and .*x\.nii\.gz would both be saved as .*a/x_seg\.nii\.gz"):
        _save(layout, tmp_path / "in" / "a" / "x.nii.gz")
    with pytest.raises(ValueError, match=r"would be written outside output_dir"):
        _save(layout, tmp_path / "elsewhere" / "y.nii")
    # a second run (a new layout): the first run's files are not its own
    again = GuardedFolderLayout(tmp_path / "out", postfix="seg", extension=".nii.gz", data_root_dir=tmp_path / "in")
    with pytest.raises(FileExistsError, match=r"a/x_seg\.nii\.gz exists and this run did not write it"):
        _save(again, tmp_path / "in" / "a" / "x.nii")
    replace = GuardedFolderLayout(tmp_path / "out", "seg", ".nii.gz", data_root_dir=tmp_path / "in", overwrite="true")
    _save(replace, tmp_path / "in" / "a" / "x.nii")


def test_planned_outputs_are_checked_before_any_write(tmp_path):
    layout = GuardedFolderLayout(tmp_path / "out", postfix="seg", extension=".nii.gz", data_root_dir=tmp_path)
    items = [{"image": str(tmp_path / "v" / "x.nii"), "patch_index": k} for k in (3, 7)]
    check_planned_outputs([layout], items)  # two slices of one volume: two names
    assert not (tmp_path / "out").exists()  # planning creates nothing
    with pytest.raises(FileExistsError, match=r"would both be saved as"):
        check_planned_outputs([layout], [*items, {"image": str(tmp_path / "v" / "x.nii.gz"), "patch_index": 3}])
    assert not layout.claimed  # planning claims nothing


def test_output_folders_apart_from_input_folders(tmp_path):
    check_folders_apart(tmp_path / "out", dataset_dir=tmp_path / "data", input_dir=None)
    for out, relation in ((tmp_path / "data", "is"), (tmp_path / "data" / "p", "is inside"), (tmp_path, "contains")):
        with pytest.raises(ValueError, match=rf"output_dir .* {relation} dataset_dir .*data"):
            check_folders_apart(out, dataset_dir=tmp_path / "data")
    os.makedirs(tmp_path / "out")
    (tmp_path / "out" / "metrics.csv").write_text("x")
    with pytest.raises(FileExistsError, match=r"metrics\.csv exists and this run would replace it: pass --overwrite"):
        check_no_overwrite(tmp_path / "out", ["noise.csv", "metrics.csv"])
    check_no_overwrite(tmp_path / "out", ["metrics.csv"], overwrite="true")
    mark_output_dir(tmp_path / "out")
    assert np.array_equal(sorted(os.listdir(tmp_path / "out")), [".monai_hyperconv_outputs", "metrics.csv"])
