"""Bundle machinery every workflow shares: checkpoints with resume, weights, input checks, robustness sweeps.

Every bundle of the project builds on these (see ``bundles/liver_lesion_seg/configs/train.yaml`` for the pattern):

- :class:`ResumableCheckpointer` (on MONAI's ``CheckpointSaver`` / ``CheckpointLoader``): ``model.pt`` (best by a
  validation metric) and ``checkpoint_last.pt`` (network, optimizer, trainer, random state), written atomically;
  ``resume=True`` continues a killed run exactly (:class:`TrainingRandomState`).
- :mod:`~monai_hyperconv.engines.divergence`: :class:`StopOnNonFiniteLoss` / :class:`StopOnNonFiniteOutput` end a
  diverged run at once (:class:`TrainingDivergedError`, naming the epoch, iteration and learning rate).
- :mod:`~monai_hyperconv.engines.run_lock`: one run per folder (:func:`lock_run_folders`, :class:`RunLock`).
- :func:`prepare_run`: the first ``initialize`` step; refuses folders and sizes that cannot work, takes the locks.
- :mod:`~monai_hyperconv.engines.weights`: :func:`load_network_weights` reads either checkpoint into a network,
  :func:`save_materialized_weights` exports for deployment.
- :mod:`~monai_hyperconv.engines.validation`: checks of loaded images and labels that name the file.
- :class:`EpochTimeLimit`: end training at an epoch boundary within a wall-clock budget.
- :class:`BestEpochEarlyStopping`: end training when the best validation epoch lies ``patience`` epochs back;
  :class:`LearningCurveWriter`: the per-epoch training loss and validation metrics as a CSV.
- :func:`init_output_bias`: start sigmoid outputs at the foreground prior (rare lesions).
- :class:`VolumeSliceDataset`: 2D slices of volumes decoded and preprocessed once (cached).
- :mod:`~monai_hyperconv.engines.runtime`: :func:`auto_num_workers` (data-loader workers from the machine),
  :func:`amp_enabled` (the ``amp`` flag), :func:`from_engine_stacked`, :func:`run_if` (optional run steps).
- :class:`NoiseSweep`, :func:`run_noise_sweep`, :func:`plot_noise_sweeps`: metric vs. test-noise level, CSV + PNG.

Atomic writers, ``as_bool``, ``is_main_process`` and the file checks are in :mod:`monai_hyperconv.utils`.
"""

from monai_hyperconv.engines.checkpoint import AtomicFileSaver, ResumableCheckpointer
from monai_hyperconv.engines.divergence import (
    StopOnNonFiniteLoss,
    StopOnNonFiniteOutput,
    TrainingDivergedError,
    check_finite_weights,
)
from monai_hyperconv.engines.early_stopping import BestEpochEarlyStopping, LearningCurveWriter, read_learning_curve
from monai_hyperconv.engines.init import init_output_bias
from monai_hyperconv.engines.noise_sweep import (
    NoiseSweep,
    plot_noise_sweeps,
    read_sweep_csv,
    run_noise_sweep,
    write_sweep_csv,
)
from monai_hyperconv.engines.preflight import (
    check_dataset_dir,
    check_image_size,
    check_learning_rate,
    check_network_input_size,
    min_input_size,
    prepare_run,
)
from monai_hyperconv.engines.random_state import TrainingRandomState, randomizable_transforms
from monai_hyperconv.engines.run_lock import FolderInUseError, RunLock, lock_run_folders, release_all
from monai_hyperconv.engines.runtime import amp_enabled, auto_num_workers, available_cpus, from_engine_stacked, run_if
from monai_hyperconv.engines.slice_dataset import VolumeSliceDataset
from monai_hyperconv.engines.time_limit import EpochTimeLimit
from monai_hyperconv.engines.validation import (
    CheckedLoadImaged,
    CheckImageLabeld,
    check_affine,
    check_dimensions,
    check_finite,
    check_label_values,
    check_min_size,
    check_not_constant,
    check_real_valued,
    check_same_affine,
    check_same_spatial_shape,
)
from monai_hyperconv.engines.weights import (
    CheckedCheckpointLoader,
    describe_checkpoint_mismatch,
    extract_state_dict,
    load_network_weights,
    save_materialized_weights,
)

__all__ = [
    "AtomicFileSaver",
    "BestEpochEarlyStopping",
    "CheckImageLabeld",
    "CheckedCheckpointLoader",
    "CheckedLoadImaged",
    "EpochTimeLimit",
    "FolderInUseError",
    "LearningCurveWriter",
    "NoiseSweep",
    "ResumableCheckpointer",
    "RunLock",
    "StopOnNonFiniteLoss",
    "StopOnNonFiniteOutput",
    "TrainingDivergedError",
    "TrainingRandomState",
    "VolumeSliceDataset",
    "amp_enabled",
    "auto_num_workers",
    "available_cpus",
    "check_affine",
    "check_dataset_dir",
    "check_dimensions",
    "check_finite",
    "check_finite_weights",
    "check_image_size",
    "check_label_values",
    "check_learning_rate",
    "check_min_size",
    "check_network_input_size",
    "check_not_constant",
    "check_real_valued",
    "check_same_affine",
    "check_same_spatial_shape",
    "describe_checkpoint_mismatch",
    "extract_state_dict",
    "from_engine_stacked",
    "init_output_bias",
    "load_network_weights",
    "lock_run_folders",
    "min_input_size",
    "plot_noise_sweeps",
    "prepare_run",
    "randomizable_transforms",
    "read_learning_curve",
    "read_sweep_csv",
    "release_all",
    "run_if",
    "run_noise_sweep",
    "save_materialized_weights",
    "write_sweep_csv",
]
