"""One run per folder: a live holder is refused by name, a dead one's lock taken over, killed writes cleaned."""

import json
import os
import socket
import subprocess
import sys

import pytest

from monai_hyperconv.utils import FolderInUseError, RunLock, lock_run_folders, release_all
from monai_hyperconv.utils.run_lock import LOCK_FILENAME

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


# run locks taken by the code under test are released after each test (conftest.py)
pytestmark = pytest.mark.usefixtures("release_run_locks")


def _holder(folder):
    """A process that holds the lock of ``folder`` until killed."""
    code = (
        "import sys, time\nfrom monai_hyperconv.utils import lock_run_folders\n"
        f"lock_run_folders(ckpt_dir={str(folder)!r})\nprint('held', flush=True)\ntime.sleep(120)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_run_is_refused_naming_the_holder(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(FolderInUseError) as e:
            RunLock(tmp_path, "ckpt_dir").acquire()
        message = str(e.value)
        assert f"pid {proc.pid}" in message and socket.gethostname() in message and "started 20" in message
        assert str(tmp_path) in message
    finally:
        proc.kill()
        proc.wait()
    # the holder was killed (SIGKILL: no clean-up): its lock is stale now and is taken over
    lock = RunLock(tmp_path, "ckpt_dir").acquire()
    assert json.loads((tmp_path / LOCK_FILENAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILENAME).exists()


def test_stale_lock_is_taken_over_and_killed_writes_are_cleaned(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILENAME).write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "2020-01-01T00:00:00", "argv": ["x"]})
    )
    (tmp_path / ".model.pt.k2j3h4.tmp").write_bytes(b"")  # what atomic_write leaves when killed mid-write
    (tmp_path / ".checkpoint_last.pt.a1b2.tmp").write_bytes(b"partial")
    (tmp_path / "model.pt").write_bytes(b"kept")
    (tmp_path / ".hidden.tmp").write_bytes(b"kept: not an atomic_write name")
    with caplog.at_level("WARNING"):
        lock_run_folders(ckpt_dir=tmp_path)
    assert "taking over" in caplog.text and f"pid {dead.pid}" in caplog.text
    assert sorted(os.listdir(tmp_path)) == sorted([LOCK_FILENAME, "model.pt", ".hidden.tmp"])


def test_lock_from_another_host_is_not_taken(tmp_path):
    (tmp_path / LOCK_FILENAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "s", "argv": []}))
    with pytest.raises(FolderInUseError, match=r"another host.*delete"):
        RunLock(tmp_path).acquire()


def test_same_process_may_ask_twice(tmp_path):
    first = lock_run_folders(ckpt_dir=tmp_path)
    assert lock_run_folders(output_dir=tmp_path) == first  # e.g. ckpt_dir and output_dir are one folder
    release_all()
    assert not (tmp_path / LOCK_FILENAME).exists()


def test_lock_creates_the_folder_and_refuses_a_file(tmp_path):
    RunLock(tmp_path / "new").acquire().release()
    assert (tmp_path / "new").is_dir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="afile"):
        RunLock(tmp_path / "afile", "ckpt_dir").acquire()
