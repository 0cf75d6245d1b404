"""Small helpers at the bottom of the package: they import nothing of it, so every other part may use them.

- :mod:`~monai_hyperconv.utils.atomic`: the one atomic writer (text, CSV, JSON, ``torch.save``, figures).
- :mod:`~monai_hyperconv.utils.files`: file checks whose errors name the path, the source file of a tensor.
- :mod:`~monai_hyperconv.utils.flags`: :func:`as_bool` for bundle on/off ids, :func:`as_optional_number` for numbers that may be null.
- :mod:`~monai_hyperconv.utils.distributed`: :func:`is_main_process`, :func:`unwrap_module`.
- :mod:`~monai_hyperconv.utils.outputs`: outputs that neither overwrite nor feed back (:class:`GuardedFolderLayout`,
  :func:`check_folders_apart`, the output-folder marker).
- :mod:`~monai_hyperconv.utils.errors`: :func:`install_excepthook`, which a bundle run (or a command line) calls first
  so that a failure ends with its root cause; importing the package installs nothing.
- :mod:`~monai_hyperconv.utils.preflight`: :func:`prepare_run`, the first ``initialize`` step of a bundle run: refuses
  folders and sizes that cannot work and takes the run locks; :func:`check_learning_rate` and the other checks.
- :mod:`~monai_hyperconv.utils.run_lock`: one run per folder (:func:`lock_run_folders`, :class:`RunLock`).
- :mod:`~monai_hyperconv.utils.runtime`: :func:`auto_num_workers` (data-loader workers from the machine),
  :func:`amp_enabled` (the ``amp`` flag), :func:`run_if` (optional run steps).
"""

from monai_hyperconv.utils.atomic import (
    atomic_save_figure,
    atomic_torch_save,
    atomic_write,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
)
from monai_hyperconv.utils.distributed import is_main_process, unwrap_module
from monai_hyperconv.utils.errors import install_excepthook
from monai_hyperconv.utils.files import ensure_writable_dir, require_files, source_name
from monai_hyperconv.utils.flags import as_bool, as_optional_number
from monai_hyperconv.utils.outputs import (
    OUTPUT_MARKER,
    GuardedFolderLayout,
    check_folders_apart,
    check_no_overwrite,
    check_not_output_dir,
    check_planned_outputs,
    is_output_dir,
    mark_output_dir,
)
from monai_hyperconv.utils.preflight import (
    check_dataset_dir,
    check_image_size,
    check_learning_rate,
    check_network_input_size,
    min_input_size,
    prepare_run,
)
from monai_hyperconv.utils.run_lock import FolderInUseError, RunLock, lock_run_folders, release_all
from monai_hyperconv.utils.runtime import amp_enabled, auto_num_workers, available_cpus, run_if

__all__ = [
    "OUTPUT_MARKER",
    "FolderInUseError",
    "GuardedFolderLayout",
    "RunLock",
    "amp_enabled",
    "as_bool",
    "as_optional_number",
    "atomic_save_figure",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "auto_num_workers",
    "available_cpus",
    "check_dataset_dir",
    "check_folders_apart",
    "check_image_size",
    "check_learning_rate",
    "check_network_input_size",
    "check_no_overwrite",
    "check_not_output_dir",
    "check_planned_outputs",
    "ensure_writable_dir",
    "install_excepthook",
    "is_main_process",
    "is_output_dir",
    "lock_run_folders",
    "mark_output_dir",
    "min_input_size",
    "prepare_run",
    "release_all",
    "require_files",
    "run_if",
    "source_name",
    "unwrap_module",
]
