"""Checkpoints for bundles: MONAI's ``CheckpointSaver`` layout and ``CheckpointLoader`` with what a long run needs.

A bundle's ``ckpt_dir`` holds ``model.pt`` (the network weights of the best epoch, as model-zoo bundles name it) and
``checkpoint_last.pt`` (network, optimizer, trainer, the best metric so far and the random state, rewritten every
epoch; resumed by MONAI's ``CheckpointLoader``). Both are written by ignite ``Checkpoint`` handlers through their
public ``save_handler`` argument (MONAI's ``CheckpointSaver`` builds its own disk saver and takes none), with on top:

- atomic writes (:func:`~monai_hyperconv.utils.atomic.atomic_torch_save`): a run killed at any moment leaves the
  previous file or the new one, never half of one, and never no file (MONAI's saver removes the old one first);
- an earlier run's files moved to ``previous/<date-time>/`` instead of overwritten;
- exact resume (:class:`~monai_hyperconv.handlers.random_state.TrainingRandomState`, its own checkpoint entry).

One run per folder is not this handler's job: a bundle's ``initialize`` list locks ``ckpt_dir`` and ``output_dir``
once, in :func:`~monai_hyperconv.utils.preflight.prepare_run`; a script of your own calls
:func:`~monai_hyperconv.utils.run_lock.lock_run_folders` the same way.
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
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointLoader

from monai_hyperconv.handlers.checkpoint_loader import checkpoint_differences, describe_checkpoint_mismatch
from monai_hyperconv.handlers.divergence import TrainingDivergedError, check_finite_weights
from monai_hyperconv.handlers.random_state import TrainingRandomState
from monai_hyperconv.utils.atomic import atomic_torch_save
from monai_hyperconv.utils.distributed import is_main_process
from monai_hyperconv.utils.flags import as_bool

__all__ = ["AtomicFileSaver", "ResumableCheckpointer"]


def _state_fits(state, network: torch.nn.Module) -> bool:
    """Whether the state dict ``state`` has exactly the names and shapes of ``network``'s (a wrapper looked through)."""
    return isinstance(state, Mapping) and not any(checkpoint_differences(state, network))


def _saved_epoch(engine_state) -> int | None:
    """The epoch of an ignite engine's state dict (it stores the iteration and the epoch length)."""
    if not isinstance(engine_state, Mapping):
        return None
    if "epoch" in engine_state:
        return int(engine_state["epoch"])
    if engine_state.get("epoch_length"):
        return int(engine_state["iteration"]) // int(engine_state["epoch_length"])
    return None


