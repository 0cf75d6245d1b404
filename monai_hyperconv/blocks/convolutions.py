"""Convolution blocks of the paper's networks: one convolution kind (regular, dilated or hyper) + batch norm + ReLU.

The kind is chosen by name through MONAI's ``Conv`` factory (``Conv["conv", d]`` or ``Conv["hyper", d]``), so every
network in :mod:`monai_hyperconv.networks` swaps regular for hyper convolutions with one constructor argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import ADN
from monai.networks.layers.convutils import same_padding
from monai.networks.layers.factories import Conv
from torch import nn

import monai_hyperconv.layers  # noqa: F401  (registers Conv["hyper", d])

__all__ = ["CONV_KINDS", "PaperConvBlock", "PaperDoubleConv", "make_paper_conv"]

CONV_KINDS = ("regular", "dilated", "hyper")


def make_paper_conv(
    kind: str,
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    dilation: int = 1,
    hidden_channels: Sequence[int] = (16, 16, 4),
) -> nn.Module:
    """A size-preserving (stride 1, "same" padding) convolution of the given kind.

    Args:
        kind: ``"regular"`` or ``"dilated"`` (both a torch ``Conv{d}d``; the kinds differ only in the
            ``dilation`` their networks pass) or ``"hyper"`` (:class:`~monai_hyperconv.layers.HyperConvNd`).
        spatial_dims: 1, 2 or 3.
        in_channels, out_channels: channels.
        kernel_size: odd kernel size (the same along every axis).
        dilation: dilation (1 for an undilated kernel).
        hidden_channels: the hyper kernel network's widths; the last is N_L. Ignored by regular kinds.
    """
    if kind not in CONV_KINDS:
        raise ValueError(f"conv kind must be one of {CONV_KINDS}, got {kind!r}.")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd for a size-preserving convolution, got {kernel_size}.")
    if kind == "hyper":
        return Conv["hyper", spatial_dims](
            in_channels, out_channels, kernel_size, dilation=dilation, hidden_channels=tuple(hidden_channels)
        )
    padding = same_padding(kernel_size, dilation)
    return Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size, padding=padding, dilation=dilation)


class PaperConvBlock(nn.Sequential):
    """Convolution → batch norm → ReLU (→ dropout), MONAI's ``ADN`` with ordering ``"NAD"``.

    Args:
        kind, spatial_dims, in_channels, out_channels, kernel_size, dilation, hidden_channels: as
            :func:`make_paper_conv`.
        dropout: element-wise dropout probability after the activation (Keras ``Dropout``), 0 for none.
    """

    def __init__(
        self,
        kind: str,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        hidden_channels: Sequence[int] = (16, 16, 4),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.add_module(
            "conv",
            make_paper_conv(kind, spatial_dims, in_channels, out_channels, kernel_size, dilation, hidden_channels),
        )
        self.add_module(
            "adn",
            ADN(
                ordering="NAD" if dropout else "NA",
                in_channels=out_channels,
                act="relu",
                norm="batch",
                norm_dim=spatial_dims,
                dropout=dropout or None,
                dropout_dim=1,  # element-wise, as the released Keras Dropout
            ),
        )


class PaperDoubleConv(nn.Sequential):
    """Two :class:`PaperConvBlock` (one scale of the paper's UNet); optional dropout between them.

    The released code puts its dropout after the first convolution's activation of a two-convolution block,
    so ``dropout`` sits there.
    """

    def __init__(
        self,
        kind: str,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        hidden_channels: Sequence[int] = (16, 16, 4),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        args = (kind, spatial_dims)
        conv_args = (kernel_size, dilation, hidden_channels)
        self.add_module("conv_0", PaperConvBlock(*args, in_channels, out_channels, *conv_args, dropout=dropout))
        self.add_module("conv_1", PaperConvBlock(*args, out_channels, out_channels, *conv_args))


def check_input(module: nn.Module, x: torch.Tensor, spatial_dims: int, in_channels: int) -> None:
    """Raise a clear error when ``x`` is not ``(batch, in_channels, *spatial)``."""
    if torch.jit.is_tracing():
        return
    if x.dim() != spatial_dims + 2 or x.shape[1] != in_channels:
        raise ValueError(
            f"{type(module).__name__} expects input (batch, {in_channels}, {spatial_dims} spatial dims), "
            f"got shape {tuple(x.shape)}."
        )
