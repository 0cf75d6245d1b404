"""Run a trained hyper network on a finer (or coarser) pixel grid than it was trained on (issue 15, item 4).

:class:`KernelScale` is the handler ``bundles/liver_lesion_seg/configs/kernel_scale.yaml`` adds to the inference
evaluator: after the checkpoint is loaded, every hyper-convolution samples its kernel network ``scale`` times finer
(:func:`~monai_hyperconv.resample_kernels`), so that each kernel keeps covering the physical extent it was trained
on when the input has ``scale`` times more pixels per mm.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ignite.engine import Engine, Events
from torch import nn

from monai_hyperconv.convert import resample_kernels
from monai_hyperconv.layers import HyperConvBase
from monai_hyperconv.utils import unwrap_module

__all__ = ["KernelScale", "apply_kernel_scale"]

logger = logging.getLogger(__name__)


def apply_kernel_scale(network: nn.Module, scale: float | Sequence[float] | None) -> nn.Module:
    """Resample every hyper layer of ``network`` (in place) to an input ``scale`` times finer than its training grid.

    ``scale`` is relative to the grid the network was trained on, not to its current one: applying the same scale
    twice leaves it where the first call put it, and 1 brings it back to the training grid.

    Args:
        network: a (possibly DataParallel-wrapped) network.
        scale: input resolution over training resolution, one number or one per spatial dim. None, or the grid
            the layers are on already (1 for a freshly loaded network): the network is left exactly as it is;
            a network without hyper layers accepts None and 1 only.

    Raises:
        ValueError: a scale other than 1 for a network without hyper-convolution (a regular CNN's kernels are
            tables of pixels: they cannot be resampled), or a bad scale (see ``resample_kernels``).
    """
    model = unwrap_module(network)
    layers = [m for m in model.modules() if isinstance(m, HyperConvBase)]
    if scale is None:
        return network
    if not layers:
        if all(float(v) == 1.0 for v in (scale if isinstance(scale, Sequence) else (scale,))):
            return network
        raise ValueError(
            f"kernel_scale {scale!r}: {type(model).__name__} holds no hyper-convolution, so its kernels cannot be "
            "resampled (use kernel_scale 1, and resize the input to the training resolution instead)."
        )
    current = tuple(layers[0].grid_scale)
    if any(tuple(m.grid_scale) != current for m in layers):
        raise ValueError(f"kernel_scale: the hyper layers of {type(model).__name__} are on different grids already.")
    factors = tuple(t / c for t, c in zip(_as_tuple(scale, len(current)), current))
    if any(f != 1.0 for f in factors):  # at the target already: untouched, bit for bit
        resample_kernels(model, factors)
        sizes = sorted({"x".join(map(str, m.kernel_size)) for m in layers})
        logger.info("kernel_scale %s: %d hyper layers resampled (kernels now %s)", scale, len(layers), ", ".join(sizes))
    return network


def _as_tuple(scale: float | Sequence[float], dims: int) -> tuple[float, ...]:
    values = (scale,) * dims if isinstance(scale, (int, float)) else tuple(scale)
    if len(values) != dims:
        raise ValueError(f"kernel_scale must be a number or {dims} numbers (one per spatial dim), got {scale!r}.")
    return tuple(float(v) for v in values)


class KernelScale:
    """Ignite handler: :func:`apply_kernel_scale` to the engine's network when the engine starts.

    Attach it after the handler that loads the weights (MONAI's ``CheckpointLoader`` loads at ``STARTED`` too, and
    handlers of one event run in the order attached): a hyper layer's state records its grid, so weights trained
    on the training grid cannot be loaded into a network already resampled.

    Args:
        scale: see :func:`apply_kernel_scale`.
    """

    def __init__(self, scale: float | Sequence[float] | None = 1.0) -> None:
        self.scale = scale

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        apply_kernel_scale(engine.network, self.scale)
