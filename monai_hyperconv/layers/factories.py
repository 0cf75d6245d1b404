"""Registration with MONAI's layer factories: ``Conv["hyper", d]`` gives ``HyperConv{d}d``."""

from __future__ import annotations

from monai.networks.layers.factories import Conv

from monai_hyperconv.layers.hyperconv import HyperConv1d, HyperConv2d, HyperConv3d, HyperConvNd

__all__ = ["hyper_conv_factory"]


def hyper_conv_factory(dim: int) -> type[HyperConvNd]:
    """Hyper-convolution class for ``dim`` spatial dimensions (1, 2 or 3)."""
    types = (HyperConv1d, HyperConv2d, HyperConv3d)
    if dim not in (1, 2, 3):
        raise ValueError(f"Hyper-convolutions exist for 1, 2 or 3 spatial dims, got {dim}.")
    return types[dim - 1]


# ComponentStore.add overwrites an existing entry, so re-importing (e.g. importlib.reload) is harmless.
Conv.add_factory_callable("hyper", hyper_conv_factory, "Hyper-convolution (monai_hyperconv)")
