"""Launching the bundle for the comparison: the ``python -m monai.bundle run`` command, in a subprocess or in process."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Launcher", "bundle_command", "inprocess_launcher", "subprocess_launcher"]

# (config files, overrides, log file) -> None; raises on failure.
Launcher = Callable[[Sequence[str], Mapping[str, Any], str], None]


# -- launching the bundle ------------------------------------------------------------------------------------------
def _cli_value(value: Any) -> str:
    """A config override as ``python -m monai.bundle run`` (fire) parses it back to the same value."""
    if isinstance(value, str):
        return value
    return repr(value)  # ints, floats, bools, lists and dicts are Python literals to fire


def bundle_command(
    config_files: Sequence[str], overrides: Mapping[str, Any], python: str = sys.executable
) -> list[str]:
    """The ``python -m monai.bundle run`` command line that runs ``config_files`` (merged) with ``overrides``."""
    cmd = [python, "-m", "monai.bundle", "run", "--config_file", repr([str(f) for f in config_files])]
    for key, value in overrides.items():
        cmd += [f"--{key}", _cli_value(value)]
    return cmd


def subprocess_launcher(config_files: Sequence[str], overrides: Mapping[str, Any], log_path: str) -> None:
    """Run the bundle in a fresh Python process, its output appended to ``log_path``.

    Raises:
        RuntimeError: when the run fails, with the command, the log file and its last lines.
    """
    cmd = bundle_command(config_files, overrides)
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {shlex.join(cmd)}\n")
        log.flush()
        status = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if status != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            tail = "".join(log.readlines()[-25:])
        raise RuntimeError(f"bundle run failed (exit {status}), log {log_path!r}:\n$ {shlex.join(cmd)}\n{tail}")


def inprocess_launcher(config_files: Sequence[str], overrides: Mapping[str, Any], log_path: str) -> None:
    """Run the bundle with ``monai.bundle.run`` in this process (faster to start; no isolation). Logs the call only."""
    from monai.bundle import run

    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {shlex.join(bundle_command(config_files, overrides))}  (in process)\n")
    run(config_file=[str(f) for f in config_files], **overrides)
