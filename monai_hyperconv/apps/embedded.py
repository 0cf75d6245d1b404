"""The bundles' embedded (generated) datasets: reused once generated, with a warning when asked for other ones."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping

__all__ = ["warn_if_generated_differently"]

logger = logging.getLogger(__name__)


def warn_if_generated_differently(dataset_dir: str | os.PathLike, marker: str, requested: Mapping) -> dict:
    """Compare the generator arguments recorded in ``dataset_dir/marker`` with ``requested`` ones.

    Embedded data is generated once and reused, so new generator arguments (e.g. more volumes) have no effect
    until the folder is deleted; say so instead of silently training on the old data. Only arguments present on
    both sides are compared (the marker may omit defaults). Returns the differing ``{name: (recorded, requested)}``.
    """
    path = os.path.join(os.fspath(dataset_dir), marker)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            recorded = json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}
    requested = json.loads(json.dumps(dict(requested)))  # tuples -> lists, as the marker stores them
    changed = {k: (recorded[k], v) for k, v in requested.items() if k in recorded and recorded[k] != v}
    if changed:
        logger.warning(
            f"{dataset_dir} holds embedded data generated with other arguments {changed} "
            f"(recorded, requested); reusing it as it is: delete the folder to generate it again."
        )
    return changed
