"""Run-time choices of the bundles that depend on the machine or arrive as flags: data-loader workers, AMP, optional
run steps."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from monai_hyperconv.utils.flags import as_bool

__all__ = ["amp_enabled", "auto_num_workers", "available_cpus", "run_if"]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def auto_num_workers(
    num_workers: int | str | None = None, augment_device: torch.device | str | None = None, max_workers: int = 8
) -> int:
    """Data-loader worker processes: ``num_workers`` when given, else one per available CPU but one (the main
    process trains), at most ``max_workers``; 0 when the augmentation runs on a GPU (``augment_device``), since
    CUDA cannot be used in forked workers.

    Random augmentation draws per worker, so a run is reproducible for a fixed worker count only: reproducible
    jobs (the bundles' ``cpu_quick.yaml``) set ``num_workers`` explicitly.

    Args:
        num_workers: a count >= 0 (also as a command-line string), or None / ``"auto"`` to pick from the machine.
        augment_device: where the loader's transforms put the data (None or ``cpu``: in worker processes).
        max_workers: upper bound of the automatic choice.

    Raises:
        ValueError: naming ``num_workers`` for anything else, or for a count > 0 with a CUDA ``augment_device``.
    """
    on_gpu = augment_device is not None and torch.device(augment_device).type == "cuda"
    if num_workers is None or (
        isinstance(num_workers, str) and num_workers.strip().lower() in ("auto", "none", "null")
    ):
        return 0 if on_gpu else max(0, min(max_workers, available_cpus() - 1))
    try:
        n = int(num_workers)
    except (TypeError, ValueError):
        n = -1
    if isinstance(num_workers, bool) or n < 0 or str(n) != str(num_workers).strip():
        raise ValueError(f"num_workers must be a count >= 0 or null (pick from the machine), got {num_workers!r}.")
    if on_gpu and n > 0:
        raise ValueError(
            f"num_workers {n} with augment_device {augment_device}: GPU augmentation runs in the main process, "
            "set num_workers to 0 (or null)."
        )
    return n


def amp_enabled(amp: bool | str | int, device: torch.device | str) -> bool:
    """The ``amp`` flag of a bundle as the bool MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` take.

    MONAI's engines autocast on CUDA only (``torch.autocast("cuda")``), so AMP on another device would silently
    run in float32 with a warning per step; that is refused here.

    Args:
        amp: on/off, from YAML or the command line (``--amp false`` arrives as a string).
        device: the bundle's ``device``.

    Raises:
        ValueError: naming ``amp`` when it is not a flag, or when it is on and ``device`` is not CUDA.
    """
    on = as_bool(amp, "amp")
    if on and torch.device(device).type != "cuda":
        raise ValueError(f"amp true needs a CUDA device (MONAI's engines autocast on CUDA only); device is {device}.")
    return on


def run_if(flag: bool | str | int, step: Callable, name: str = "flag"):
    """Run ``step()`` when ``flag`` is on (converted with :func:`~monai_hyperconv.utils.as_bool`), for optional
    steps of a bundle's ``run`` list, e.g. ``$monai_hyperconv.utils.run_if(@run_noise_sweep, @noise_sweep.run)``.

    Returns:
        what ``step()`` returns, or None when the flag is off.

    Raises:
        ValueError: naming ``name`` when ``flag`` is not a flag.
    """
    return step() if as_bool(flag, name) else None
