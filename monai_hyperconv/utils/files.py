"""File checks with errors that name the path and what was expected, and the source file of a loaded tensor."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

__all__ = ["ensure_writable_dir", "require_files", "source_name"]


def source_name(data, default: str = "<in-memory array>") -> str:
    """The file a (Meta)Tensor was loaded from, from its ``filename_or_obj`` metadata, or ``default``."""
    meta = getattr(data, "meta", None) or {}
    name = meta.get("filename_or_obj", None)
    return str(name) if name else default


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder") -> str:
    """Create ``path`` when missing and check that files can be written there.

    Args:
        path: the folder.
        what: what the folder is for, used in the error message.

    Raises:
        NotADirectoryError: naming the path, when it is a file.
        PermissionError: naming the folder, when it cannot be created or written (tried, not guessed).
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"The {what} {path!r} is a file; expected a folder.")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"Cannot create the {what} {path!r}: {e.strerror or e}.") from e
    try:  # a real write: os.access says yes for root on a read-only mount or a folder root may not write
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise PermissionError(f"The {what} {path!r} exists but is not writable ({e.strerror or e}).") from e
    return path


def require_files(paths: Sequence[str | os.PathLike], what: str = "input file") -> None:
    """Raise ``FileNotFoundError`` naming the first path of ``paths`` that is not an existing file."""
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"Missing {what}: {os.fspath(p)!r} does not exist or is not a file.")
