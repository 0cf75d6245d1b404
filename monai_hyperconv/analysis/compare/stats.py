"""Statistics of a multi-seed comparison: mean ± sd per model, paired differences against a baseline with a t-interval.

Runs at the same seed share the data split and the random streams, so the difference of two models at one seed
removes what the seed does to both; the interval is Student's t on those per-seed differences. With 3 seeds the
t quantile is 4.30 (against 1.96 for a normal interval): such intervals are wide by construction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monai_hyperconv.utils.optional import require

__all__ = ["PairedDifference", "mean_sd", "paired_difference", "t_quantile"]

# Student's t 0.975 quantiles for 1..30 degrees of freedom, used when scipy is not installed.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (``t_{(1 + level) / 2, df}``).

    Uses ``scipy.stats.t`` when scipy is installed; otherwise a table, which holds 95 % only (df > 30: 1.96 would
    understate it slightly, so the df = 30 value is used).

    Raises:
        ValueError: ``df < 1``, or a level other than 0.95 without scipy.
    """
    if df < 1:
        raise ValueError(f"a t-interval needs at least 2 paired values (df >= 1), got df={df}.")
    try:
        t = require("scipy.stats", purpose="Student's t quantiles").t
    except ImportError:
        if not math.isclose(level, 0.95):
            raise ValueError(f"without scipy only the 95 % interval is available, got level={level}.") from None
        return _T975[min(df, len(_T975)) - 1]
    return float(t.ppf((1.0 + level) / 2.0, df))


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; None for a single value)."""
    if not values:
        raise ValueError("mean_sd needs at least one value.")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass
class PairedDifference:
    """``model - baseline`` over the seeds both have: their mean, sd and the t-interval of the mean.

    ``low`` / ``high`` are None when fewer than 2 seeds are paired.
    """

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    seeds: list[int]


def paired_difference(
    model: Mapping[int, float], baseline: Mapping[int, float], level: float = 0.95
) -> PairedDifference | None:
    """The paired difference ``model[s] - baseline[s]`` over the seeds ``s`` in both; None when no seed is shared.

    Args:
        model: seed -> metric of the model.
        baseline: seed -> metric of the baseline.
        level: confidence level of the interval.
    """
    seeds = sorted(set(model) & set(baseline))
    if not seeds:
        return None
    diffs = [float(model[s]) - float(baseline[s]) for s in seeds]
    mean, sd = mean_sd(diffs)
    if sd is None:
        return PairedDifference(1, mean, None, None, None, seeds)
    half = t_quantile(len(diffs) - 1, level) * sd / math.sqrt(len(diffs))
    return PairedDifference(len(diffs), mean, sd, mean - half, mean + half, seeds)
