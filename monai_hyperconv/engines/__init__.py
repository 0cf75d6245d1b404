"""Reusable bundle machinery: atomic best/last checkpoints with resume, input checks, robustness sweeps.

Every bundle of the project builds on these (see ``bundles/liver_lesion_seg/configs/train.yaml`` for the pattern):

- :mod:`~monai_hyperconv.workflows.atomic`: text, CSV and JSON files written atomically.
- :class:`ResumableCheckpointer` (+ :func:`atomic_torch_save`): ``model.pt`` (best by a validation metric) and
  ``checkpoint_last.pt`` (network, optimizer, trainer), written atomically; ``resume=True`` continues a killed run;
  :func:`load_network_weights` reads either into a network, :func:`save_materialized_weights` exports for deployment.
- :mod:`~monai_hyperconv.workflows.validation`: checks that name the file and what was expected.
- :class:`EpochTimeLimit`: end training at an epoch boundary within a wall-clock budget.
- :func:`init_output_bias`: start sigmoid outputs at the foreground prior (rare lesions).
- :class:`VolumeSliceDataset`: 2D slices of volumes decoded and preprocessed once (cached).
- :class:`NoiseSweep`, :func:`run_noise_sweep`, :func:`plot_noise_sweeps`: metric vs. test-noise level, CSV + PNG.
"""

from monai_hyperconv.workflows.atomic import atomic_write_csv, atomic_write_json, atomic_write_text
from monai_hyperconv.workflows.checkpoint import (
    ResumableCheckpointer,
    atomic_torch_save,
    extract_state_dict,
    is_main_process,
    load_network_weights,
    save_materialized_weights,
    unwrap_module,
)
from monai_hyperconv.workflows.init import init_output_bias
from monai_hyperconv.workflows.noise_sweep import (
    NoiseSweep,
    plot_noise_sweeps,
    read_sweep_csv,
    run_noise_sweep,
    write_sweep_csv,
)
from monai_hyperconv.workflows.slice_dataset import VolumeSliceDataset
from monai_hyperconv.workflows.time_limit import EpochTimeLimit
from monai_hyperconv.workflows.validation import (
    CheckImageLabeld,
    as_bool,
    check_finite,
    check_label_values,
    check_same_spatial_shape,
    ensure_writable_dir,
    require_files,
    source_name,
)

__all__ = [
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "ResumableCheckpointer",
    "VolumeSliceDataset",
    "init_output_bias",
    "EpochTimeLimit",
    "atomic_torch_save",
    "is_main_process",
    "unwrap_module",
    "extract_state_dict",
    "load_network_weights",
    "save_materialized_weights",
    "NoiseSweep",
    "run_noise_sweep",
    "write_sweep_csv",
    "read_sweep_csv",
    "plot_noise_sweeps",
    "CheckImageLabeld",
    "as_bool",
    "check_finite",
    "check_label_values",
    "check_same_spatial_shape",
    "ensure_writable_dir",
    "require_files",
    "source_name",
]
