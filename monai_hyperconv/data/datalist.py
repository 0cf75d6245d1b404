"""Datalist JSON files shared by the bundles: ``{"training": [...], "validation": [...], "test": [...]}``."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import numpy as np

__all__ = ["SPLIT_KEYS", "datalist_source", "read_split_json", "reusable_datalist", "split_sizes"]

logger = logging.getLogger(__name__)

SPLIT_KEYS = ("training", "validation", "test")
# the lists a datalist may not leave empty (a test list may be, for a split used only to train)
REQUIRED_KEYS = ("training", "validation")


def split_sizes(n: int, proportions: Sequence[float]) -> list[int]:
    """Split ``n`` items in ``proportions`` (largest remainders), every part at least 1.

    Raises:
        ValueError: when ``n`` is smaller than the number of parts.
    """
    k = len(proportions)
    if n < k:
        raise ValueError(f"Need at least {k} volumes to split into {k} non-empty parts, found {n}.")
    p = np.asarray(proportions, dtype=float) / float(np.sum(proportions))
    counts = np.maximum(np.floor(p * n).astype(int), 1)
    while counts.sum() > n:  # the minimum of 1 overshot: take from the largest part
        counts[np.argmax(counts)] -= 1
    remainders = p * n - np.floor(p * n)
    for i in np.argsort(-remainders, kind="stable"):
        if counts.sum() == n:
            break
        counts[i] += 1
    return counts.tolist()


def read_split_json(path: str) -> dict:
    """Read a datalist JSON and check that it holds the three lists of :data:`SPLIT_KEYS`, training and validation
    not empty.

    Raises:
        ValueError: naming ``path`` when it cannot be read or parsed, lacks one of the lists, or its training or
            validation list is empty.
    """
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read the datalist {path!r}: {e}") from e
    missing = [k for k in SPLIT_KEYS if not isinstance(content, dict) or not isinstance(content.get(k), list)]
    if missing:
        raise ValueError(f"Datalist {path!r} lacks the lists {missing}; expected keys {list(SPLIT_KEYS)}.")
    empty = [k for k in REQUIRED_KEYS if not content[k]]
    if empty:
        raise ValueError(
            f"Datalist {path!r}: no items in {empty}; expected at least one training and one validation item "
            "(validation picks the epoch saved as model.pt)."
        )
    return content


def datalist_source(dataset_dir: str, seed: int, names: Sequence[str]) -> dict:
    """What a bundle's automatic split was made from: the folder, the split seed and the items' names.

    Stored under ``"source"`` in the datalist JSON, so a later run can tell whether the file still describes
    its ``dataset_dir``.
    """
    return {"dataset_dir": os.path.realpath(dataset_dir), "seed": int(seed), "items": sorted(names)}


def reusable_datalist(path: str | None, source: dict) -> bool:
    """Whether the datalist JSON at ``path`` can be reused for ``source`` (:func:`datalist_source`).

    - no file (or no ``path``): False, the caller splits and writes one;
    - no ``"source"`` entry (written by hand): True, a user-given split is taken as it is;
    - the same seed and items (wherever the folder now lies): True;
    - another folder, or another seed: False, the caller splits again (reusing it would silently train on part
      of the data, or on another dataset's file names); splits are deterministic, so running on the old folder
      again recreates the old one;
    - the same folder and seed but other items: an error, since a new split of a changed folder could put
      volumes a model was trained on into its test set.

    Raises:
        FileNotFoundError: naming ``path`` and the items that disappeared from the folder.
        ValueError: naming ``path`` and the items that were added to the folder.
    """
    if not path or not os.path.isfile(path):
        return False
    recorded = read_split_json(path).get("source")
    if recorded is None or (recorded.get("seed"), recorded.get("items")) == (source["seed"], source["items"]):
        return True
    if recorded.get("dataset_dir") == source["dataset_dir"] and recorded.get("seed") == source["seed"]:
        removed = sorted(set(recorded.get("items", [])) - set(source["items"]))
        added = sorted(set(source["items"]) - set(recorded.get("items", [])))
        advice = f"restore the folder, or delete {path} (or pass another datalist_file) to split it again"
        if removed:
            raise FileNotFoundError(
                f"Datalist {path} splits {source['dataset_dir']}, which no longer holds {removed[:5]}"
                f"{' ...' if len(removed) > 5 else ''} ({len(removed)} items removed): {advice}."
            )
        raise ValueError(
            f"Datalist {path} splits {source['dataset_dir']}, which now also holds {added[:5]}"
            f"{' ...' if len(added) > 5 else ''} ({len(added)} items added): {advice}."
        )
    logger.warning(
        f"Datalist {path} was split from {recorded.get('dataset_dir')!r} (seed {recorded.get('seed')}); "
        f"dataset_dir is {source['dataset_dir']!r} (seed {source['seed']}): splitting it and replacing the file."
    )
    return False
