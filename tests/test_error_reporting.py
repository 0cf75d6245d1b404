"""Uncaught errors end with the root cause on the last line and exit status 1, never an abort."""

import os
import subprocess
import sys

import pytest

from monai_hyperconv.utils.errors import root_cause, summary_line

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ENV = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}


def _wrapped():
    try:
        try:
            raise ValueError("/data/volume-1.nii: 'image' has 3 NaN voxels;\n expected finite values.")
        except ValueError as e:
            raise RuntimeError("applying transform <CheckImageLabeld>") from e
    except RuntimeError as e:
        try:
            raise RuntimeError("Failed to evaluate ... set '_mode_=debug' to enter the debugging mode.") from e
        except RuntimeError as outer:
            return outer


def test_root_cause_and_summary_line():
    exc = _wrapped()
    assert isinstance(root_cause(exc), ValueError)
    assert summary_line(exc) == (
        "monai_hyperconv error: ValueError: /data/volume-1.nii: 'image' has 3 NaN voxels; expected finite values."
    )


def test_uncaught_error_ends_with_the_root_cause():
    code = (
        "from monai_hyperconv.utils import install_excepthook\ninstall_excepthook()\n"
        "raise RuntimeError('wrapper') from FileNotFoundError('/x/model.pt is missing')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "monai_hyperconv error: FileNotFoundError: /x/model.pt is missing"
    assert "Traceback" in proc.stderr  # Python's report is kept above


@pytest.mark.slow
@pytest.mark.parametrize("run", range(2))
def test_failure_while_caching_exits_1_not_abort(tmp_path, run):
    """MONAI's CacheDataset fails on one volume while its other threads still preprocess volumes: before the fix,
    the process aborted at shutdown (`terminate called without an active exception`, exit 134) in 3 of 3 runs."""
    script = os.path.join(REPO, "tests", "scripts", "cache_failure.py")
    proc = subprocess.run(
        [sys.executable, script, str(tmp_path), "hook"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "segmentation-0.nii" in last and "outside the expected labels" in last and last.startswith("monai_hyp")
