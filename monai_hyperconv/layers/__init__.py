"""Hyper-convolution layers and the pieces they are built from."""

from monai_hyperconv.layers import factories  # noqa: F401  (registers Conv["hyper", d], Conv["hypertrans", d])
from monai_hyperconv.layers.fft_conv import FFT_MIN_KERNEL_SIZE, fft_conv
from monai_hyperconv.layers.grid import load_on_new_grid
from monai_hyperconv.layers.hyperconv import (
    HyperConv1d,
    HyperConv2d,
    HyperConv3d,
    HyperConvBase,
    HyperConvNd,
    reinit_hyper_kernels,
)
from monai_hyperconv.layers.hyperconv_transpose import (
    HyperConvTranspose1d,
    HyperConvTranspose2d,
    HyperConvTranspose3d,
    HyperConvTransposeNd,
)
from monai_hyperconv.layers.kernel_net import CoordinateKernelNet, kernel_grid, kernel_net_parameter_count
from monai_hyperconv.layers.param_groups import hyper_param_groups, kernel_step_scale

__all__ = [
    "FFT_MIN_KERNEL_SIZE",
    "CoordinateKernelNet",
    "HyperConv1d",
    "HyperConv2d",
    "HyperConv3d",
    "HyperConvBase",
    "HyperConvNd",
    "HyperConvTranspose1d",
    "HyperConvTranspose2d",
    "HyperConvTranspose3d",
    "HyperConvTransposeNd",
    "fft_conv",
    "hyper_param_groups",
    "kernel_grid",
    "kernel_net_parameter_count",
    "kernel_step_scale",
    "load_on_new_grid",
    "reinit_hyper_kernels",
]
