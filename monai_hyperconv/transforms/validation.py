"""Input checks shared by the bundles: every error names the file (or key) and what was expected.

(The file checks ``require_files`` / ``ensure_writable_dir`` live in :mod:`monai_hyperconv.utils.files`.) The functions raise ``ValueError`` / ``FileNotFoundError`` / ``PermissionError`` with messages a user can act on;
:class:`CheckImageLabeld` applies them inside a MONAI transform chain, reading the file names from the
``MetaTensor`` metadata that ``LoadImaged`` attaches.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from nibabel.orientations import aff2axcodes

from monai_hyperconv.utils.files import source_name

__all__ = [
    "SOURCE_FILES",
    "CheckImageLabeld",
    "check_affine",
    "check_dimensions",
    "check_finite",
    "check_label_values",
    "check_min_size",
    "check_not_constant",
    "check_real_valued",
    "check_same_affine",
    "check_same_spatial_shape",
]

#: metadata key under which :class:`CheckedLoadImaged` records the files of a multi-file stack, one per channel
SOURCE_FILES = "source_files"
#: how far two affines may differ and still describe one grid (mm): float32 headers round at ~1e-5 mm
AFFINE_TOLERANCE_MM = 1e-3


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
    when the label's differs from the image's: another orientation, or an origin or voxel size off by more than
    :data:`AFFINE_TOLERANCE_MM` (:func:`check_same_affine`; its voxels would not lie on the image's)."""
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
    if comparable:
        check_same_affine(affine, other, image_source, label_source)


def _voxel_sizes(affine: np.ndarray) -> str:
    n = affine.shape[0] - 1
    return "(" + ", ".join(f"{v:.4g}" for v in np.linalg.norm(affine[:n, :n], axis=0)) + ") mm"


def check_same_affine(affine, other, source: str, other_source: str, tolerance_mm: float = AFFINE_TOLERANCE_MM) -> None:
    """Raise ``ValueError`` naming both files when two voxel-to-world matrices differ by more than ``tolerance_mm``
    (in the origin, or in any voxel axis over the size of a voxel): their voxels do not lie on one grid.

    The message gives the origin shift in mm and both voxel sizes: a label shifted by 30 mm, or with 1.5x the voxel
    size, has the same orientation codes and shape but marks the wrong voxels.
    """
    a = np.asarray(torch.as_tensor(affine, dtype=torch.float64).cpu())
    b = np.asarray(torch.as_tensor(other, dtype=torch.float64).cpu())
    if a.shape != b.shape:
        raise ValueError(f"Affine mismatch: {source} is {a.shape} but {other_source} is {b.shape}; expected the same.")
    n = a.shape[0] - 1
    if np.abs(a[:n, : n + 1] - b[:n, : n + 1]).max() <= tolerance_mm:
        return
    shift = float(np.linalg.norm(a[:n, n] - b[:n, n]))
    raise ValueError(
        f"Affine mismatch: {other_source} does not lie on the grid of {source}: origin shifted by {shift:.4g} mm, "
        f"voxel size {_voxel_sizes(b)} vs {_voxel_sizes(a)}; expected the same voxel-to-world matrix (within "
        f"{tolerance_mm:g} mm; resample one onto the other)."
    )


def check_not_constant(array, sources: Sequence[str], key: str = "image") -> None:
    """Raise ``ValueError`` naming the file of the first channel of a channel-first ``array`` that holds one value
    everywhere (an all-zero or blank scan): it carries nothing to learn or predict from, and z-scoring divides by 0.

    Args:
        array: channel-first image.
        sources: the file of each channel (one name for all channels is repeated).
        key: the data key, for the message.
    """
    arr = torch.as_tensor(array)
    flat = arr.reshape(arr.shape[0], -1)
    constant = (flat.amax(1) == flat.amin(1)).nonzero().flatten().tolist()
    if constant:
        c = constant[0]
        source = sources[c] if c < len(sources) else sources[0]
        raise ValueError(
            f"{source}: '{key}' (channel {c}) holds the single value {float(flat[c, 0]):g} everywhere; expected an "
            "image with contrast (a blank or all-zero scan?)."
        )


