"""Atomic file writes: readers (and a run killed mid-write) see either the old file or the whole new one.

Every file the package writes goes through :func:`atomic_write`: the content is written to a temporary file in the
destination's folder (so the final rename never crosses file systems), flushed to disk, and moved over the
destination with :func:`os.replace`; on any failure the temporary file is removed and the old file stays. The other
functions are that one writer for each file kind: text, CSV, JSON, ``torch.save`` and matplotlib figures.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from monai_hyperconv.utils.optional import require

__all__ = [
    "atomic_save_figure",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "remove_stale_temporaries",
]

# mkstemp names of atomic_write: ".<destination name>.<random>.tmp" beside the destination
_TMP_PREFIX, _TMP_SUFFIX = ".", ".tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> str:
    """Call ``write(f)`` on a binary file beside ``path``, then rename that file into place.

    Args:
        path: destination; its folder is created when missing. An existing file is replaced only once the new
            one is completely written and flushed to disk.
        write: writes the content into the open binary file it is given.

    Returns:
        ``path`` as a string.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.path.basename(path)}.", suffix=_TMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp files are private; ours are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` (UTF-8, line endings as given) to ``path`` atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """Write a CSV table (``csv.writer`` defaults) with its header row, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def atomic_write_json(path: str | os.PathLike, content, indent: int = 1) -> str:
    """Write ``content`` as JSON, atomically."""
    return atomic_write_text(path, json.dumps(content, indent=indent))


def atomic_torch_save(obj, path: str | os.PathLike) -> str:
    """``torch.save(obj)`` to ``path``, atomically (``obj``: anything ``torch.save`` accepts)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_save_figure(fig, path: str | os.PathLike, close: bool = True, **savefig_kwargs) -> str:
    """``fig.savefig`` to ``path``, atomically; the format follows the file's extension (e.g. ``.png``).

    Args:
        fig: a matplotlib figure.
        path: destination file.
        close: close the figure afterwards (frees pyplot's memory of it).
        savefig_kwargs: passed to ``Figure.savefig`` (``dpi``, ``bbox_inches``...).
    """
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **savefig_kwargs))
    finally:
        if close:
            # the caller made the figure, so matplotlib is there
            require("matplotlib.pyplot", purpose="closing a figure").close(fig)


def remove_stale_temporaries(folder: str | os.PathLike, recursive: bool = False) -> list[str]:
    """Remove the temporary files that :func:`atomic_write` leaves behind when its process is killed mid-write.

    Only call this while no other process writes into ``folder`` (e.g. while holding its run lock): a live
    writer's temporary file looks the same.

    Args:
        folder: the folder to clean; a missing folder is nothing to clean.
        recursive: also clean its sub-folders (only when no other run may write into any of them).

    Returns:
        the removed paths.
    """
    removed = []
    for root, _dirs, names in os.walk(os.fspath(folder)):  # a missing folder yields nothing
        for name in names:
            # ".<name>.<random>.tmp": a hidden name with at least the destination and mkstemp's part inside
            if name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX) and name.count(".") >= 3:
                path = os.path.join(root, name)
                os.remove(path)
                removed.append(path)
        if not recursive:
            break
    return removed
