"""Input checks shared by the bundles: every error names the file (or key) and what was expected.

(The file checks ``require_files`` / ``ensure_writable_dir`` live in :mod:`monai_hyperconv.utils.files`.) The functions raise ``ValueError`` / ``FileNotFoundError`` / ``PermissionError`` with messages a user can act on;
:class:`CheckImageLabeld` applies them inside a MONAI transform chain, reading the file names from the
``MetaTensor`` metadata that ``LoadImaged`` attaches.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from nibabel.orientations import aff2axcodes

from monai_hyperconv.utils.files import source_name

__all__ = [
    "CheckImageLabeld",
    "check_affine",
    "check_dimensions",
    "check_finite",
    "check_label_values",
    "check_same_spatial_shape",
]


def check_finite(array, source: str, key: str = "image") -> None:
    """Raise ``ValueError`` when ``array`` holds NaN or infinite values, naming the source file and key."""
    arr = torch.as_tensor(array)
    if arr.is_floating_point():
        finite = torch.isfinite(arr)
        if not bool(finite.all()):
            raise ValueError(
                f"{source}: '{key}' has {int((~finite).sum())} NaN or infinite voxels; expected finite values."
            )


def check_dimensions(array, source: str, key: str, channels: int | None, spatial_dims: int | None) -> None:
    """Raise ``ValueError`` when a channel-first array has another channel count or number of spatial dimensions.

    A 4D NIfTI where a 3D volume is expected loads as a multi-channel volume and would only fail at batch collation.
    """
    shape = tuple(array.shape)
    n_spatial, n_channels = len(shape) - 1, shape[0]
    if (spatial_dims is not None and n_spatial != spatial_dims) or (channels is not None and n_channels != channels):
        raise ValueError(
            f"{source}: '{key}' has shape {shape[1:]} with {n_channels} channel(s); expected "
            f"{spatial_dims if spatial_dims is not None else 'any number of'} spatial dimensions and "
            f"{channels if channels is not None else 'any number of'} channel(s) (e.g. a 3D volume, not 4D)."
        )


def _affine(data) -> np.ndarray | None:
    affine = getattr(data, "affine", None)
    return None if affine is None else np.asarray(torch.as_tensor(affine, dtype=torch.float64).cpu())


def check_affine(image, label, image_source: str, label_source: str | None = None) -> None:
    """Raise ``ValueError`` when the image's voxel-to-world matrix is singular or not finite (no orientation), or
    when the label's orientation differs from the image's (its voxels would not lie on the image's)."""
    affine = _affine(image)
    if affine is None:
        return
    n = affine.shape[0] - 1  # (n + 1) x (n + 1) homogeneous matrix of n spatial dimensions
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:n, :n])) < 1e-12:
        raise ValueError(
            f"{image_source}: the voxel-to-world matrix (affine) is singular or not finite, so the orientation is "
            f"unknown; expected an invertible affine (check the header's sform/qform)."
        )
    other = _affine(label) if label is not None else None
    comparable = (
        other is not None
        and other.shape == affine.shape
        and np.isfinite(other).all()
        and abs(np.linalg.det(other[:n, :n])) > 1e-12
    )
    if comparable and aff2axcodes(affine) != aff2axcodes(other):
        raise ValueError(
            f"Orientation mismatch: {image_source} is {''.join(aff2axcodes(affine))} but {label_source} is "
            f"{''.join(aff2axcodes(other))}; expected the label in the image's orientation."
        )


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

    Also checks, when given, the image's channel count and number of spatial dimensions, and that its affine gives
    an orientation, the label's the same.

    Args:
        keys: ``(image_key, label_key)``; a missing label key (inference) checks the image only.
        allowed_labels: the label values the dataset may hold (e.g. ``(0, 1, 2)`` for LiTS).
        allow_missing_keys: passed to ``MapTransform``.
        channels: the image channels the network takes (``in_channels``); None: any.
        spatial_dims: the image's spatial dimensions (3 for volumes that are sliced later); None: any.
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        allowed_labels: Sequence[int] = (0, 1),
        allow_missing_keys=True,
        channels: int | None = None,
        spatial_dims: int | None = None,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"CheckImageLabeld expects keys (image_key, label_key), got {self.keys}.")
        self.allowed_labels = tuple(int(v) for v in allowed_labels)
        self.channels = None if channels is None else int(channels)
        self.spatial_dims = None if spatial_dims is None else int(spatial_dims)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        image_key, label_key = self.keys
        image = d[image_key]
        image_src = source_name(image, default=f"<{image_key}>")
        check_dimensions(image, image_src, str(image_key), self.channels, self.spatial_dims)
        check_finite(image, image_src, str(image_key))
        label = d.get(label_key)
        label_src = source_name(label, default=f"<{label_key}>") if label is not None else None
        check_affine(image, label, image_src, label_src)
        if label is not None:
            check_dimensions(label, label_src, str(label_key), 1, self.spatial_dims)
            check_same_spatial_shape(image, label, image_src, label_src)
            check_label_values(label, self.allowed_labels, label_src, str(label_key))
        return d
