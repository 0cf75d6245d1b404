"""The paper's UNet family: regular, dilated and hyper-convolution UNets, optionally non-local, in 1/2/3-D."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from monai_hyperconv.blocks.convolutions import CONV_KINDS, check_input
from monai_hyperconv.blocks.data_consistency import kspace_data_consistency
from monai_hyperconv.blocks.unet_blocks import PaperDecoder, PaperEncoder, chain_receptive_field, paper_non_local_block
from monai_hyperconv.layers.materialize import scriptable_copy
from monai_hyperconv.utils.flags import as_bool

__all__ = ["PaperUNet", "unet_channels", "unet_conv_settings"]


def unet_channels(channels: int | Sequence[int], levels: int = 3) -> tuple[int, ...]:
    """Channels per scale: an int N gives N, 2N, 4N, ... (``levels`` pools, so ``levels + 1`` scales); a sequence
    is taken as it is (its length - 1 pools)."""
    if isinstance(channels, int):
        widths = tuple(channels * 2**i for i in range(levels + 1))
    else:
        widths = tuple(int(c) for c in channels)
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"channels must be a positive int or at least two positive ints, got {channels}.")
    return widths


def unet_conv_settings(
    conv: str, kernel_size: int, dilation: int | None, up_kernel_size: int | None
) -> tuple[int, int]:
    """The dilation and post-upsample kernel size a conv kind implies when they are not given.

    ``"dilated"`` defaults to dilation 2 (the 5×5 receptive field from 3×3 kernels), the others to 1. The
    post-upsample convolution is 3×3 for regular kinds, as in the released code (which is what makes the regular
    5×5 UNet 5.3M), and ``kernel_size`` for hyper, where every convolution but the output one is a k×k hyper one.
    """
    if conv not in CONV_KINDS:
        raise ValueError(f"conv must be one of {CONV_KINDS}, got {conv!r}.")
    if dilation is None:
        dilation = 2 if conv == "dilated" else 1
    if up_kernel_size is None:
        up_kernel_size = kernel_size if conv == "hyper" else 3
    return int(dilation), int(up_kernel_size)


class PaperUNet(nn.Module):
    """UNet of Ma et al. (MedIA 2023): regular, dilated or hyper convolutions, optional non-local bottleneck.

    Three 2× max-pool levels (by default), two convolution + batch norm + ReLU per scale, channels doubled after
    each pool (``channels=32`` gives 32, 64, 128, 256). The decoder upsamples (nearest), applies one convolution,
    concatenates the skip and applies two convolutions; a regular 1×1 convolution maps to ``out_channels``
    logits. Dropout (element-wise) sits between the two bottleneck convolutions, where the released regular UNet
    puts it; the released hyper variant also drops out inside every block, which we do not copy so that all
    variants differ only by their convolutions. For the same reason the post-upsample convolution has batch norm
    and ReLU in every variant (the released regular UNet has no batch norm there, its hyper UNet has), and the
    released hyper UNet's extra input hyper-convolution (1 → N/2 channels, about 0.1% of its parameters) is left out.

    Parameters at 32 channels, one input and one output channel (2-D): regular 3×3 2.14M, regular 5×5 5.30M
    (post-upsample conv 3×3), dilated 2.14M, non-local 3×3 2.34M (MONAI's ``SpatialAttentionBlock`` without output projection,
    0.20M).
    A hyper-convolution holds ``(N_L + 1)·Nin·Nout + Σ_j (N_j + 1)·N_{j+1} + Nout`` parameters (eq. 3 plus its
    bias), whatever its kernel size. The 17 hyper convolutions of the network (8 encoder, 3 post-upsample, 6 decoder)
    have ``Σ Nin·Nout = 237,600`` at 32 channels, so the network holds ``(N_L + 1) × 237,600``, plus the kernel
    networks' hidden layers, 17 × (320 + 17·N_L), plus 1,632 biases, 3,264 batch-norm weights and the 33 of the 1×1
    output: 0.72M, 1.20M, 2.15M for N_L = 2, 4, 8 with any kernel size (paper: 0.73M,
    1.2M, 2.2M). A regular k×k convolution holds ``k²·Nin·Nout``, so N_L = 8 matches a 3×3 UNet and N_L = 24 a
    5×5 one (5.9M; 5.3M with the post-upsample convolutions at 3×3).

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels (logits, no activation).
        channels: first-scale channels (doubled after each of 3 pools) or the channels of every scale.
        conv: ``"regular"``, ``"dilated"`` or ``"hyper"``.
        kernel_size: kernel size of every convolution except the output one (and, for regular kinds, the
            post-upsample one).
        dilation: dilation of the two-convolution blocks; None: 2 for ``"dilated"``, else 1.
        up_kernel_size: kernel size of the post-upsample convolutions; None: 3 for regular kinds, ``kernel_size``
            for hyper.
        hidden_channels: kernel-network widths of hyper convolutions (the last is N_L).
        non_local: add a non-local self-attention block after the bottleneck.
        dropout: dropout probability between the bottleneck convolutions.
        residual: add the input to the output (``x + net(x)``: the network learns the correction, as image-to-image
            networks of CS-MRI commonly do); needs ``in_channels == out_channels``. False (the paper's network)
            changes nothing, parameters included.

    ``forward(x, kspace=None, mask=None)``: given the measured k-space and its sampling mask (CS-MRI), the output keeps
    the measured k-space samples and takes only the unmeasured ones from the network
    (:func:`~monai_hyperconv.blocks.kspace_data_consistency`, after the residual; not the paper's network). Without
    them (the default) the output is the network's own.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: int | Sequence[int] = 32,
        conv: str = "regular",
        kernel_size: int = 3,
        dilation: int | None = None,
        up_kernel_size: int | None = None,
        hidden_channels: Sequence[int] = (16, 16, 4),
        non_local: bool = False,
        dropout: float = 0.5,
        residual: bool = False,
    ) -> None:
        super().__init__()
        # flags may come from a bundle's command line as strings ("false" must mean False)
        residual, non_local = as_bool(residual, "residual"), as_bool(non_local, "non_local")
        if residual and in_channels != out_channels:
            raise ValueError(
                f"residual=True adds the input to the output: in_channels ({in_channels}) must equal out_channels "
                f"({out_channels})."
            )
        self.residual = residual
        widths = unet_channels(channels)
        dilation, up_kernel_size = unet_conv_settings(conv, kernel_size, dilation, up_kernel_size)
        self.spatial_dims, self.in_channels, self.out_channels = spatial_dims, in_channels, out_channels
        self.pools = len(widths) - 1
        hidden = tuple(hidden_channels)
        self.encoder = PaperEncoder(conv, spatial_dims, in_channels, widths, kernel_size, dilation, hidden, dropout)
        self.attention = paper_non_local_block(spatial_dims, widths[-1]) if non_local else nn.Identity()
        self.decoder = PaperDecoder(conv, spatial_dims, widths, kernel_size, dilation, up_kernel_size, hidden)
        self.head = Conv[Conv.CONV, spatial_dims](widths[0], out_channels, kernel_size=1)

    def forward(
        self, x: torch.Tensor, kspace: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_input(self, x, self.spatial_dims, self.in_channels)
            check_divisible(self, x, self.pools)
        skips, y = self.encoder(x)
        y = self.head(self.decoder(skips, self.attention(y)))
        if self.residual:
            y = x + y
        if kspace is None and mask is None:
            return y
        if kspace is None or mask is None:
            raise ValueError("PaperUNet: data consistency needs both the measured kspace and its sampling mask.")
        return kspace_data_consistency(y, kspace, mask, self.spatial_dims)

    def __prepare_scriptable__(self) -> nn.Module:
        """``torch.jit.script`` compiles a materialized copy (:func:`~monai_hyperconv.layers.materialize.scriptable_copy`)."""
        return scriptable_copy(self)

    def receptive_field(self) -> int | None:
        """The paper's receptive field: of the encoder's bottleneck output, in pixels; None ("all") when non-local."""
        if not isinstance(self.attention, nn.Identity):
            return None
        return chain_receptive_field(self.encoder.receptive_field_layers())


def check_divisible(module: nn.Module, x: torch.Tensor, pools: int) -> None:
    """Skips and upsampled maps only align when every spatial size divides by 2**pools."""
    if torch.jit.is_tracing():
        return
    if any(s % 2**pools for s in x.shape[2:]):
        raise ValueError(
            f"{type(module).__name__} pools {pools} times: every spatial size must divide by {2**pools}, "
            f"got {tuple(x.shape[2:])}."
        )
