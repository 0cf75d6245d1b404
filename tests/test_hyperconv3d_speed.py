"""benchmarks/hyperconv3d_speed.py --quick: the 3D table and the profile print, no timed assertions."""

import pathlib
import sys

import pytest

_BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.usefixtures("one_thread_no_onednn")


def test_quick_run_prints_one_row_per_network(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(_BENCHMARKS))
    monkeypatch.setattr(sys, "argv", ["hyperconv3d_speed.py", "--quick"])
    import hyperconv3d_speed

    hyperconv3d_speed.main()
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "UNet" in line and "network" not in line]
    assert [r.split(" | ")[0] for r in rows] == ["| regular UNet 3³", "| Hyper UNet 3³", "| Hyper UNet 5³"]
    assert all(r.split(" | ")[2] in ("68", "128") for r in rows)
    assert rows[1].split(" | ")[1] == rows[2].split(" | ")[1]  # hyper parameter count does not depend on k
    assert "Where the time goes" in out
