"""The paper's receptive field of a network, read from its layers."""

from __future__ import annotations

from torch import nn

__all__ = ["receptive_field"]


def receptive_field(network: nn.Module) -> int | None:
    """The receptive field the paper reports for ``network``, in pixels, or None for "all" (global context).

    UNets (single- and multi-branch): the encoder's, i.e. of the bottleneck output: ``8 + 30·(k - 1)`` for k×k
    kernels with three pools, 68 / 128 / 188 px for 3 / 5 / 7 (dilated 3×3 with dilation 2: 128 px); flat CNNs:
    the output's, 89 px; non-local networks and HyperSeg: None. Computed from the layers' kernel sizes and
    dilations, so it follows ``hyperize(..., kernel_size=k)`` and ``materialize``.

    Raises:
        TypeError: ``network`` (or the ``module`` it wraps, as DataParallel / DistributedDataParallel do) is
            not one of :mod:`monai_hyperconv.networks`' networks.
    """
    if isinstance(network, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        network = network.module
    method = getattr(network, "receptive_field", None)
    if not callable(method):
        raise TypeError(
            f"receptive_field knows the networks of monai_hyperconv.networks, not {type(network).__name__}."
        )
    return method()
