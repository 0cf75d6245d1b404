"""A cost model of the direct and the FFT path of a hyper-convolution, which ``fft="auto"`` uses to pick one.

Each path's time is predicted as a non-negative combination of a few work counts of the call (:func:`path_features`):

- direct: multiply-adds ``N C_out C_in/g prod(out) prod(k)``, input reads ``N C_in prod(out) prod(k)`` (what
  dominates at few channels), output elements ``N C_out prod(out)``, one call;
- FFT: transform work ``N (C_in + C_out) P log2 P`` (P: points of the FFT grid), the mixing matmul's multiply-adds
  ``N C_out C_in/g M F`` (F: rfft frequencies, M = N_L + 1 maps), the M-fold intermediate's elements
  ``N min(C_in, C_out) M F``, one call.

The coefficients (seconds per unit of work) are per device type, pass ("train": the pass records gradients, i.e.
forward and backward; "eval": it does not) and spatial dims, fitted by ``benchmarks/path_cost_calibration.py``
(non-negative least squares on relative error over a sweep of shapes), which prints the table below. Where no
coefficients exist (1D, CUDA until calibrated on a GPU), ``fft="auto"`` falls back to the kernel-size thresholds
of :data:`~monai_hyperconv.layers.fft_conv.FFT_MIN_KERNEL_SIZE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from monai_hyperconv.layers.fft_conv import BasisFFTPlan

__all__ = ["PATH_COST_MODEL", "PathCost", "fft_is_cheaper", "path_features", "predicted_seconds"]


class PathCost(NamedTuple):
    """Seconds per unit of each work count of :func:`path_features`, for the direct and the FFT path."""

    direct: tuple[float, float, float, float]
    fft: tuple[float, float, float, float]


# Fitted with ``benchmarks/path_cost_calibration.py --reps 5`` on the project's 2-core CPU (torch 2.13.0+cpu,
# 2 threads; 300 measurements). Median fit errors 9-34 %; the fit, its wrong picks and the check against the faster
# path are in the README's benchmark section. A device type missing here uses the kernel-size thresholds.
PATH_COST_MODEL: dict[str, dict[str, dict[int, PathCost]]] = {
    "cpu": {
        "eval": {
            2: PathCost(direct=(8.281e-12, 1.123e-10, 1.458e-09, 0.0001952), fft=(3.283e-10, 9.804e-11, 0, 0.0004184)),
            3: PathCost(direct=(4.886e-13, 9.752e-11, 4.934e-09, 0.0006003), fft=(3.616e-10, 6.448e-11, 0, 0.00123)),
        },
        "train": {
            2: PathCost(direct=(1.473e-11, 3.726e-10, 2.923e-09, 0.001062), fft=(1.005e-09, 2.499e-10, 0, 0.001765)),
            3: PathCost(direct=(0, 3.685e-10, 6.93e-09, 0.002971), fft=(1.244e-09, 9.815e-11, 0, 0.00314)),
        },
    },
}


def path_features(
    batch: int,
    in_channels: int,
    out_channels: int,
    groups: int,
    kernel_size: Sequence[int],
    maps: int,
    plan: BasisFFTPlan,
) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
    """The work counts of one call on each path (see the module docstring): ``(direct, fft)``."""
    outputs = batch * out_channels * math.prod(plan.out_size)
    macs = outputs * (in_channels // groups) * math.prod(kernel_size)
    reads = batch * in_channels * math.prod(plan.out_size) * math.prod(kernel_size)
    points = math.prod(plan.n_fft)
    freqs = points // plan.n_fft[-1] * (plan.n_fft[-1] // 2 + 1)
    transforms = batch * (in_channels + out_channels) * points * math.log2(max(points, 2))
    mixing = batch * out_channels * (in_channels // groups) * maps * freqs
    intermediate = batch * min(in_channels, out_channels) * maps * freqs
    return (float(macs), float(reads), float(outputs), 1.0), (transforms, float(mixing), float(intermediate), 1.0)


def predicted_seconds(cost: PathCost, features) -> tuple[float, float]:
    """Predicted seconds of the direct and the FFT path."""
    direct, fft = features
    return sum(c * f for c, f in zip(cost.direct, direct)), sum(c * f for c, f in zip(cost.fft, fft))


def fft_is_cheaper(device_type: str, spatial_dims: int, training: bool, features) -> bool | None:
    """Whether the model predicts the FFT path faster; None when the device has no model for this pass and dims."""
    cost = PATH_COST_MODEL.get(device_type, {}).get("train" if training else "eval", {}).get(spatial_dims)
    if cost is None:
        return None
    direct, fft = predicted_seconds(cost, features)
    return fft < direct
