"""Registration with MONAI's layer factories: ``Conv["hyper", d]`` gives ``HyperConv{d}d`` and
``Conv["hypertrans", d]`` gives ``HyperConvTranspose{d}d`` (MONAI's own names are ``conv`` and ``convtrans``)."""

from __future__ import annotations

from monai.networks.layers.factories import Conv
from torch import nn

from monai_hyperconv.layers.hyperconv import HyperConv1d, HyperConv2d, HyperConv3d, HyperConvNd
from monai_hyperconv.layers.hyperconv_transpose import (
    HyperConvTranspose1d,
    HyperConvTranspose2d,
    HyperConvTranspose3d,
    HyperConvTransposeNd,
)

__all__ = ["REGULAR_CONV_TRANSPOSE_TYPES", "REGULAR_CONV_TYPES", "hyper_conv_factory", "hyper_conv_transpose_factory"]

# torch's regular convolutions by their public classes (the lazy ones subclass these), for isinstance checks
REGULAR_CONV_TRANSPOSE_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
REGULAR_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, *REGULAR_CONV_TRANSPOSE_TYPES)


def hyper_conv_factory(dim: int) -> type[HyperConvNd]:
    """Hyper-convolution class for ``dim`` spatial dimensions (1, 2 or 3)."""
    types = (HyperConv1d, HyperConv2d, HyperConv3d)
    if dim not in (1, 2, 3):
        raise ValueError(f"Hyper-convolutions exist for 1, 2 or 3 spatial dims, got {dim}.")
    return types[dim - 1]


def hyper_conv_transpose_factory(dim: int) -> type[HyperConvTransposeNd]:
    """Transposed hyper-convolution class for ``dim`` spatial dimensions (1, 2 or 3)."""
    types = (HyperConvTranspose1d, HyperConvTranspose2d, HyperConvTranspose3d)
    if dim not in (1, 2, 3):
        raise ValueError(f"Transposed hyper-convolutions exist for 1, 2 or 3 spatial dims, got {dim}.")
    return types[dim - 1]


# ComponentStore.add overwrites an existing entry, so re-importing (e.g. importlib.reload) is harmless.
Conv.add_factory_callable("hyper", hyper_conv_factory, "Hyper-convolution (monai_hyperconv)")
Conv.add_factory_callable("hypertrans", hyper_conv_transpose_factory, "Transposed hyper-convolution (monai_hyperconv)")
