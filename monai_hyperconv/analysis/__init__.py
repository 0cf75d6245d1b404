"""Kernel analysis (smoothness, recapitulation) and paper-style comparison reports.

Command line: ``python -m monai_hyperconv.analysis {kernels,recap,compare} --help``.
"""

from monai_hyperconv.analysis.checkpoint import build_bundle_network, extract_state_dict, load_bundle_network
from monai_hyperconv.analysis.commands import analyze_kernels, analyze_recapitulation
from monai_hyperconv.analysis.compare import ComparisonRunner, Evaluation, ModelSpec, make_runner, run_comparison
from monai_hyperconv.analysis.recapitulation import KernelFit, fit_kernel_net, recapitulate
from monai_hyperconv.analysis.smoothness import (
    ConvKernel,
    conv_kernels,
    kernel_laplacian,
    layer_smoothness,
    mean_abs_laplacian,
)

__all__ = [
    "ComparisonRunner",
    "ConvKernel",
    "Evaluation",
    "KernelFit",
    "ModelSpec",
    "analyze_kernels",
    "analyze_recapitulation",
    "build_bundle_network",
    "conv_kernels",
    "extract_state_dict",
    "fit_kernel_net",
    "kernel_laplacian",
    "layer_smoothness",
    "load_bundle_network",
    "make_runner",
    "mean_abs_laplacian",
    "recapitulate",
    "run_comparison",
]