def check_min_size(array, affine, source: str, min_size: int, axial_min_size: int | None = None) -> None:
    """Raise ``ValueError`` naming the file when a channel-first 3D ``array`` has fewer than ``min_size`` voxels
    along an axis the network slices across (``axial_min_size`` along the axial one, found from ``affine``).

    A 1-slice "volume" otherwise pads to the network's size and trains on slices one voxel wide.
    """
    spatial = tuple(int(s) for s in array.shape[1:])
    axial_min = min_size if axial_min_size is None else axial_min_size
    codes = aff2axcodes(np.asarray(torch.as_tensor(affine, dtype=torch.float64).cpu())) if affine is not None else ()
    needed = [axial_min if i < len(codes) and codes[i] in ("S", "I") else min_size for i in range(len(spatial))]
    if any(s < m for s, m in zip(spatial, needed)):
        raise ValueError(
            f"{source}: spatial shape {spatial} is too small for the network; expected at least {tuple(needed)} "
            f"voxels ({min_size} = 2^pools of the network across every sliced axis, {axial_min} along the axial one)."
        )


def check_real_valued(path: str) -> None:
    """Raise ``ValueError`` naming a NIfTI file whose header stores complex voxels: loaders cast them to float and
    drop the imaginary part without a word. Other files are not looked at."""
    if not str(path).endswith((".nii", ".nii.gz")) or not os.path.isfile(path):
        return
    try:
        dtype = nib.load(path).get_data_dtype()
    except (
        OSError,
        EOFError,
        ValueError,
        nib.filebasedimages.ImageFileError,
    ):  # the loader reports it, naming the file
        return
    if dtype.kind == "c":
        raise ValueError(
            f"{path}: complex-valued voxels ({dtype}); expected a real-valued image (save the magnitude, abs(), of a "
            "complex reconstruction)."
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

    Also checks that no image channel is constant (naming that channel's file, from :data:`SOURCE_FILES` for
    multi-file stacks), that the affine gives an orientation and the label's is the same (within
    :data:`AFFINE_TOLERANCE_MM`), and, when given, the image's channel count, number of spatial dimensions and
    minimum size.

    Args:
        keys: ``(image_key, label_key)``; a missing label key (inference) checks the image only.
        allowed_labels: the label values the dataset may hold (e.g. ``(0, 1, 2)`` for LiTS).
        allow_missing_keys: passed to ``MapTransform``.
        channels: the image channels the network takes (``in_channels``); None: any.
        spatial_dims: the image's spatial dimensions (3 for volumes that are sliced later); None: any.
        min_size: voxels the image needs along every axis the network slices across (the network's 2^pools,
            :func:`~monai_hyperconv.utils.preflight.min_input_size`); None: any size.
        axial_min_size: voxels needed along the axial axis (1 when only axial slices are taken); None: ``min_size``.
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        allowed_labels: Sequence[int] = (0, 1),
        allow_missing_keys=True,
        channels: int | None = None,
        spatial_dims: int | None = None,
        min_size: int | None = None,
        axial_min_size: int | None = None,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"CheckImageLabeld expects keys (image_key, label_key), got {self.keys}.")
        self.allowed_labels = tuple(int(v) for v in allowed_labels)
        self.channels = None if channels is None else int(channels)
        self.spatial_dims = None if spatial_dims is None else int(spatial_dims)
        self.min_size = None if min_size is None else int(min_size)
        self.axial_min_size = None if axial_min_size is None else int(axial_min_size)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        image_key, label_key = self.keys
        image = d[image_key]
        image_src = source_name(image, default=f"<{image_key}>")
        check_dimensions(image, image_src, str(image_key), self.channels, self.spatial_dims)
        check_finite(image, image_src, str(image_key))
        if self.min_size is not None:
            check_min_size(image, _affine(image), image_src, self.min_size, self.axial_min_size)
        files = (getattr(image, "meta", None) or {}).get(SOURCE_FILES) or [image_src]
        check_not_constant(image, [str(f) for f in files], str(image_key))
        label = d.get(label_key)
        label_src = source_name(label, default=f"<{label_key}>") if label is not None else None
        check_affine(image, label, image_src, label_src)
        if label is not None:
            check_dimensions(label, label_src, str(label_key), 1, self.spatial_dims)
            check_same_spatial_shape(image, label, image_src, label_src)
            check_label_values(label, self.allowed_labels, label_src, str(label_key))
        return d
