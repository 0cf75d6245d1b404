"""The one atomic writer (monai_hyperconv.utils.atomic): every file kind lands whole, or the old file stays."""

import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

from monai_hyperconv.utils.atomic import (
    atomic_save_figure,
    atomic_torch_save,
    atomic_write,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
)


def test_each_file_kind_reads_back(tmp_path):
    assert atomic_write_text(tmp_path / "a" / "t.txt", "x\r\ny\n") == str(tmp_path / "a" / "t.txt")
    assert (tmp_path / "a" / "t.txt").read_bytes() == b"x\r\ny\n"  # folder created, line endings as given
    atomic_write_csv(tmp_path / "t.csv", ["k", "v"], [["a", 1], ["b", 2]])
    with open(tmp_path / "t.csv", newline="") as f:
        assert list(csv.reader(f)) == [["k", "v"], ["a", "1"], ["b", "2"]]
    atomic_write_json(tmp_path / "t.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "t.json").read_text()) == {"a": [1, 2]}
    atomic_torch_save({"w": torch.arange(3)}, tmp_path / "t.pt")
    assert torch.equal(torch.load(tmp_path / "t.pt", weights_only=True)["w"], torch.arange(3))
    assert sorted(os.listdir(tmp_path)) == ["a", "t.csv", "t.json", "t.pt"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_written_files_are_ordinary_files(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    atomic_write_text(tmp_path / "f.txt", "x")
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600


def test_figure_is_written_in_the_format_of_its_extension_and_closed(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    atomic_save_figure(fig, tmp_path / "f.png", dpi=50)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    fig, _ = plt.subplots()
    atomic_save_figure(fig, tmp_path / "f.pdf", close=False)
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-" and plt.fignum_exists(fig.number)
    plt.close(fig)
    assert sorted(os.listdir(tmp_path)) == ["f.pdf", "f.png"]
