"""Digests of each stage of a bundle run, to find where two machines' runs of the same command part ways.

A seeded run can still differ between machines: in the data it generates, the initial weights, the order and content
of its batches, or only in floating-point arithmetic (thread count, the CPU's vector instructions). One epoch of the
run with a digest after each stage says which: compare two machines' ``fingerprint.json`` from the top, and the
first line that differs is where they part.
"""

from __future__ import annotations

import hashlib
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.bundle import ConfigWorkflow

from monai_hyperconv.utils.atomic import atomic_write_json

__all__ = ["array_digest", "environment", "folder_digests", "run_fingerprint", "state_digest"]

# files of a dataset folder whose decoded arrays are compared (gzip headers hold a time stamp: the bytes differ)
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha", ".npy")
DIGEST_CHARS = 16


def _hash_arrays(arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(np.asarray(array))
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:DIGEST_CHARS]


def _combined(digests: Mapping[str, str]) -> str:
    text = "".join(f"{name}:{digest};" for name, digest in digests.items())
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def array_digest(array) -> str:
    """Digest of an array or tensor's dtype, shape and bytes."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return _hash_arrays([array])


def state_digest(module: torch.nn.Module) -> str:
    """Digest of a module's state dict, tensors in key order (parameters and buffers)."""
    state = module.state_dict()
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            digest.update(array_digest(value).encode())
    return digest.hexdigest()[:DIGEST_CHARS]


def _decoded(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path)
    import nibabel  # a core dependency; imported here so that importing the analysis stays light

    return np.asanyarray(nibabel.load(path).dataobj)


def folder_digests(folder: str) -> dict[str, str]:
    """Digest of every image's decoded array under ``folder`` (relative path -> digest), sorted by path."""
    digests = {}
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(IMAGE_SUFFIXES):
                path = os.path.join(root, name)
                digests[os.path.relpath(path, folder)] = array_digest(_decoded(path))
    return dict(sorted(digests.items()))


def environment() -> dict[str, Any]:
    """What can change floating-point results between machines running the same code."""
    import monai

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def _batch_digest(batch, keys: Sequence[str]) -> dict[str, str]:
    """Digests of a batch's entries: a dict of tensors, or a list of such dicts (a decollated batch)."""
    items = batch if isinstance(batch, (list, tuple)) else [batch]
    items = [item for item in items if isinstance(item, Mapping)]
    return {key: _hash_arrays([np.asarray(item[key]) for item in items]) for key in keys if items and key in items[0]}


def run_fingerprint(
    config_file: str | Sequence[str],
    output_file: str = "fingerprint.json",
    iterations: int = 3,
    batch_keys: Sequence[str] = ("image", "label"),
    **override: Any,
) -> dict[str, Any]:
    """Run one epoch of a bundle's training and record a digest after each stage.

    Checkpoints and outputs go to a temporary folder unless ``ckpt_dir`` / ``output_dir`` are given, so a trained
    ``models/model.pt`` is never touched; the data are generated into (or read from) the bundle's ``dataset_dir`` as
    the run itself would.

    Args:
        config_file: the run's config files, e.g. ``[train.yaml, cpu_quick.yaml]``.
        output_file: where the digests go as JSON.
        iterations: training iterations whose batch and loss are recorded.
        batch_keys: the batch entries hashed.
        override: config overrides, as on ``python -m monai.bundle run`` (``bundle_root`` at least).

    Returns:
        ``environment`` (versions, threads, the CPU's vector instructions), ``data`` (one digest over the decoded
        dataset images, and their count), ``initial_weights``, ``iterations`` (per training iteration: the batch
        digests and the loss), ``epoch1_weights`` and ``epoch1_metrics`` (the validation metrics after one epoch).
    """
    with tempfile.TemporaryDirectory(prefix="fingerprint_") as scratch:
        override.setdefault("ckpt_dir", os.path.join(scratch, "models"))
        override.setdefault("output_dir", os.path.join(scratch, "outputs"))
        workflow = ConfigWorkflow(config_file=config_file, workflow_type="train", logging_file=False, **override)
        workflow.parser.update({"train#trainer#max_epochs": 1})
        workflow.initialize()  # the bundle's initialize list: seeding, checks, run locks, the network
        try:
            initial = state_digest(workflow.parser.get_parsed_content("network"))
            trainer = workflow.parser.get_parsed_content("train#trainer")  # builds the datasets: data generated
            records: list[dict[str, Any]] = []

            def record(engine) -> None:
                if engine.state.iteration <= iterations:
                    output = engine.state.output  # a dict, or a list of them when the trainer decollates
                    loss = (output[0] if isinstance(output, list) else output)["loss"]
                    records.append({**_batch_digest(engine.state.batch, batch_keys), "loss": float(loss)})

            trainer.add_event_handler("ITERATION_COMPLETED", record)
            workflow.run()
            metrics = workflow.parser.get_parsed_content("validate#evaluator").state.metrics
            data = folder_digests(workflow.parser.get_parsed_content("dataset_dir"))
            result = {
                "environment": environment(),
                "data": {"files": len(data), "digest": _combined(data)},
                "initial_weights": initial,
                "iterations": records,
                "epoch1_weights": state_digest(workflow.parser.get_parsed_content("network")),
                "epoch1_metrics": {k: float(v) for k, v in metrics.items() if np.isscalar(v)},
            }
        finally:
            workflow.finalize()
    atomic_write_json(output_file, result)
    return result


def fingerprint_command(config_file: str | Sequence[str], output_file: str = "fingerprint.json", **override: Any):
    """``python -m monai_hyperconv.analysis fingerprint``: print the digests and write them to ``output_file``."""
    result = run_fingerprint(config_file, output_file=output_file, **override)
    for section, value in result.items():
        print(f"{section}: {value}")
    return output_file
