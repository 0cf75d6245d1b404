"""Helpers shared by test modules (importable because ``pythonpath`` in pyproject.toml adds ``tests/``)."""

import pathlib

# the data-parallel fragment every bundle's multi_gpu_train.yaml builds on (merged between train.yaml and it)
MULTI_GPU_FRAGMENT = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "multi_gpu.yaml")

# tiny embedded data and sizes per bundle, so that initialize() (which builds datasets) takes seconds
TINY_BUNDLE_OVERRIDES = {
    "liver_lesion_seg": {
        "synthetic": {"num_volumes": 4, "size": 48, "num_slices": [5, 6], "seed": 0},
        "image_size": 32,
        "cache_workers": 0,
        "num_workers": 0,
    },
    "liver_lesion_seg_3d": {
        "synthetic": {"num_volumes": 4, "size": 40, "num_slices": [12, 14], "seed": 0},
        "spacing": [10.0, 10.0, 10.0],
        "image_size": [16, 16, 16],
        "batch_size": 1,
        "num_samples": 2,
        "sw_batch_size": 2,
        "cache_workers": 0,
        "num_workers": 0,
    },
    "ms_lesion_seg": {
        "phantoms": {"num_subjects": 3, "num_timepoints": 2, "num_test_subjects": 1, "seed": 0, "voxel_size": 6},
        "image_size": [24, 32, 24],
        "num_workers": 0,
    },
    "csmri_recon": {
        "synthetic": {"num_subjects": 6, "slices_per_subject": 2, "seed": 0},
        "image_size": 32,
        "cache_workers": 0,
        "num_workers": 0,
    },
}


def tiny_bundle_workflow(bundle: str, workflow_type: str, files: list[str], bundle_root: str, **overrides):
    """MONAI's ``ConfigWorkflow`` of a bundle's config ``files`` (merged in order) with its metadata and logging
    files, on the tiny embedded data of :data:`TINY_BUNDLE_OVERRIDES` (``overrides`` on top); not initialized."""
    import os

    from monai.bundle import ConfigWorkflow

    configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundles", bundle, "configs")
    return ConfigWorkflow(
        workflow_type=workflow_type,
        config_file=[os.path.join(configs, f) for f in files],
        meta_file=os.path.join(configs, "metadata.json"),
        logging_file=os.path.join(configs, "logging.conf"),
        bundle_root=bundle_root,
        **{**TINY_BUNDLE_OVERRIDES[bundle], **overrides},
    )


def exception_chain_text(exc: BaseException | None) -> str:
    """Messages of an exception and of every exception it was raised from (MONAI wraps transform errors)."""
    parts = []
    while exc is not None:
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " | ".join(parts)


def torchrun_bundle(config_files: list[str], cli_args: list[str], cwd: str, nproc: int = 2) -> str:
    """``python -m monai.bundle run`` under ``torch.distributed.run`` (``nproc`` CPU processes, one thread each);
    asserts that it succeeded and returns its output (stdout and stderr)."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", f"--nproc_per_node={nproc}"]
    cmd += ["-m", "monai.bundle", "run", "--config_file", repr([str(f) for f in config_files]), *cli_args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=600, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out
