"""Ignite / MONAI handlers every bundle shares: checkpoints with exact resume, the random state, divergence stops,
early stopping, the learning curve, the time limit, kernel rescaling at inference, robustness sweeps.

Every bundle of the project builds on these (see ``bundles/liver_lesion_seg/configs/train.yaml`` for the pattern):

- :mod:`~monai_hyperconv.handlers.checkpoint_saver`: :class:`ResumableCheckpointer` (ignite ``Checkpoint`` handlers
  with our :class:`AtomicFileSaver` passed in, MONAI's ``CheckpointLoader``): ``model.pt`` (best by a validation
  metric) and ``checkpoint_last.pt`` (network, optimizer, trainer, random state), written atomically;
  ``resume=True`` continues a killed run exactly.
- :mod:`~monai_hyperconv.handlers.random_state`: :class:`TrainingRandomState`, the random state training consumes,
  a handler of its own (:func:`replays_exactly`: not with persistent DataLoader workers).
- :mod:`~monai_hyperconv.handlers.checkpoint_loader`: :class:`CheckedCheckpointLoader` (MONAI's loader, errors that
  name the file and the network fragment), :func:`load_network_weights` reads either checkpoint into a network,
  :func:`save_materialized_weights` exports for deployment.
- :mod:`~monai_hyperconv.handlers.divergence`: :class:`StopOnNonFiniteLoss` / :class:`StopOnNonFiniteOutput` end a
  diverged run at once (:class:`TrainingDivergedError`, naming the epoch, iteration and learning rate).
- :class:`BestEpochEarlyStopping`: end training when the best validation epoch lies ``patience`` epochs back;
  :class:`LearningCurveWriter`: the per-epoch training loss and validation metrics as a CSV.
- :class:`EpochTimeLimit`: end training at an epoch boundary within a wall-clock budget.
- :class:`PreciseBatchNormStats`: batch-norm running statistics recomputed with each epoch's final weights before
  validation (:func:`recompute_batch_norm_stats`).
- :class:`KernelScale`: run a trained hyper network on a finer pixel grid (:func:`apply_kernel_scale`).
- :class:`NoiseSweep`, :func:`run_noise_sweep`, :func:`plot_noise_sweeps`: metric vs. test-noise level, CSV + PNG.
- :func:`from_engine_stacked`: ``monai.handlers.from_engine`` with each key's items stacked.

Datasets and datalists are in :mod:`monai_hyperconv.data`, the input checks and the checked loader in
:mod:`monai_hyperconv.transforms`, run set-up (``prepare_run``, run locks, workers, AMP) in
:mod:`monai_hyperconv.utils`.
"""

from monai_hyperconv.handlers.batch_norm import BATCH_NORM_TYPES, PreciseBatchNormStats, recompute_batch_norm_stats
from monai_hyperconv.handlers.checkpoint_loader import (
    CheckedCheckpointLoader,
    describe_checkpoint_mismatch,
    extract_state_dict,
    load_network_weights,
    save_materialized_weights,
)
from monai_hyperconv.handlers.checkpoint_saver import AtomicFileSaver, ResumableCheckpointer
from monai_hyperconv.handlers.divergence import (
    StopOnNonFiniteLoss,
    StopOnNonFiniteOutput,
    TrainingDivergedError,
    check_finite_weights,
)
from monai_hyperconv.handlers.early_stopping import BestEpochEarlyStopping
from monai_hyperconv.handlers.kernel_scale import KernelScale, apply_kernel_scale
from monai_hyperconv.handlers.learning_curve import LearningCurveWriter, read_learning_curve
from monai_hyperconv.handlers.noise_sweep import (
    NoiseSweep,
    plot_noise_sweeps,
    read_sweep_csv,
    run_noise_sweep,
    write_sweep_csv,
)
from monai_hyperconv.handlers.random_state import TrainingRandomState, randomizable_transforms, replays_exactly
from monai_hyperconv.handlers.time_limit import EpochTimeLimit
from monai_hyperconv.handlers.utils import from_engine_stacked

__all__ = [
    "BATCH_NORM_TYPES",
    "AtomicFileSaver",
    "BestEpochEarlyStopping",
    "CheckedCheckpointLoader",
    "EpochTimeLimit",
    "KernelScale",
    "LearningCurveWriter",
    "NoiseSweep",
    "PreciseBatchNormStats",
    "ResumableCheckpointer",
    "StopOnNonFiniteLoss",
    "StopOnNonFiniteOutput",
    "TrainingDivergedError",
    "TrainingRandomState",
    "apply_kernel_scale",
    "check_finite_weights",
    "describe_checkpoint_mismatch",
    "extract_state_dict",
    "from_engine_stacked",
    "load_network_weights",
    "plot_noise_sweeps",
    "randomizable_transforms",
    "read_learning_curve",
    "read_sweep_csv",
    "recompute_batch_norm_stats",
    "replays_exactly",
    "run_noise_sweep",
    "save_materialized_weights",
    "write_sweep_csv",
]
