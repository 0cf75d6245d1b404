"""Outputs that neither overwrite nor feed back: one file per input, outside the input folders, nothing replaced
that this run did not write unless the user asks (``--overwrite true``).

- :func:`check_folders_apart`: an output folder inside an input folder (or the reverse) is refused, since the next
  run would read the outputs as inputs (or write into the inputs).
- :func:`mark_output_dir` / :func:`is_output_dir` / :func:`check_not_output_dir`: every output folder of a bundle
  run holds :data:`OUTPUT_MARKER`, so that dataset discovery never takes the project's own outputs for data.
- :class:`GuardedFolderLayout`: MONAI's ``FolderLayout`` (the ``folder_layout`` of ``SaveImage(d)``) that refuses,
  when a file is about to be written, a name that another input of this run already took or a file that exists
  and was not written by this run; :func:`check_planned_outputs` asks it for every input before the run starts, so
  that nothing is half written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from monai.data.folder_layout import FolderLayout, default_name_formatter
from monai.data.utils import create_file_basename
from monai.utils import ImageMetaKey

from monai_hyperconv.utils.flags import as_bool

__all__ = [
    "OUTPUT_MARKER",
    "GuardedFolderLayout",
    "check_folders_apart",
    "check_no_overwrite",
    "check_not_output_dir",
    "check_planned_outputs",
    "is_output_dir",
    "mark_output_dir",
]

#: file that marks a folder as written by a bundle run (predictions, reports): never read as data
OUTPUT_MARKER = ".monai_hyperconv_outputs"


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def check_folders_apart(output_dir: str | os.PathLike, output_name: str = "output_dir", **inputs) -> None:
    """Raise ``ValueError`` when ``output_dir`` is, lies inside or contains one of the input folders ``inputs``.

    Args:
        output_dir: where the run writes.
        output_name: the setting that holds ``output_dir``, for the message.
        inputs: ``setting name=folder`` of every folder the run (or a later training) reads; None entries are skipped.
    """
    out = _real(output_dir)
    for name, folder in inputs.items():
        if not folder:
            continue
        src = _real(folder)
        if os.path.commonpath([out, src]) not in (out, src):
            continue
        relation = "is" if out == src else "is inside" if os.path.commonpath([out, src]) == src else "contains"
        raise ValueError(
            f"{output_name} {os.fspath(output_dir)!r} {relation} {name} {os.fspath(folder)!r}: the outputs would be "
            f"read as inputs by the next run; expected an {output_name} outside {name} (and {name} outside it)."
        )


def mark_output_dir(folder: str | os.PathLike) -> None:
    """Mark ``folder`` (which must exist) as an output folder of this project (:data:`OUTPUT_MARKER`)."""
    marker = os.path.join(os.fspath(folder), OUTPUT_MARKER)
    if not os.path.isfile(marker):
        with open(marker, "w") as f:
            f.write("Outputs of monai_hyperconv: the bundles' dataset discovery does not read this folder.\n")


def is_output_dir(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds :data:`OUTPUT_MARKER` (an output folder of a bundle run)."""
    return os.path.isfile(os.path.join(os.fspath(folder), OUTPUT_MARKER))


def check_not_output_dir(folder: str | os.PathLike, name: str = "dataset_dir") -> None:
    """Raise ``ValueError`` naming ``name`` when ``folder`` is an output folder of a bundle run (not data)."""
    if os.path.isdir(folder) and is_output_dir(folder):
        raise ValueError(
            f"{name} {os.fspath(folder)!r} is an output folder of a monai_hyperconv run (it holds {OUTPUT_MARKER}): "
            "its predictions are not data; expected a folder of input images."
        )


def check_no_overwrite(folder: str | os.PathLike, names: Iterable[str], overwrite: bool | str = False) -> None:
    """Raise ``FileExistsError`` naming the first file ``folder/<name>`` of ``names`` that exists, unless
    ``overwrite`` is on: for the fixed-name files of a run (reports, metric CSVs), before it writes any of them."""
    if as_bool(overwrite, "overwrite"):
        return
    for name in names:
        path = os.path.join(os.fspath(folder), name)
        if os.path.exists(path):
            raise FileExistsError(
                f"{path} exists and this run would replace it: pass --overwrite true to replace it (an earlier "
                "evaluation, or a file of yours), or choose another output folder."
            )


