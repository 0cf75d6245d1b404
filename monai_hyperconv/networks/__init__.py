"""The paper's networks and baselines: the UNet family (regular, dilated, hyper; optionally non-local), the flat
dilated and Hyper-CNNs, the multi-branch UNet and a compact HyperSeg, all ``spatial_dims``-generic; and
:func:`init_output_bias`, which starts a network's sigmoid outputs at a foreground prior."""

from monai_hyperconv.networks.flat import FlatDilatedCNN, FlatHyperCNN, FlatResidualBlock, FlatResidualCNN
from monai_hyperconv.networks.hyperseg import HyperSegDecoderBlock, HyperSegNet
from monai_hyperconv.networks.init import init_output_bias
from monai_hyperconv.networks.multibranch import MultiBranchUNet
from monai_hyperconv.networks.receptive_field import receptive_field
from monai_hyperconv.networks.unet import PaperUNet

__all__ = [
    "FlatDilatedCNN",
    "FlatHyperCNN",
    "FlatResidualBlock",
    "FlatResidualCNN",
    "HyperSegDecoderBlock",
    "HyperSegNet",
    "MultiBranchUNet",
    "PaperUNet",
    "init_output_bias",
    "receptive_field",
]
