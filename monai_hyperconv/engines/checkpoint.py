"""Checkpoints for bundles: the best model by a validation metric and a resumable last checkpoint, written atomically.

A bundle's ``ckpt_dir`` holds ``model.pt`` (the network weights of the best epoch, as model-zoo bundles name it)
and ``checkpoint_last.pt`` (network, optimizer, trainer state and the best metric so far, rewritten every epoch).
Both are written with :func:`~monai_hyperconv.utils.atomic.atomic_torch_save` (a temporary file in the same folder,
then :func:`os.replace`), so a run killed at any moment leaves either the previous file or the new one, never half of one.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from monai_hyperconv.utils.atomic import atomic_torch_save
from monai_hyperconv.utils.distributed import is_main_process, unwrap_module
from monai_hyperconv.utils.flags import as_bool

__all__ = ["ResumableCheckpointer"]


class ResumableCheckpointer:
    """Ignite handler that keeps the best model by a validation metric and a resumable last checkpoint.

    Attach it to the trainer *after* the ``ValidationHandler`` (bundle handler lists attach in order), so that at
    each ``EPOCH_COMPLETED`` the validator's metrics of this epoch are available. Then, on the main process:

    - when ``validator.state.metrics[metric_name]`` improves (``mode="min"`` for a loss), the state dict of
      ``save_dict[best_key]`` is written to ``save_dir/best_filename``: a plain network state dict, loadable with
      ``CheckpointLoader(load_dict={"model": net})`` and ``python -m monai.bundle ckpt_export``;
    - every epoch, ``{name: obj.state_dict() for name, obj in save_dict.items()}`` plus this handler's own state
      (best metric and epoch) is written to ``save_dir/last_filename``.

    With ``resume=True`` the last checkpoint is loaded at ``Events.STARTED`` into every object of ``save_dict``
    (the trainer's epoch and iteration included) and the best metric is restored, so training continues at the
    next epoch and ``model.pt`` is only replaced by a truly better epoch. ``max_epochs`` of the running trainer is
    kept, so a resumed run can also train longer than the first one.

    A fresh run (``resume=False``) into a ``save_dir`` that holds checkpoints of an earlier run never overwrites
    them: just before its first write they are moved to ``save_dir/previous/<date-time>/`` (a warning says where),
    so a run that fails before finishing an epoch leaves them in place.

    Args:
        save_dir: folder of the checkpoints (created when missing).
        save_dict: objects with ``state_dict`` / ``load_state_dict``, e.g. ``{"network": net, "optimizer": opt}``.
            ``DataParallel`` / ``DistributedDataParallel`` wrappers are saved unwrapped.
        validator: the engine whose ``state.metrics`` holds ``metric_name``; None reads the attached engine's.
        metric_name: the metric that selects the best model (``"val_loss"`` by default, as the paper reports).
        mode: ``"min"`` (lower is better) or ``"max"``.
        best_key: key of ``save_dict`` whose state dict is the best model.
        best_filename: file name of the best model.
        last_filename: file name of the last checkpoint.
        resume: load ``last_filename`` at start. A missing file is an error (naming it), not a silent fresh start.
        map_location: passed to ``torch.load`` when resuming.
        engine_key: the engine this handler is attached to (the trainer) is added to ``save_dict`` under this key
            (so a config needs no circular reference to its trainer); None leaves it out.
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: Mapping[str, object],
        validator: Engine | None = None,
        metric_name: str = "val_loss",
        mode: str = "min",
        best_key: str = "network",
        best_filename: str = "model.pt",
        last_filename: str = "checkpoint_last.pt",
        resume: bool = False,
        map_location: str | torch.device | None = "cpu",
        engine_key: str | None = "trainer",
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        if best_key not in save_dict:
            raise KeyError(f"best_key {best_key!r} is not a key of save_dict ({sorted(save_dict)}).")
        self.save_dir = os.fspath(save_dir)
        self.save_dict = dict(save_dict)
        self.validator = validator
        self.metric_name = metric_name
        self.mode = mode
        self.best_key = best_key
        self.best_path = os.path.join(self.save_dir, best_filename)
        self.last_path = os.path.join(self.save_dir, last_filename)
        self.resume = as_bool(resume, "resume")
        self.map_location = map_location
        self.engine_key = engine_key
        self.best_metric = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self._earlier_kept = self.resume  # a resumed run continues the files in place
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        """Resume at ``STARTED`` (when asked) and save at every ``EPOCH_COMPLETED`` of ``engine`` (the trainer)."""
        self.logger = engine.logger
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load_last)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def state_dict(self) -> dict:
        """The best metric and its epoch, stored inside the last checkpoint."""
        return {"best_metric": float(self.best_metric), "best_epoch": int(self.best_epoch)}

    def load_state_dict(self, state: Mapping) -> None:
        self.best_metric = float(state["best_metric"])
        self.best_epoch = int(state["best_epoch"])

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value < self.best_metric if self.mode == "min" else value > self.best_metric

    def load_last(self, engine: Engine) -> None:
        """Restore every object of ``save_dict`` and the best metric from the last checkpoint."""
        if not os.path.isfile(self.last_path):
            raise FileNotFoundError(
                f"Cannot resume: no last checkpoint at {self.last_path} (expected a file written by a previous run "
                "of this bundle with the same ckpt_dir). Start without --resume to train from scratch."
            )
        try:
            checkpoint = torch.load(self.last_path, map_location=self.map_location, weights_only=True)
        except Exception as e:  # a truncated or foreign file: say which one
            raise RuntimeError(f"Cannot read the last checkpoint {self.last_path}: {e}") from e
        missing = [k for k in [*self.save_dict, "checkpointer"] if k not in checkpoint]
        if missing:
            raise KeyError(f"Last checkpoint {self.last_path} lacks the entries {missing} (has {sorted(checkpoint)}).")
        prior_max_epochs = engine.state.max_epochs
        to_load = {k: unwrap_module(v) for k, v in self.save_dict.items()}
        Checkpoint.load_objects(to_load=to_load, checkpoint=checkpoint)
        self.load_state_dict(checkpoint["checkpointer"])
        if prior_max_epochs is not None:
            if engine.state.epoch >= prior_max_epochs:
                self.logger.warning(
                    f"{self.last_path} is at epoch {engine.state.epoch} >= max_epochs {prior_max_epochs}: nothing to "
                    "train; raise max_epochs to continue."
                )
            engine.state.max_epochs = max(prior_max_epochs, engine.state.epoch)
        self.logger.info(f"Resumed from {self.last_path} at epoch {engine.state.epoch} (best {self.metric_name} "
                         f"{self.best_metric:.4f} at epoch {self.best_epoch}).")

    def __call__(self, engine: Engine) -> None:
        metrics = (self.validator or engine).state.metrics
        if self.metric_name not in metrics:
            raise KeyError(
                f"ResumableCheckpointer: metric {self.metric_name!r} not found (available: {sorted(metrics)}); "
                "attach it after the ValidationHandler and name a metric of the validator."
            )
        value = float(metrics[self.metric_name])
        if not self._earlier_kept and is_main_process():
            self._keep_earlier_checkpoints()
        if self._improved(value):
            self.best_metric, self.best_epoch = value, int(engine.state.epoch)
            if is_main_process():
                atomic_torch_save(unwrap_module(self.save_dict[self.best_key]).state_dict(), self.best_path)
                self.logger.info(f"Epoch {engine.state.epoch}: best {self.metric_name} {value:.4f}, saved {self.best_path}")
        if is_main_process():
            state = {k: unwrap_module(v).state_dict() for k, v in self.save_dict.items()}
            state["checkpointer"] = self.state_dict()
            atomic_torch_save(state, self.last_path)

    def _keep_earlier_checkpoints(self) -> None:
        """Move an earlier run's checkpoints out of the way of a fresh run (once, before its first write)."""
        self._earlier_kept = True
        earlier = [p for p in (self.best_path, self.last_path) if os.path.isfile(p)]
        if not earlier:
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(max(os.path.getmtime(p) for p in earlier)))
        folder = os.path.join(self.save_dir, "previous", stamp)
        os.makedirs(folder, exist_ok=True)
        for path in earlier:
            os.replace(path, os.path.join(folder, os.path.basename(path)))
        self.logger.warning(
            f"Fresh run (resume false) in {self.save_dir}: the earlier run's {[os.path.basename(p) for p in earlier]} "
            f"moved to {folder} (pass --resume true to continue a run instead)."
        )