class GuardedFolderLayout(FolderLayout):
    """MONAI's ``FolderLayout`` that never hands out a name twice for two inputs, a name outside ``output_dir``,
    or the name of a file this run did not write (unless ``overwrite``).

    Pass it as ``folder_layout`` of ``SaveImaged``; the name comes from the saver's ``output_name_formatter`` as
    usual (``subject``: the input file, ``idx``: its ``patch_index``). ``data_root_dir`` keeps the input's folders
    below that root, so equal names in different input folders do not collide.

    Args:
        output_dir, postfix, extension, parent, makedirs, data_root_dir: as ``FolderLayout``.
        overwrite: replace existing files that this run did not write (the bundles' ``overwrite`` id).
        name: the setting that holds ``output_dir``, for the messages.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        postfix: str = "",
        extension: str = "",
        parent: bool = False,
        makedirs: bool = True,
        data_root_dir: str | os.PathLike = "",
        overwrite: bool | str = False,
        name: str = "output_dir",
    ) -> None:
        super().__init__(output_dir, postfix, extension, parent, makedirs, data_root_dir or "")
        self.overwrite = as_bool(overwrite, "overwrite")
        self.name = name
        self.claimed: dict[str, str] = {}  # output -> the input it belongs to, in this run

    def planned(self, subject="subject", idx=None, **kwargs) -> str:
        """The name ``filename`` would give, without creating folders or claiming it."""
        name = create_file_basename(
            self.postfix, subject, self.output_dir, self.data_root_dir, self.parent, idx, makedirs=False
        )
        name += "".join(f"_{k}-{v}" for k, v in kwargs.items())
        ext = self.ext or ""
        return name + (f".{ext}" if ext and not ext.startswith(".") else ext)

    def check(self, path: str, source: str, claimed: Mapping[str, str]) -> None:
        """Raise when ``path`` (for input ``source``) leaves ``output_dir``, belongs to another input in
        ``claimed``, or exists without being claimed (and ``overwrite`` is off)."""
        out = _real(self.output_dir)
        if os.path.commonpath([out, _real(path)]) != out:
            raise ValueError(
                f"The output for {source} would be written outside {self.name} {os.fspath(self.output_dir)!r} "
                f"({path}): expected the input below data_root_dir {os.fspath(self.data_root_dir)!r}."
            )
        other = claimed.get(path)
        if other is not None and other != source:
            raise FileExistsError(
                f"{other} and {source} would both be saved as {path}: expected one output per input (rename or "
                "remove one of them; a .nii and a .nii.gz of one name are usually two copies of one image)."
            )
        if other is None and not self.overwrite and os.path.exists(path):
            raise FileExistsError(
                f"{path} exists and this run did not write it (the output for {source}): pass --overwrite true to "
                f"replace it, or choose another {self.name}."
            )

    def filename(self, subject="subject", idx=None, **kwargs) -> str:
        path, source = self.planned(subject, idx, **kwargs), _source(subject, idx)
        self.check(path, source, self.claimed)
        self.claimed[path] = source
        return super().filename(subject, idx, **kwargs)


def _source(subject, idx) -> str:
    return f"{subject}" if idx is None else f"{subject} (slice {idx})"


def check_planned_outputs(
    layouts: Sequence[GuardedFolderLayout],
    items: Sequence[Mapping],
    key: str = "image",
    formatter: Callable | None = None,
) -> None:
    """Run the checks of :class:`GuardedFolderLayout` for every input before anything is written.

    Args:
        layouts: the layouts of the run's savers (e.g. a reconstruction and its zero-filled input).
        items: the run's datalist items; ``item[key]`` is the input file (the first of a list, as MONAI's loader
            records it) and ``item["patch_index"]``, when present, the index of one of several outputs of a file.
        key: the item key of the saved image's input file.
        formatter: the savers' ``output_name_formatter`` (None: MONAI's default, the input's file name).

    Raises:
        FileExistsError: naming two inputs that would share an output, or an existing file (without overwrite).
        ValueError: naming an input whose output would leave the output folder.
    """
    formatter = formatter or default_name_formatter
    for layout in layouts:
        claimed: dict[str, str] = {}
        for item in items:
            files = item[key]
            meta = {
                ImageMetaKey.FILENAME_OR_OBJ: os.fspath(files[0] if isinstance(files, (list, tuple)) else files),
                ImageMetaKey.PATCH_INDEX: item.get("patch_index"),
            }
            kw = formatter(meta, None)
            path, source = layout.planned(**kw), _source(kw.get("subject"), kw.get("idx"))
            layout.check(path, source, claimed)
            claimed[path] = source
