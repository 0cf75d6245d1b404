"""Encoder, decoder and bottleneck attention of the paper's UNet family (shared by the single- and multi-branch UNets).

Read against the released code (Keras ``unet_vanilla.py``): each scale has two convolutions with batch norm and ReLU,
scales are joined by 2× max-pooling; the decoder upsamples (nearest, as Keras ``UpSampling2D``), convolves once,
concatenates the skip and convolves twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.networks.blocks import SpatialAttentionBlock
from monai.networks.layers.factories import Pool
from torch import nn

from monai_hyperconv.blocks.convolutions import PaperConvBlock, PaperDoubleConv
from monai_hyperconv.layers import HyperConvBase
from monai_hyperconv.layers.factories import REGULAR_CONV_TYPES

__all__ = [
    "PaperDecoder",
    "PaperEncoder",
    "PaperNonLocalBlock",
    "PaperUpBlock",
    "chain_receptive_field",
    "conv_layers",
    "paper_non_local_block",
]


class PaperEncoder(nn.Module):
    """``len(channels) - 1`` scales of two convolutions each, max-pooled in between, then the two-convolution
    bottleneck at ``channels[-1]``.

    Args:
        kind, spatial_dims, kernel_size, dilation, hidden_channels: as :class:`PaperDoubleConv`.
        in_channels: input channels.
        channels: channels per scale, finest first, the bottleneck last (e.g. 32, 64, 128, 256).
        dropout: dropout between the two bottleneck convolutions (where the released regular UNet has it).

    ``forward`` returns the skip features of every pooled scale (finest first) and the bottleneck features.
    """

    def __init__(
        self,
        kind: str,
        spatial_dims: int,
        in_channels: int,
        channels: Sequence[int],
        kernel_size: int = 3,
        dilation: int = 1,
        hidden_channels: Sequence[int] = (16, 16, 4),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        conv_args = (kernel_size, dilation, hidden_channels)
        widths = [in_channels, *channels]
        self.levels = nn.ModuleList(
            PaperDoubleConv(kind, spatial_dims, widths[i], widths[i + 1], *conv_args) for i in range(len(channels) - 1)
        )
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2)
        self.bottleneck = PaperDoubleConv(kind, spatial_dims, widths[-2], widths[-1], *conv_args, dropout=dropout)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = []
        for level in self.levels:
            x = level(x)
            skips.append(x)
            x = self.pool(x)
        return skips, self.bottleneck(x)

    def receptive_field_layers(self) -> list[tuple[int, int]]:
        """``(extent, stride)`` of every layer on the path to the bottleneck output, along the first axis."""
        layers = []
        for level in self.levels:
            layers += conv_layers(level)
            layers.append((2, 2))  # the max-pool
        return layers + conv_layers(self.bottleneck)


class PaperUpBlock(nn.Module):
    """Upsample ×2 (nearest), one convolution to the skip's channels, concatenate the skip, two convolutions.

    Args:
        kind, spatial_dims, hidden_channels: as :class:`PaperDoubleConv`.
        in_channels: channels of the coarser input.
        out_channels: channels of the skip and of the output.
        kernel_size, dilation: of the two convolutions after the concatenation.
        up_kernel_size: of the convolution after upsampling (undilated).
    """

    def __init__(
        self,
        kind: str,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        up_kernel_size: int = 3,
        hidden_channels: Sequence[int] = (16, 16, 4),
    ) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_conv = PaperConvBlock(kind, spatial_dims, in_channels, out_channels, up_kernel_size, 1, hidden_channels)
        self.convs = PaperDoubleConv(
            kind, spatial_dims, 2 * out_channels, out_channels, kernel_size, dilation, hidden_channels
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up_conv(self.upsample(x))
        return self.convs(torch.cat([skip, x], dim=1))


class PaperDecoder(nn.Module):
    """One :class:`PaperUpBlock` per skip, coarsest first; ``channels`` as in :class:`PaperEncoder`."""

    def __init__(
        self,
        kind: str,
        spatial_dims: int,
        channels: Sequence[int],
        kernel_size: int = 3,
        dilation: int = 1,
        up_kernel_size: int = 3,
        hidden_channels: Sequence[int] = (16, 16, 4),
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            PaperUpBlock(
                kind, spatial_dims, channels[i + 1], channels[i], kernel_size, dilation, up_kernel_size, hidden_channels
            )
            for i in reversed(range(len(channels) - 1))
        )

    def forward(self, skips: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):  # coarsest skip first (TorchScript has no reversed())
            x = block(x, skips[len(skips) - 1 - i])
        return x


def paper_non_local_block(spatial_dims: int, channels: int) -> nn.Module:
    """The non-local self-attention block of the bottleneck: MONAI's ``SpatialAttentionBlock`` (group norm, one
    head, query / key / value projections of ``channels`` × ``channels`` with biases, residual sum), without the
    output projection (``include_fc=False``), with at most 32 norm groups that divide ``channels``.

    At 256 channels it holds 197,888 parameters: the +0.2M by which the paper's non-local rows exceed their
    plain rows (UNet 2.1M → 2.3M, Hyper-UNet 1.2M → 1.4M). With the output projection it would hold 263,680
    (2.41M / 1.46M, at the 5% edge); the released Keras block (dot product, 128 intermediate channels) 131,072
    (2.27M / 1.33M).
    """
    return PaperNonLocalBlock(spatial_dims, channels, norm_num_groups=math.gcd(32, channels), include_fc=False)


class PaperNonLocalBlock(SpatialAttentionBlock):
    """MONAI's ``SpatialAttentionBlock`` with a forward that TorchScript compiles (same parameters, state dict keys
    and outputs): MONAI's ``x.reshape(*shape[:2], -1)`` fails to script ("cannot statically infer the expected size
    of a list")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).flatten(2).transpose(1, 2)  # "b c h w d -> b (h w d) c"
        h = self.attn(h).transpose(1, 2).reshape(x.shape)  # "b (h w d) c -> b c h w d"
        return h + x


def conv_layers(module: nn.Module) -> list[tuple[int, int]]:
    """``(extent, stride)`` along the first axis of every (regular or hyper) convolution in ``module``, in
    registration order. Read from the layers, so it follows ``hyperize(..., kernel_size=k)`` and ``materialize``."""
    return [
        (m.dilation[0] * (m.kernel_size[0] - 1) + 1, m.stride[0])
        for m in module.modules()
        if isinstance(m, (*REGULAR_CONV_TYPES, HyperConvBase))
    ]


def chain_receptive_field(layers: Sequence[tuple[int, int]]) -> int:
    """Receptive field in pixels of a chain of ``(extent, stride)`` layers: ``1 + Σ (extent - 1) · jump``."""
    field, jump = 1, 1
    for extent, stride in layers:
        field += (extent - 1) * jump
        jump *= stride
    return field
