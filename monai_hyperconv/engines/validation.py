"""Input checks shared by the bundles: every error names the file (or key) and what was expected.

The functions raise ``ValueError`` / ``FileNotFoundError`` / ``PermissionError`` with messages a user can act on;
:class:`CheckImageLabeld` applies them inside a MONAI transform chain, reading the file names from the
``MetaTensor`` metadata that ``LoadImaged`` attaches.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = [
    "as_bool",
    "source_name",
    "ensure_writable_dir",
    "require_files",
    "check_finite",
    "check_label_values",
    "check_same_spatial_shape",
    "CheckImageLabeld",
]


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
        PermissionError: naming the folder, when it cannot be created or written.
    """
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"Cannot create the {what} {path!r}: {e.strerror or e}.") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"The {what} {path!r} exists but is not writable.")
    return path


def require_files(paths: Sequence[str | os.PathLike], what: str = "input file") -> None:
    """Raise ``FileNotFoundError`` naming the first path of ``paths`` that is not an existing file."""
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"Missing {what}: {os.fspath(p)!r} does not exist or is not a file.")


def check_finite(array, source: str, key: str = "image") -> None:
    """Raise ``ValueError`` when ``array`` holds NaN or infinite values, naming the source file and key."""
    arr = torch.as_tensor(array)
    if arr.is_floating_point():
        finite = torch.isfinite(arr)
        if not bool(finite.all()):
            raise ValueError(f"{source}: '{key}' has {int((~finite).sum())} NaN or infinite voxels; expected finite values.")


def check_label_values(array, allowed: Sequence[int], source: str, key: str = "label") -> None:
    """Raise ``ValueError`` when ``array`` holds a value outside ``allowed``, listing the offending values."""
    arr = torch.as_tensor(array)
    outside = ~torch.isin(arr, torch.as_tensor(list(allowed), dtype=arr.dtype, device=arr.device))
    if bool(outside.any()):  # only then pay for the unique values, to name them
        bad = torch.unique(arr[outside]).cpu().numpy()
        shown = ", ".join(f"{v:g}" for v in bad[:10].tolist())
        raise ValueError(f"{source}: '{key}' holds values {{{shown}}} outside the expected labels {sorted(allowed)}.")


def check_same_spatial_shape(image, label, image_source: str, label_source: str) -> None:
    """Raise ``ValueError`` when two channel-first arrays differ in spatial shape, naming both files."""
    si, sl = tuple(image.shape[1:]), tuple(label.shape[1:])
    if si != sl:
        raise ValueError(
            f"Shape mismatch: {image_source} has spatial shape {si} but {label_source} has {sl}; expected the same."
        )


class CheckImageLabeld(MapTransform):
    """Check a loaded image / label pair: finite image, labels in ``allowed_labels``, equal spatial shapes.

    Place it right after ``LoadImaged`` + ``EnsureChannelFirstd``, before any resampling, so that the error names the
    files exactly as the user gave them.

    Args:
        keys: ``(image_key, label_key)``; a missing label key (inference) checks the image only.
        allowed_labels: the label values the dataset may hold (e.g. ``(0, 1, 2)`` for LiTS).
        allow_missing_keys: passed to ``MapTransform``.
    """

    def __init__(
        self, keys: KeysCollection = ("image", "label"), allowed_labels: Sequence[int] = (0, 1), allow_missing_keys=True
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"CheckImageLabeld expects keys (image_key, label_key), got {self.keys}.")
        self.allowed_labels = tuple(int(v) for v in allowed_labels)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        image_key, label_key = self.keys
        image = d[image_key]
        image_src = source_name(image, default=f"<{image_key}>")
        check_finite(image, image_src, str(image_key))
        if label_key in d:
            label = d[label_key]
            label_src = source_name(label, default=f"<{label_key}>")
            check_same_spatial_shape(image, label, image_src, label_src)
            check_label_values(label, self.allowed_labels, label_src, str(label_key))
        return d
