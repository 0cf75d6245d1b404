"""Where the shared config fragments are: the repository's top-level ``configs/``, installed or in a source tree."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["shared_config_path"]


def shared_config_path(*parts: str) -> Path:
    """The folder or file ``configs/<parts...>`` (e.g. ``shared_config_path("networks", "unet_3x3.yaml")``).

    The wheel ships the repository's ``configs/`` as package data, ``monai_hyperconv/configs`` (``setup.py`` maps
    it); a source checkout (editable install, or run from the repository root) has it next to the package, beside
    ``pyproject.toml``. When neither exists the installed location is returned, so that the caller's file check
    names it.

    Args:
        parts: path components below ``configs/``.
    """
    installed = Path(str(importlib.resources.files("monai_hyperconv"))) / "configs"
    checkout = Path(__file__).resolve().parents[2]
    in_checkout = not installed.is_dir() and (checkout / "pyproject.toml").is_file()
    return (checkout / "configs" if in_checkout else installed).joinpath(*parts)
