"""Flag parsing for bundle ids: one on/off value, whether it came from YAML or the command line."""

from __future__ import annotations

__all__ = ["as_bool", "as_optional_number"]

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


def as_optional_number(value, name: str = "value") -> float | None:
    """A bundle's numeric id that may be off, as a float or None, whether it came from YAML or the command line.

    ``--train_time_limit null`` arrives as the *string* ``"null"`` (and MONAI drops a bare ``None``), so
    ``null`` / ``none`` / empty strings read as None, numeric strings as numbers.

    Raises:
        ValueError: naming ``name`` for anything else, or a negative or non-finite number.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none", "")):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds or null, got {value!r}.") from None
    if not (number >= 0 and number != float("inf")):
        raise ValueError(f"{name} must be a non-negative finite number or null, got {value!r}.")
    return number
