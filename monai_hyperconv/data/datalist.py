"""Datalist JSON files shared by the bundles: ``{"training": [...], "validation": [...], "test": [...]}``."""

from __future__ import annotations

import json

__all__ = ["SPLIT_KEYS", "read_split_json"]

SPLIT_KEYS = ("training", "validation", "test")


def read_split_json(path: str) -> dict:
    """Read a datalist JSON and check that it holds the three lists of :data:`SPLIT_KEYS`.

    Raises:
        ValueError: naming ``path`` when it cannot be read or parsed, or lacks one of the lists.
    """
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read the datalist {path!r}: {e}") from e
    missing = [k for k in SPLIT_KEYS if not isinstance(content, dict) or not isinstance(content.get(k), list)]
    if missing:
        raise ValueError(f"Datalist {path!r} lacks the lists {missing}; expected keys {list(SPLIT_KEYS)}.")
    return content
