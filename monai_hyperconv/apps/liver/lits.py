"""LiTS (Liver Tumor Segmentation challenge) datalists: discovery, the paper's split, datalist JSON, embedded data.

Public layout: ``dataset_dir/volume-N.nii[.gz]`` with ``dataset_dir/segmentation-N.nii[.gz]`` (0 background,
1 liver, 2 tumour). :func:`prepare_lits_datalist` is what the bundle calls: it reuses a datalist JSON when one
exists, otherwise it (generates the embedded synthetic data when ``dataset_dir`` holds no volumes,) finds the
pairs, splits them by volume in the paper's 80 / 20 / 31 proportions (seeded, every split non-empty) and writes
the JSON in MONAI's decathlon format (paths relative to ``dataset_dir``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import numpy as np
import torch.distributed as dist
from monai.data import load_decathlon_datalist

from monai_hyperconv.apps.liver.synthetic_ct import ensure_synthetic_lits
from monai_hyperconv.data.datalist import SPLIT_KEYS, datalist_source, read_split_json, reusable_datalist, split_sizes
from monai_hyperconv.utils.atomic import atomic_write_json
from monai_hyperconv.utils.files import require_files
from monai_hyperconv.utils.flags import as_bool
from monai_hyperconv.utils.outputs import check_not_output_dir

__all__ = [
    "LITS_LABELS",
    "LITS_SPLIT",
    "find_lits_pairs",
    "lits_inference_files",
    "lits_output_postfix",
    "load_lits_datalist",
    "prepare_lits_datalist",
    "split_counts",
    "split_lits",
    "write_datalist",
]

#: label values of a LiTS segmentation: background, liver, tumour
LITS_LABELS = (0, 1, 2)
#: the paper's training / validation / test volume counts (of 131)
LITS_SPLIT = (80, 20, 31)
_VOLUME_RE = re.compile(r"^volume-(\d+)\.nii(\.gz)?$")


def find_lits_pairs(dataset_dir: str) -> list[dict]:
    """All ``{"image": volume-N, "label": segmentation-N}`` pairs of ``dataset_dir``, sorted by N.

    Raises:
        FileNotFoundError: when the folder does not exist, or naming a volume whose segmentation is missing.
        ValueError: when the folder is an output folder of a bundle run (predictions are not data).
    """
    if not os.path.isdir(dataset_dir):
        raise FileNotFoundError(f"LiTS dataset folder {dataset_dir!r} does not exist.")
    check_not_output_dir(dataset_dir)
    pairs = []
    for name in os.listdir(dataset_dir):
        match = _VOLUME_RE.match(name)
        if match is None:
            continue
        n = int(match.group(1))
        candidates = [os.path.join(dataset_dir, f"segmentation-{n}{ext}") for ext in (".nii", ".nii.gz")]
        label = next((c for c in candidates if os.path.isfile(c)), None)
        if label is None:
            raise FileNotFoundError(
                f"{os.path.join(dataset_dir, name)} has no segmentation: expected {candidates[0]} or {candidates[1]}."
            )
        pairs.append((n, {"image": os.path.join(dataset_dir, name), "label": label}))
    return [p for _, p in sorted(pairs, key=lambda t: t[0])]


def split_counts(n: int, proportions: Sequence[float] = LITS_SPLIT) -> list[int]:
    """Split ``n`` items in ``proportions`` (default: the paper's LiTS split) by largest remainders, every part at
    least 1 (:func:`~monai_hyperconv.data.datalist.split_sizes`).

    Raises:
        ValueError: when ``n`` is smaller than the number of parts.
    """
    return split_sizes(n, proportions)


def split_lits(pairs: Sequence[dict], proportions: Sequence[float] = LITS_SPLIT, seed: int = 0) -> dict[str, list]:
    """Seeded split by volume into ``{"training", "validation", "test"}`` in ``proportions``."""
    counts = split_counts(len(pairs), proportions)
    order = np.random.default_rng(seed).permutation(len(pairs))
    out, start = {}, 0
    for key, c in zip(SPLIT_KEYS, counts):
        out[key] = [dict(pairs[i]) for i in sorted(order[start : start + c])]
        start += c
    return out


def write_datalist(split: Mapping[str, Sequence[dict]], path: str, base_dir: str, source: dict | None = None) -> str:
    """Write a decathlon-style datalist JSON, paths relative to ``base_dir``, atomically (temp file + rename).

    ``source`` (:func:`~monai_hyperconv.data.datalist.datalist_source`) records what the split was made from.
    """
    rel = {
        k: [{kk: os.path.relpath(v, base_dir) for kk, v in item.items()} for item in items]
        for k, items in split.items()
    }
    return atomic_write_json(path, rel if source is None else {**rel, "source": source})


def load_lits_datalist(path: str, base_dir: str) -> dict[str, list]:
    """Read a datalist JSON (relative paths resolved against ``base_dir``) and check every listed file exists.

    Raises:
        ValueError: naming the JSON when it is malformed or lacks one of training / validation / test.
        FileNotFoundError: naming a listed file that does not exist.
    """
    read_split_json(path)
    out = {}
    for key in SPLIT_KEYS:
        items = load_decathlon_datalist(path, is_segmentation=True, data_list_key=key, base_dir=base_dir)
        for item in items:
            if "image" not in item:
                raise ValueError(f"Datalist {path!r}: an item of {key!r} has no 'image' entry: {item}.")
            require_files([item["image"], *([item["label"]] if "label" in item else [])], f"file listed in {path}")
        out[key] = items
    return out


def prepare_lits_datalist(
    dataset_dir: str,
    datalist_file: str | None = None,
    seed: int = 0,
    proportions: Sequence[float] = LITS_SPLIT,
    synthetic: Mapping | None = None,
    generate_data: bool | str = True,
) -> dict[str, list]:
    """The bundle's datalist: reuse ``datalist_file`` when it exists, else build, split and write it.

    When ``dataset_dir`` is missing or holds no ``volume-N`` files, ``generate_data`` is on and ``synthetic`` is not
    None, the embedded
    synthetic CT set is generated there first (``synthetic`` = arguments of
    :func:`~monai_hyperconv.apps.liver.synthetic_ct.generate_synthetic_lits`). In a distributed run rank 0 prepares
    and the other ranks wait for it, so data is generated and the JSON written once.

    Args:
        dataset_dir: the LiTS folder.
        datalist_file: JSON to reuse or write (None: neither read nor written).
        seed: split seed.
        proportions: training / validation / test proportions.
        synthetic: generator arguments, or None to require real data.
        generate_data: the bundle's on/off flag (YAML or command-line string); off requires real data.

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}`` of ``{"image", "label"}`` absolute paths.
    """
    if not as_bool(generate_data, "generate_data"):
        synthetic = None
    distributed = dist.is_available() and dist.is_initialized()
    if not distributed or dist.get_rank() == 0:
        result = _prepare(dataset_dir, datalist_file, seed, proportions, synthetic)
    if distributed:
        dist.barrier()
        if dist.get_rank() != 0:
            result = _prepare(dataset_dir, datalist_file, seed, proportions, None)
    return result


def _prepare(dataset_dir, datalist_file, seed, proportions, synthetic) -> dict[str, list]:
    if synthetic is not None:
        ensure_synthetic_lits(dataset_dir, **dict(synthetic))
    pairs = find_lits_pairs(dataset_dir)
    if not pairs:
        raise FileNotFoundError(f"No LiTS volumes (volume-N.nii or volume-N.nii.gz) in {dataset_dir!r}.")
    source = datalist_source(dataset_dir, seed, [os.path.basename(p["image"]) for p in pairs])
    if reusable_datalist(datalist_file, source):
        return load_lits_datalist(datalist_file, dataset_dir)
    try:
        split = split_lits(pairs, proportions, seed)
    except ValueError as e:
        raise ValueError(f"LiTS dataset folder {dataset_dir!r}: {e}") from e
    if datalist_file:
        write_datalist(split, datalist_file, dataset_dir, source)
    return split


def lits_output_postfix(postfix: str) -> str:
    """The inference ``output_postfix``; ``ValueError`` naming it when it is empty, since the masks would then be
    named ``volume-N.nii.gz`` like LiTS CT volumes, which a later training on the folder reads as volumes."""
    if not str(postfix or "").strip():
        raise ValueError(
            f"output_postfix {postfix!r} would name the predicted masks volume-N.nii.gz, as LiTS names its CT "
            "volumes (a training run on that folder would read them as volumes); expected a postfix such as 'lesion'."
        )
    return str(postfix).strip()


def lits_inference_files(input_dir: str | None = None, **datalist_kwargs) -> list[dict]:
    """Inputs of the inference workflow: every ``volume-N.nii[.gz]`` of ``input_dir``, else the test split.

    Args:
        input_dir: folder of volumes to segment; None or empty uses the test split of the bundle's datalist.
        datalist_kwargs: arguments of :func:`prepare_lits_datalist` (``dataset_dir``, ``datalist_file``, ``seed``,
            ``synthetic``, ``generate_data``), used only without ``input_dir``.

    Raises:
        FileNotFoundError: naming ``input_dir`` when it holds no volume.
    """
    if input_dir:
        if not os.path.isdir(input_dir):
            raise FileNotFoundError(f"Inference input folder {input_dir!r} does not exist.")
        check_not_output_dir(input_dir, "input_dir")
        files = [f for f in os.listdir(input_dir) if _VOLUME_RE.match(f)]
        if not files:
            raise FileNotFoundError(f"No volume-N.nii[.gz] file in the inference input folder {input_dir!r}.")
        files.sort(key=lambda f: int(_VOLUME_RE.match(f).group(1)))
        return [{"image": os.path.join(input_dir, f)} for f in files]
    return [{"image": item["image"]} for item in prepare_lits_datalist(**datalist_kwargs)["test"]]
