"""Embedded data published in one rename, safe when runs started together generate the same data at once."""

import os

import pytest

from monai_hyperconv.apps.embedded import publish_generated


def _has_data(folder):
    return os.path.isdir(folder) and any(n.endswith(".nii.gz") for n in os.listdir(folder))


def _generated(folder, name="a.nii.gz", text="data"):
    os.makedirs(folder)
    with open(os.path.join(folder, name), "w") as f:
        f.write(text)
    return folder


def test_publish_moves_the_folder_into_a_missing_or_empty_place(tmp_path):
    for target in (tmp_path / "missing", tmp_path / "empty"):
        if target.name == "empty":
            target.mkdir()
        tmp = _generated(str(tmp_path / f".tmp-{target.name}"))
        publish_generated(tmp, str(target), _has_data)
        assert os.listdir(target) == ["a.nii.gz"] and not os.path.exists(tmp)


def test_a_later_run_keeps_the_copy_another_run_published(tmp_path):
    target = str(tmp_path / "data")
    publish_generated(_generated(str(tmp_path / ".tmp-first"), text="first"), target, _has_data)
    second = _generated(str(tmp_path / ".tmp-second"), text="second")
    publish_generated(second, target, _has_data)  # the race: the folder filled between the check and the rename
    with open(os.path.join(target, "a.nii.gz")) as f:
        assert f.read() == "first"
    assert not os.path.exists(second)


def test_a_folder_holding_other_files_is_never_replaced(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    tmp = _generated(str(tmp_path / ".tmp"))
    with pytest.raises(OSError):
        publish_generated(tmp, str(target), _has_data)
    assert os.listdir(target) == ["notes.txt"]
