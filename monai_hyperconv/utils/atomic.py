"""Atomic file writes: readers (and a run killed mid-write) see either the old file or the whole new one."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence

__all__ = ["atomic_write_text", "atomic_write_csv", "atomic_write_json"]


def atomic_write_text(path: str, text: str) -> str:
    """Write ``text`` to a temporary file beside ``path`` (its folder is created), then rename it into place."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def atomic_write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """Write a CSV table (``csv.writer`` defaults) with its header row, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def atomic_write_json(path: str, content, indent: int = 1) -> str:
    """Write ``content`` as JSON, atomically."""
    return atomic_write_text(path, json.dumps(content, indent=indent))
