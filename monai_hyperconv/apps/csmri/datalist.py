"""The CS-MRI bundle's datalist: found and split by subject once, written as JSON, reused while the data are the same."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch.distributed as dist

from monai_hyperconv.apps.csmri.discovery import CSMRI_SPLIT, find_csmri_images, split_by_subject, subject_of
from monai_hyperconv.apps.csmri.head_slices import ensure_head_slices
from monai_hyperconv.apps.csmri.icbm152_slices import ensure_icbm152_slices
from monai_hyperconv.data.datalist import SPLIT_KEYS, datalist_source, read_split_json, reusable_datalist
from monai_hyperconv.utils.atomic import atomic_write_json
from monai_hyperconv.utils.files import ensure_writable_dir, require_files
from monai_hyperconv.utils.flags import as_bool

__all__ = ["csmri_inference_files", "load_csmri_datalist", "prepare_csmri_datalist", "write_csmri_datalist"]


def write_csmri_datalist(
    split: Mapping[str, Sequence[dict]], path: str, base_dir: str, source: dict | None = None
) -> str:
    """Write the split as JSON (image paths relative to ``base_dir``), atomically; ``source``
    (:func:`~monai_hyperconv.data.datalist.datalist_source`) records what the split was made from."""
    content = {
        k: [{**it, "image": os.path.relpath(it["image"], base_dir)} for it in items] for k, items in split.items()
    }
    if source is not None:
        content["source"] = source
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)), "datalist folder")
    return atomic_write_json(path, content)


def load_csmri_datalist(path: str, base_dir: str) -> dict[str, list]:
    """Read a datalist JSON of :func:`write_csmri_datalist`; check its keys and that every listed file exists.

    Raises:
        ValueError: naming the JSON when it is malformed or lacks a split or an item key.
        FileNotFoundError: naming a listed file that does not exist.
    """
    content = read_split_json(path)
    out = {}
    for key in SPLIT_KEYS:
        items = []
        for it in content[key]:
            if not isinstance(it, dict) or "image" not in it:
                raise ValueError(f"Datalist {path!r}: an item of {key!r} has no 'image' entry: {it}.")
            image = it["image"] if os.path.isabs(it["image"]) else os.path.join(base_dir, it["image"])
            require_files([image], f"file listed in {path}")
            items.append({"slice": -1.0, "subject": subject_of(it["image"]), **it, "image": image})
        out[key] = items
    return out


def prepare_csmri_datalist(
    dataset_dir: str,
    datalist_file: str | None = None,
    seed: int = 0,
    proportions: Sequence[float] = CSMRI_SPLIT,
    slices_per_volume: int = 5,
    slice_range: Sequence[float] = (0.3, 0.7),
    synthetic: Mapping | None = None,
    generate_data: bool | str = True,
    head_template: str | None = None,
) -> dict[str, list]:
    """The bundle's datalist: reuse ``datalist_file`` when it exists, else find, split by subject and write it.

    When ``dataset_dir`` is missing or empty, ``generate_data`` is on (a flag from YAML or the command line) and
    ``synthetic`` is not None, the embedded data are generated there first: slices of synthetic heads made from
    ``head_template`` (:func:`generate_head_slices`, the bundle's default) or, without a template, the older
    skull-stripped ICBM152 slices (:func:`generate_icbm152_slices`); ``synthetic`` = that generator's arguments.
    In a distributed run rank 0 prepares and the other ranks wait, so data are generated and the JSON written once.

    Returns:
        ``{"training", "validation", "test"}`` lists of ``{"image", "slice", "subject"}`` with absolute paths.
    """
    if not as_bool(generate_data, "generate_data"):
        synthetic = None
    distributed = dist.is_available() and dist.is_initialized()
    if not distributed or dist.get_rank() == 0:
        result = _prepare(
            dataset_dir, datalist_file, seed, proportions, slices_per_volume, slice_range, synthetic, head_template
        )
    if distributed:
        dist.barrier()
        if dist.get_rank() != 0:
            result = _prepare(dataset_dir, datalist_file, seed, proportions, slices_per_volume, slice_range, None)
    return result


def _prepare(dataset_dir, datalist_file, seed, proportions, slices_per_volume, slice_range, synthetic, head=None):
    if synthetic is not None and head:
        ensure_head_slices(dataset_dir, head, **dict(synthetic))
    elif synthetic is not None:
        ensure_icbm152_slices(dataset_dir, **dict(synthetic))
    items = find_csmri_images(dataset_dir, slices_per_volume, slice_range)
    if not items:
        raise FileNotFoundError(f"No T1 NIfTI file (.nii / .nii.gz, 2D slices or 3D volumes) under {dataset_dir!r}.")
    names = [f"{os.path.relpath(it['image'], dataset_dir)}@{it['slice']:.4f}" for it in items]
    source = datalist_source(dataset_dir, seed, names)
    if reusable_datalist(datalist_file, source):
        return load_csmri_datalist(datalist_file, dataset_dir)
    try:
        split = split_by_subject(items, proportions, seed)
    except ValueError as e:
        raise ValueError(f"CS-MRI dataset folder {dataset_dir!r}: {e}") from e
    if datalist_file:
        write_csmri_datalist(split, datalist_file, dataset_dir, source)
    return split


def csmri_inference_files(
    input_dir: str | None = None,
    dataset_dir: str | None = None,
    datalist_file: str | None = None,
    seed: int = 0,
    slices_per_volume: int = 5,
    slice_range: Sequence[float] = (0.3, 0.7),
    synthetic: Mapping | None = None,
    generate_data: bool | str = True,
    head_template: str | None = None,
) -> list[dict]:
    """Inputs of the inference workflow: the NIfTI slices / volumes of ``input_dir``, or the test split of the
    bundle's datalist (:func:`prepare_csmri_datalist` with the other arguments).

    Raises:
        FileNotFoundError: naming ``input_dir`` when it holds no NIfTI file.
    """
    if input_dir:
        items = find_csmri_images(input_dir, slices_per_volume, slice_range)
        if not items:
            raise FileNotFoundError(f"No .nii / .nii.gz file in the inference input folder {input_dir!r}.")
        return items
    if dataset_dir is None:
        raise ValueError("Give input_dir, or dataset_dir (and datalist_file) to use the test split.")
    split = prepare_csmri_datalist(
        dataset_dir, datalist_file, seed, CSMRI_SPLIT, slices_per_volume, slice_range, synthetic, generate_data,
        head_template,
    )  # fmt: skip
    return [dict(it) for it in split["test"]]
