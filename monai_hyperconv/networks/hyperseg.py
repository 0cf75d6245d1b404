"""A compact HyperSeg (Nirkin, Wolf, Hassner, "HyperSeg: Patch-wise Hypernetwork for Real-time Semantic
Segmentation", CVPR 2021), the hyper-network baseline of the paper's Tables 1 and 3."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import ADN, ChannelSELayer
from monai.networks.layers.factories import Conv, Pool
from torch import nn

from monai_hyperconv.blocks.convolutions import PaperConvBlock, PaperDoubleConv, check_input
from monai_hyperconv.blocks.dynamic import PatchwiseDynamicConv
from monai_hyperconv.networks.unet import check_divisible, unet_channels

__all__ = ["HyperSegDecoderBlock", "HyperSegNet"]


class HyperSegDecoderBlock(nn.Module):
    """HyperSeg's meta block, compact: upsample ×2, concatenate the skip, regular 1×1 convolution + batch norm +
    ReLU (mixes channels), patch-wise dynamic depth-wise k×k convolution with weights from the hyper-network
    (mixes space), batch norm + ReLU."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = PaperConvBlock("regular", spatial_dims, in_channels + out_channels, out_channels, kernel_size=1)
        self.dynamic = PatchwiseDynamicConv(spatial_dims, out_channels, kernel_size)
        self.adn = ADN(ordering="NA", in_channels=out_channels, act="relu", norm="batch", norm_dim=spatial_dims)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        x = self.fuse(torch.cat([skip, self.upsample(x)], dim=1))
        return self.adn(self.dynamic(x, signal))


class HyperSegNet(nn.Module):
    """Encoder → hyper-network head → decoder whose convolutions' weights the head produces, per patch.

    As in HyperSeg, the encoder's deepest features drive a hyper-network that outputs a *weight signal*: a coarse
    grid (here the bottleneck's, 1/8 of the input size) holding, per cell, the weights of every decoder meta block's
    dynamic convolution; each decoder level convolves each of its patches with the weights of the patch's grid cell.

    Simplified against the paper (said here so the comparison is read right):

    - the encoder is the paper's UNet encoder (two 3×3 conv + batch norm + ReLU per scale, three max-pools) with a
      single-convolution bottleneck, instead of an EfficientNet-B1 / ResNet backbone; its global context comes
      from one squeeze-and-excitation layer at the bottleneck (EfficientNet's blocks carry one each), which makes
      the receptive field "all" as in the paper's Table 1;
    - the hyper-network head is one 1×1 convolution on the bottleneck features, instead of HyperSeg's nested
      U-Net context head;
    - the dynamic convolutions are depth-wise k×k with a bias per channel, after a regular 1×1 convolution that
      fuses the skip (a separable convolution whose spatial part is dynamic), instead of HyperSeg's grouped
      dynamic convolutions, and the decoder input carries no positional encoding channels;
    - no multi-resolution inference tricks or extra output heads.

    At 32 channels, one input and one output channel: 1.23M parameters (paper: 1.2M).

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels, out_channels: input channels and output logits.
        channels: first-scale channels (doubled after each of 3 pools) or the channels of every scale.
        kernel_size: kernel size of the encoder convolutions and of the dynamic convolutions.
        se_reduction: reduction ratio of the squeeze-and-excitation layer.
        dropout: dropout after the bottleneck convolution.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: int | Sequence[int] = 32,
        kernel_size: int = 3,
        se_reduction: int = 16,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        widths = unet_channels(channels)
        self.spatial_dims, self.in_channels, self.out_channels = spatial_dims, in_channels, out_channels
        self.pools = len(widths) - 1
        inputs = [in_channels, *widths]
        self.levels = nn.ModuleList(
            PaperDoubleConv("regular", spatial_dims, inputs[i], widths[i], kernel_size) for i in range(self.pools)
        )
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2)
        self.bottleneck = PaperConvBlock("regular", spatial_dims, widths[-2], widths[-1], kernel_size, dropout=dropout)
        self.context = ChannelSELayer(spatial_dims, widths[-1], r=min(se_reduction, widths[-1]))
        self.decoder = nn.ModuleList(
            HyperSegDecoderBlock(spatial_dims, widths[i + 1], widths[i], kernel_size)
            for i in reversed(range(self.pools))
        )
        self.signal_split = [block.dynamic.signal_channels for block in self.decoder]
        self.hyper_head = Conv[Conv.CONV, spatial_dims](widths[-1], sum(self.signal_split), kernel_size=1)
        self.head = Conv[Conv.CONV, spatial_dims](widths[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_input(self, x, self.spatial_dims, self.in_channels)
            check_divisible(self, x, self.pools)
        skips = []
        for level in self.levels:
            x = level(x)
            skips.append(x)
            x = self.pool(x)
        x = self.context(self.bottleneck(x))
        signals = torch.split(self.hyper_head(x), self.signal_split, dim=1)
        for i, block in enumerate(self.decoder):  # coarsest skip first (TorchScript has no reversed())
            x = block(x, skips[len(skips) - 1 - i], signals[i])
        return self.head(x)

    def receptive_field(self) -> None:
        """None ("all"): the squeeze-and-excitation layer pools over the whole image."""
        return None