class AtomicFileSaver(BaseSaveHandler):
    """Ignite save handler writing one fixed file atomically, on the main process only.

    Args:
        path: the file; ignite's generated names are ignored (MONAI's ``key_metric_filename`` idea).
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        if is_main_process():
            atomic_torch_save(checkpoint, self.path)

    def remove(self, filename: str) -> None:
        """Nothing to remove: the next save replaces the fixed file in one step."""


class ResumableCheckpointer:
    """Keeps ``model.pt`` (best by a validation metric) plus a resumable last checkpoint, like MONAI's
    ``CheckpointSaver`` with ``save_key_metric`` and ``save_final``.

    Attach it to the trainer *after* the ``ValidationHandler`` (bundle handler lists attach in order), so that at
    each ``EPOCH_COMPLETED`` the validator's metrics of this epoch are available. Then:

    - when ``validator.state.metrics[metric_name]`` improves (``mode="min"`` for a loss; NaN or infinity never does), an
      ignite ``Checkpoint`` writes the state dict of ``save_dict[best_key]`` to ``save_dir/best_filename``: a plain
      network state dict, loadable with ``CheckpointLoader(load_dict={"model": net})`` and ``ckpt_export``;
    - every epoch, ``save_dir/last_filename`` gets ``{name: obj.state_dict()}`` of ``save_dict``, the trainer
      (``engine_key``), this handler (best metric and epoch, ``"checkpointer"``) and the random state training
      consumes (``"random_state"``, a :class:`~monai_hyperconv.handlers.random_state.TrainingRandomState`, every
      rank's under torch.distributed).

    Nothing is written from a network holding NaN or infinite weights: that raises
    :class:`~monai_hyperconv.handlers.divergence.TrainingDivergedError` and both files keep the last finite epoch. A
    run that completes without ever writing ``model.pt`` (no validated epoch with a finite metric) raises too, so a
    training run that ends without an error has always left a ``model.pt``. Epochs before the first validation
    (``val_interval`` > 1) write the last checkpoint only.

    With ``resume=True`` MONAI's ``CheckpointLoader`` restores all of them at ``Events.STARTED``, so training
    continues at the next epoch exactly as the uninterrupted run would have (on CPU, bit for bit), and ``model.pt``
    is only replaced by a truly better epoch. A resumed run may train longer (larger ``max_epochs``), not shorter.

    A fresh run (``resume=False``) into a ``save_dir`` that holds checkpoints of an earlier run never overwrites
    them: just before its first write they are moved to ``save_dir/previous/<date-time>/`` (a warning says where),
    so a run that fails before finishing an epoch leaves them in place. Lock ``save_dir`` before training
    (:func:`~monai_hyperconv.utils.run_lock.lock_run_folders`; bundles do it in ``prepare_run``).

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
        self.best_path = os.path.join(self.save_dir, best_filename)
        self.last_path = os.path.join(self.save_dir, last_filename)
        self.save_dict = dict(save_dict)
        self.validator = validator
        self.best_key = best_key
        self.last_value = math.nan
        self.metric_name = metric_name
        self.mode = mode
        self.resume = as_bool(resume, "resume")
        self.map_location = map_location
        self.engine_key = engine_key
        self.random_state = TrainingRandomState()
        self.best_metric = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        # this handler decides what is best (a NaN never is); the checkpoint then only writes, each call a better epoch
        self._best_checkpoint = Checkpoint(
            {best_key: self.save_dict[best_key]},
            AtomicFileSaver(self.best_path),
            n_saved=1,
            score_function=lambda _engine: self.best_epoch,
        )
        self._last_checkpoint: Checkpoint | None = None
        self._earlier_kept = self.resume  # a resumed run continues the files in place
        self.logger = logging.getLogger(self.__class__.__name__)

    def attach(self, engine: Engine) -> None:
        """Resume at ``STARTED`` (when asked) and save at every ``EPOCH_COMPLETED`` of ``engine`` (the trainer)."""
        self.logger = engine.logger
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
        self.random_state.attach(engine)  # before load_last: its DataLoader must be known when it is restored
        to_save = {**self.save_dict, "checkpointer": self, "random_state": self.random_state}
        self._last_checkpoint = Checkpoint(to_save, AtomicFileSaver(self.last_path), n_saved=1)
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load_last)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.check_best_written)

    def check_best_written(self, engine: Engine) -> None:
        """Raise when training ends (main process) and ``model.pt`` was never written: no epoch to deploy."""
        if not is_main_process() or os.path.isfile(self.best_path):
            return
        raise TrainingDivergedError(
            f"Training ended after epoch {engine.state.epoch} without writing {self.best_path}: no validated epoch "
            f"had a finite {self.metric_name} (last: {self.last_value}). Check the learning curve and the "
            "validation data; a NaN validation loss usually means a learning_rate too high, no validation at all a "
            "val_interval larger than max_epochs."
        )

    def state_dict(self) -> dict:
        """The best metric and its epoch, stored inside the last checkpoint."""
        return {"best_metric": float(self.best_metric), "best_epoch": int(self.best_epoch)}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore the best metric and its epoch (so only a truly better epoch replaces ``model.pt``)."""
        self.best_metric = float(state["best_metric"])
        self.best_epoch = int(state["best_epoch"])

    def load_last(self, engine: Engine) -> None:
        """Restore every object of the last checkpoint with MONAI's ``CheckpointLoader``, naming the file on error."""
        if not os.path.isfile(self.last_path):
            raise FileNotFoundError(
                f"Cannot resume: no last checkpoint at {self.last_path} (expected a file written by a previous run "
                "of this bundle with the same ckpt_dir). Start without --resume to train from scratch."
            )
        try:
            checkpoint = torch.load(self.last_path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated or foreign file: say which one
            raise RuntimeError(f"Cannot read the last checkpoint {self.last_path}: {e}") from e
        load_dict = {**self.save_dict, "checkpointer": self, "random_state": self.random_state}
        if "random_state" not in checkpoint:  # written before the random state was saved: resumable, not replayable
            del load_dict["random_state"]
            self.logger.warning(
                f"{self.last_path} holds no random state: the resumed run will not replay the "
                "uninterrupted one exactly."
            )
        missing = [k for k in load_dict if k not in checkpoint]
        if missing:
            raise KeyError(f"Last checkpoint {self.last_path} lacks the entries {missing} (has {sorted(checkpoint)}).")
        network = self.save_dict[self.best_key]
        if isinstance(network, torch.nn.Module) and not _state_fits(checkpoint[self.best_key], network):
            # e.g. another bundle's checkpoint: torch's message lists every parameter (10,000 characters)
            raise RuntimeError(
                f"Cannot resume: {describe_checkpoint_mismatch(checkpoint[self.best_key], network, self.last_path)} "
                "Expected the last checkpoint of this bundle and network_def (or start without --resume)."
            )
        saved_epoch = _saved_epoch(checkpoint.get(self.engine_key))
        max_epochs = engine.state.max_epochs
        if saved_epoch is not None and max_epochs is not None and saved_epoch > max_epochs:
            raise ValueError(
                f"{self.last_path} is at epoch {saved_epoch}, beyond max_epochs {max_epochs}; expected max_epochs >= "
                f"{saved_epoch} to continue it (or start without --resume)."
            )
        loader = CheckpointLoader(self.last_path, load_dict, map_location=self.map_location)
        loader.logger = self.logger
        try:
            loader(engine)
        except Exception as e:
            reason = " ".join(str(e).split())
            reason = reason if len(reason) <= 400 else reason[:400] + " …"
            raise RuntimeError(f"Cannot resume from {self.last_path}: {reason}") from e
        if saved_epoch is not None and saved_epoch == max_epochs:
            self.logger.warning(
                f"{self.last_path} is at epoch {saved_epoch} = max_epochs: nothing to train; raise "
                "max_epochs to continue."
            )
        self.logger.info(
            f"Resumed from {self.last_path} at epoch {engine.state.epoch} (best {self.metric_name} "
            f"{self.best_metric:.4f} at epoch {self.best_epoch})."
        )

    def __call__(self, engine: Engine) -> None:
        validator = self.validator or engine
        metrics = validator.state.metrics
        validated = self.metric_name in metrics
        never_ran = validator is not engine and validator.state.iteration == 0  # before the first val_interval
        if not validated and not never_ran:
            raise KeyError(
                f"ResumableCheckpointer: metric {self.metric_name!r} not found (available: {sorted(metrics)}); "
                "attach it after the ValidationHandler and name a metric of the validator."
            )
        value = float(metrics[self.metric_name]) if validated else math.nan
        self.last_value = value
        # nothing is written from diverged weights: both files keep the last finite epoch
        check_finite_weights(
            {self.best_key: self.save_dict[self.best_key]},
            f"neither {self.best_path} nor {self.last_path}",
            int(engine.state.epoch),
        )
        if not self._earlier_kept and is_main_process():
            self._keep_earlier_checkpoints()
        if self._improved(value):
            self.best_metric, self.best_epoch = value, int(engine.state.epoch)
            self._best_checkpoint(engine)  # writes model.pt
            self.logger.info(f"Epoch {engine.state.epoch}: best {self.metric_name} {value:.4f}, saved {self.best_path}")
        self._last_checkpoint(engine)

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):  # a NaN / infinite metric is never the best (diverged network, empty data)
            return False
        return value < self.best_metric if self.mode == "min" else value > self.best_metric

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
