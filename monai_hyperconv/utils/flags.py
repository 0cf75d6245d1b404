"""Flag parsing for bundle ids: one on/off value, whether it came from YAML or the command line."""

from __future__ import annotations

__all__ = ["as_bool"]

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def as_bool(value, name: str = "flag") -> bool:
    """A bundle's on/off id as a bool, whether it came from YAML (``true``) or the command line.

    ``python -m monai.bundle run --resume false`` passes the *string* ``"false"`` (fire only turns ``False``
    into a bool), which plain truthiness reads as true; this accepts bools, 0 / 1 and true/false, yes/no, on/off
    in any case.

    Raises:
        ValueError: naming ``name`` for anything else.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false, got {value!r}.")
