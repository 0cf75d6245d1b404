"""Writing report tables: CSV and Markdown, atomically (a temp file, then ``os.replace``)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence

from monai_hyperconv.utils.atomic import atomic_write_text

__all__ = ["markdown_table", "read_csv", "write_csv"]


def write_csv(rows: Sequence[Mapping], path: str, columns: Sequence[str] | None = None) -> str:
    """Write ``rows`` (dicts) as CSV with a header; ``columns`` defaults to every key of the rows, first seen first."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def read_csv(path: str) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, as dicts of strings."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CSV file {path!r} does not exist.")
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _cell(value) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` restricted to ``columns`` (floats to 4 significant digits)."""
    headers = list(headers or columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
