"""Blocks of the paper's networks: convolution + batch norm + ReLU of a chosen kind, UNet encoder / decoder,
the bottleneck's non-local block and HyperSeg's patch-wise dynamic convolution; and the k-space data-consistency
step of CS-MRI reconstruction networks."""

from monai_hyperconv.blocks.convolutions import CONV_KINDS, PaperConvBlock, PaperDoubleConv, make_paper_conv
from monai_hyperconv.blocks.data_consistency import kspace_data_consistency
from monai_hyperconv.blocks.dynamic import PatchwiseDynamicConv
from monai_hyperconv.blocks.unet_blocks import (
    PaperDecoder,
    PaperEncoder,
    PaperUpBlock,
    chain_receptive_field,
    conv_layers,
    paper_non_local_block,
)

__all__ = [
    "CONV_KINDS",
    "PaperConvBlock",
    "PaperDecoder",
    "PaperDoubleConv",
    "PaperEncoder",
    "PaperUpBlock",
    "PatchwiseDynamicConv",
    "chain_receptive_field",
    "conv_layers",
    "kspace_data_consistency",
    "make_paper_conv",
    "paper_non_local_block",
]
