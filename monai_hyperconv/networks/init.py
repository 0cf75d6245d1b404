"""Initialisation helpers for bundle networks."""

from __future__ import annotations

import math

import torch
from torch import nn

from monai_hyperconv.layers import HyperConvBase
from monai_hyperconv.utils.distributed import unwrap_module

__all__ = ["init_output_bias"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, HyperConvBase)


def init_output_bias(network: nn.Module, prior: float | None = 0.01) -> nn.Module:
    """Set the bias of the network's last convolution to ``logit(prior)``, so sigmoid outputs start near ``prior``.

    With rare foreground (liver lesions are ~1 % of a slice), a zero bias starts every pixel at probability 0.5:
    the soft Dice loss then sees a huge false-positive mass and Adam, moving each parameter by about the learning
    rate per step, needs thousands of steps to push the background down. Starting at the foreground prior
    (Lin et al., focal loss, 2017) removes that phase. The last convolution in module registration order is the
    output layer of MONAI-style networks (e.g. the 1×1 ``head`` of ``PaperUNet``).

    Args:
        network: the model (``DataParallel`` / ``DistributedDataParallel`` wrappers are looked through).
        prior: the initial foreground probability in (0, 1); None leaves the network unchanged.

    Returns:
        the same network.

    Raises:
        ValueError: when ``prior`` is outside (0, 1) or the network has no convolution with a bias.
    """
    if prior is None:
        return network
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must lie in (0, 1), got {prior}.")
    convs = [m for m in unwrap_module(network).modules() if isinstance(m, _CONVS) and m.bias is not None]
    if not convs:
        raise ValueError(f"{type(network).__name__} has no convolution with a bias to initialise.")
    with torch.no_grad():
        convs[-1].bias.fill_(math.log(prior / (1.0 - prior)))
    return network
