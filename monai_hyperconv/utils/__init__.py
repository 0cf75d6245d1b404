"""Small helpers at the bottom of the package: they import nothing of it, so every other part may use them.

- :mod:`~monai_hyperconv.utils.atomic`: the one atomic writer (text, CSV, JSON, ``torch.save``, figures).
- :mod:`~monai_hyperconv.utils.files`: file checks whose errors name the path, the source file of a tensor.
- :mod:`~monai_hyperconv.utils.flags`: :func:`as_bool` for bundle on/off ids, :func:`as_optional_number` for numbers that may be null.
- :mod:`~monai_hyperconv.utils.distributed`: :func:`is_main_process`, :func:`unwrap_module`.
- :mod:`~monai_hyperconv.utils.outputs`: outputs that neither overwrite nor feed back (:class:`GuardedFolderLayout`,
  :func:`check_folders_apart`, the output-folder marker).
- :mod:`~monai_hyperconv.utils.errors`: :func:`install_excepthook`, which a bundle run (or a command line) calls first
  so that a failure ends with its root cause; importing the package installs nothing.
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

__all__ = [
    "OUTPUT_MARKER",
    "GuardedFolderLayout",
    "as_bool",
    "as_optional_number",
    "atomic_save_figure",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "check_folders_apart",
    "check_no_overwrite",
    "check_not_output_dir",
    "check_planned_outputs",
    "ensure_writable_dir",
    "install_excepthook",
    "is_main_process",
    "is_output_dir",
    "mark_output_dir",
    "require_files",
    "source_name",
    "unwrap_module",
]
