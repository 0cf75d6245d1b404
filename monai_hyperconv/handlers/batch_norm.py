"""Batch-norm running statistics recomputed with each epoch's final weights before validation ("precise BN").

Batch norm normalises with the batch's statistics in training and with running averages (an exponential moving
average, momentum 0.1) at evaluation. When the weights move fast relative to the number of steps per epoch, the
average still mixes in statistics of older weights (and, after a short first epoch, much of its initial mean 0 and
variance 1), and an evaluation-mode network can give outputs that no training step ever saw. Hyper-convolutions make
this likely: one step of a kernel network rescales every kernel it generates at once. Measured on the 3D liver main
job after two epochs of 3 steps (``bundles/liver_lesion_seg_3d/scripts/batch_norm_probe.py``): validation loss 48,260
with the running averages, 1.03 with statistics recomputed on training inputs; the regular UNet 3³ 1.03 and 1.01.

:class:`PreciseBatchNormStats` keeps the inputs of the epoch's last training batches and, at the end of the epoch
(attach it before the validation handler), recomputes every batch-norm layer's running mean and variance as the plain
average over those batches, with the epoch's final weights. Only the batch-norm layers run in training mode (dropout
stays off, so no random numbers are drawn): the training trajectory is unchanged, bit for bit; the validation, the
checkpoints and early stopping then see the network as it is (Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021,
section 3: "precise BN").
"""

from __future__ import annotations

import logging
from collections import deque

import torch
from ignite.engine import Engine, Events

__all__ = ["BATCH_NORM_TYPES", "PreciseBatchNormStats", "recompute_batch_norm_stats"]


#: the batch-norm layers whose running statistics are recomputed (torch's public classes; the lazy ones subclass them)
BATCH_NORM_TYPES = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm)


def _local_module(network: torch.nn.Module) -> torch.nn.Module:
    return getattr(network, "module", network)  # DistributedDataParallel: the local module


def _batch_norms(network: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in _local_module(network).modules() if isinstance(m, BATCH_NORM_TYPES) and m.track_running_stats]


def recompute_batch_norm_stats(network: torch.nn.Module, batches, forward=None) -> int:
    """Replace every batch-norm layer's running mean and variance by their average over ``batches``.

    The network runs in evaluation mode except its batch-norm layers, without gradients; each layer's momentum is
    restored afterwards. Returns the number of batch-norm layers updated (0: nothing to do, ``batches`` not read).

    Args:
        network: the network (or a ``DistributedDataParallel`` wrapper; its module is used).
        batches: an iterable of network inputs, or of whatever ``forward`` takes.
        forward: ``forward(network, batch)``; None calls ``network(batch)``.
    """
    module = _local_module(network)
    norms = _batch_norms(module)
    if not norms:
        return 0
    was_training = module.training
    momenta = [m.momentum for m in norms]
    module.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    try:
        with torch.no_grad():
            for batch in batches:
                module(batch) if forward is None else forward(module, batch)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        module.train(was_training)
    return len(norms)


class PreciseBatchNormStats:
    """Ignite handler: at the end of each training epoch, recompute the batch-norm running statistics on the inputs
    of the epoch's last ``num_batches`` training batches, with the epoch's final weights.

    Attach it to a MONAI ``SupervisedTrainer`` **before** the validation handler and the checkpointer, so that both
    see the recomputed statistics. It keeps the loader's batches as they come (``GET_BATCH_COMPLETED``) and feeds
    them through the trainer's own ``prepare_batch`` (keyword inputs such as the CS-MRI k-space included) under the
    trainer's AMP setting. Training itself is unchanged (see the module's docstring).

    Args:
        network: the trained network.
        num_batches: how many of the epoch's last batches to average over; 0 or None disables the handler.
    """

    def __init__(self, network: torch.nn.Module, num_batches: int | None = 8) -> None:
        if num_batches is not None and (not float(num_batches).is_integer() or int(num_batches) < 0):
            raise ValueError(f"precise batch norm: num_batches must be null or an integer >= 0, got {num_batches!r}.")
        self.network = network
        self.num_batches = int(num_batches or 0)
        self.batches: deque = deque(maxlen=max(self.num_batches, 1))
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        if self.num_batches == 0 or not _batch_norms(self.network):
            return
        self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_STARTED, self._clear)
        engine.add_event_handler(Events.GET_BATCH_COMPLETED, self._keep)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _clear(self, engine: Engine) -> None:
        self.batches.clear()

    def _keep(self, engine: Engine) -> None:
        self.batches.append(engine.state.batch)

    def _forward(self, engine: Engine):
        amp = bool(getattr(engine, "amp", False))
        device = engine.state.device  # MONAI's workflows keep their device in the state

        def forward(module: torch.nn.Module, batch) -> None:
            prepared = engine.prepare_batch(
                batch, device, getattr(engine, "non_blocking", False), **getattr(engine, "to_kwargs", {})
            )
            inputs, args, kwargs = prepared[0], (), {}
            if len(prepared) == 4:
                args, kwargs = tuple(prepared[2]), dict(prepared[3])
            with torch.autocast(torch.device(device).type, enabled=amp):
                module(inputs, *args, **kwargs)

        return forward

    def __call__(self, engine: Engine) -> None:
        count = recompute_batch_norm_stats(self.network, list(self.batches), self._forward(engine))
        self.logger.debug(f"PreciseBatchNormStats: {count} batch-norm layers on {len(self.batches)} batches.")
        self.batches.clear()
