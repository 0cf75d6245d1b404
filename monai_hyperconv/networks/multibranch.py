"""Multi-branch UNet (Aslani et al., NeuroImage 2019) for multi-contrast MS lesion segmentation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from monai_hyperconv.blocks.convolutions import PaperConvBlock, check_input
from monai_hyperconv.blocks.unet_blocks import PaperDecoder, PaperEncoder, chain_receptive_field, paper_non_local_block
from monai_hyperconv.layers.materialize import scriptable_copy
from monai_hyperconv.networks.unet import check_divisible, unet_channels, unet_conv_settings

__all__ = ["MultiBranchUNet"]


class MultiBranchUNet(nn.Module):
    """One UNet encoder branch per input channel (MRI contrast), fused per scale, one UNet decoder.

    Every branch is the encoder of :class:`~monai_hyperconv.networks.PaperUNet` on one contrast. At each scale
    (the skips and the bottleneck) the branches' features are concatenated and fused to that scale's channels by a
    regular 1×1 convolution + batch norm + ReLU, as Aslani et al. fuse their branches by concatenation and
    convolution; the fused skips and bottleneck feed one decoder. Aslani et al.'s branches are ResNet-50
    encoders; here they are the paper's UNet encoders, so that the regular, dilated, hyper and non-local variants
    differ from the single-branch ones only by the branching. Used on 2-D slices of every orthogonal plane of the
    3-D volume in the paper; it also runs in 3-D.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: number of contrasts = number of branches.
        out_channels: output logits.
        channels, conv, kernel_size, dilation, up_kernel_size, hidden_channels, non_local, dropout: as
            :class:`~monai_hyperconv.networks.PaperUNet` (the non-local block acts on the fused bottleneck;
            dropout sits in every branch's bottleneck).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 4,
        out_channels: int = 1,
        channels: int | Sequence[int] = 32,
        conv: str = "regular",
        kernel_size: int = 3,
        dilation: int | None = None,
        up_kernel_size: int | None = None,
        hidden_channels: Sequence[int] = (16, 16, 4),
        non_local: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        widths = unet_channels(channels)
        dilation, up_kernel_size = unet_conv_settings(conv, kernel_size, dilation, up_kernel_size)
        self.spatial_dims, self.in_channels, self.out_channels = spatial_dims, in_channels, out_channels
        self.pools = len(widths) - 1
        hidden = tuple(hidden_channels)
        self.branches = nn.ModuleList(
            PaperEncoder(conv, spatial_dims, 1, widths, kernel_size, dilation, hidden, dropout)
            for _ in range(in_channels)
        )
        self.fusions = nn.ModuleList(
            PaperConvBlock("regular", spatial_dims, in_channels * w, w, kernel_size=1) for w in widths
        )
        self.attention = paper_non_local_block(spatial_dims, widths[-1]) if non_local else nn.Identity()
        self.decoder = PaperDecoder(conv, spatial_dims, widths, kernel_size, dilation, up_kernel_size, hidden)
        self.head = Conv[Conv.CONV, spatial_dims](widths[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_input(self, x, self.spatial_dims, self.in_channels)
            check_divisible(self, x, self.pools)
        # per scale (the skips, then the bottleneck), every branch's features; loops, as TorchScript compiles them
        per_scale: list[list[torch.Tensor]] = [[] for _ in range(self.pools + 1)]
        for i, branch in enumerate(self.branches):
            skips, bottleneck = branch(x[:, i : i + 1])
            for s in range(self.pools):
                per_scale[s].append(skips[s])
            per_scale[self.pools].append(bottleneck)
        fused: list[torch.Tensor] = []
        for s, fuse in enumerate(self.fusions):
            fused.append(fuse(torch.cat(per_scale[s], dim=1)))
        return self.head(self.decoder(fused[:-1], self.attention(fused[-1])))

    def __prepare_scriptable__(self) -> nn.Module:
        """``torch.jit.script`` compiles a materialized copy (:func:`~monai_hyperconv.layers.materialize.scriptable_copy`)."""
        return scriptable_copy(self)

    def receptive_field(self) -> int | None:
        """Receptive field of the fused bottleneck in pixels (every branch alike); None ("all") when non-local."""
        if not isinstance(self.attention, nn.Identity):
            return None
        return chain_receptive_field(self.branches[0].receptive_field_layers())
