"""2D slices of cached volumes: decode and preprocess each volume once, then serve its slices as samples.

The paper trains 2D networks on slices of 3D volumes. Loading a NIfTI file per slice would decode every volume
hundreds of times per epoch; :class:`VolumeSliceDataset` instead decodes and preprocesses each volume once (a MONAI
``CacheDataset`` with ``copy_cache=False``), indexes ``(volume, slice)`` pairs into the cached volumes and applies
only the per-slice (random) transform at ``__getitem__``.

Its arguments follow the model-zoo's dataset ids: ``data`` is the datalist (``train#dataset#data``) and
``transform`` the per-sample preprocessing (``train#dataset#transform: '@train#preprocessing'``), so tools that swap
a bundle's data or preprocessing through those ids work on slice datasets too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from monai.data import CacheDataset
from monai.data.meta_tensor import MetaTensor
from monai.transforms import apply_transform
from torch.utils.data import Dataset

__all__ = ["VolumeSliceDataset"]


class VolumeSliceDataset(Dataset):
    """Every slice along ``axis`` of every volume, as a dictionary of channel-first 2D tensors.

    Args:
        data: the volumes. With ``volume_transform``: a datalist (dictionaries of file names, as
            ``LoadImaged`` reads them), decoded and preprocessed once here into a ``CacheDataset``. Without it:
            dictionaries that already hold channel-first volumes ``(C, *spatial)`` under ``keys`` (e.g. a
            ``CacheDataset`` built elsewhere). Each volume is read once here to count its slices; its arrays must
            not be modified later (slices are views).
        volume_transform: applied once per volume before slicing and cached (decoding, orientation, intensity
            window, resizing); None: ``data`` holds the volumes already.
        keys: the keys sliced; other keys are dropped, ``"volume"`` and ``"slice"`` indices are added.
        transform: applied to each slice dictionary (the per-slice preprocessing: augmentation).
        axis: spatial axis along which to slice (-1: the last, the axial axis of RAS volumes).
        dtype: dtype of the returned tensors of ``keys`` (volumes may be cached in a smaller one).
        cache_num_workers: worker threads that fill the volume cache (only with ``volume_transform``).
    """

    def __init__(
        self,
        data: Sequence[Mapping],
        volume_transform: Callable | None = None,
        keys: Sequence[str] = ("image", "label"),
        transform: Callable | None = None,
        axis: int = -1,
        dtype: torch.dtype | None = torch.float32,
        cache_num_workers: int = 0,
    ) -> None:
        self.keys = tuple(keys)
        self.transform = transform
        self.dtype = dtype
        volumes = data
        if volume_transform is not None:
            volumes = CacheDataset(data, transform=volume_transform, copy_cache=False, num_workers=cache_num_workers)
        self.volumes = []
        self.index: list[tuple[int, int]] = []
        for v_idx in range(len(volumes)):
            item = volumes[v_idx]
            arrays = {}
            for k in self.keys:
                a = item[k]
                a = a.as_tensor() if isinstance(a, MetaTensor) else torch.as_tensor(a)
                arrays[k] = a.movedim(axis if axis < 0 else axis + 1, -1)  # slicing axis last
            shapes = {k: tuple(a.shape[1:]) for k, a in arrays.items()}
            if len(set(shapes.values())) != 1:
                raise ValueError(f"Volume {v_idx}: keys {self.keys} have different spatial shapes {shapes}.")
            self.volumes.append(arrays)
            self.index += [(v_idx, s) for s in range(arrays[self.keys[0]].shape[-1])]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        v_idx, s = self.index[i]
        item = {
            k: a[..., s] if self.dtype is None else a[..., s].to(self.dtype) for k, a in self.volumes[v_idx].items()
        }
        item["volume"], item["slice"] = v_idx, s
        return apply_transform(self.transform, item) if self.transform is not None else item
