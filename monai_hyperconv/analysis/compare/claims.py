"""The paper's claims, one by one, tested on a multi-seed comparison by paired differences against the baseline.

Ma et al. claim that hyper-convolutions, against the regular network they replace, give (1) a better clean test
figure, (2) a smaller train-test gap, (3) more robustness to test-time noise and (4) smoother kernels. Each claim
is read off one paired difference (model − baseline at the same seed, 95 % t-interval): "supported" when the
interval excludes 0 on the claimed side, "contradicted" when it excludes 0 on the other side, "not shown" when it
contains 0 (or fewer than 2 seeds are paired).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monai_hyperconv.analysis.compare.stats import PairedDifference, paired_difference

__all__ = ["Claim", "claim_verdict", "paper_claims"]


@dataclass
class Claim:
    """One claim for one model against the baseline: what was compared, the paired difference, the verdict."""

    model: str
    claim: str
    measure: str
    diff: PairedDifference | None
    verdict: str


def claim_verdict(diff: PairedDifference | None, higher_is_claimed: bool) -> str:
    """``"supported"``, ``"contradicted"`` or ``"not shown"`` (see the module docstring)."""
    if diff is None or diff.low is None or diff.high is None:
        return "not shown"
    low, high = (diff.low, diff.high) if higher_is_claimed else (-diff.high, -diff.low)
    if low > 0:
        return "supported"
    if high < 0:
        return "contradicted"
    return "not shown"


def _per_seed(rows: Sequence[Mapping], model: str, value) -> dict[int, float]:
    """seed -> ``value(row)`` for the model's runs, skipping runs where it is missing or not finite."""
    out = {}
    for r in rows:
        if r["model"] != model:
            continue
        v = value(r)
        if v is not None and math.isfinite(v):
            out[int(r["seed"])] = float(v)
    return out


def _column(name: str):
    return lambda r: None if r.get(name) is None else float(r[name])


def paper_claims(
    rows: Sequence[Mapping],
    models: Sequence[str],
    baseline: str,
    metric: str,
    curves: Mapping[str, Mapping[tuple[str, float], Mapping[int, float]]] | None = None,
) -> list[Claim]:
    """Every claim for every model in ``models`` (not the baseline) against ``baseline``.

    Args:
        rows: one row per run with ``model``, ``seed``, ``test_<metric>``, optionally ``train_<metric>`` and
            ``kernel_smoothness``.
        models: the models to test (the baseline is skipped).
        baseline: the regular network the claims compare with.
        metric: the metric's lower-case name (``dice``, ``psnr``); higher is better.
        curves: robustness sweeps, label -> (noise, level) -> {seed: value}; the robustness claim compares, per
            noise kind, each model's mean figure over the noisy levels minus its clean test figure (the area
            between its robustness curve and its clean level) with the baseline's: the paper's "the gap grows
            with the noise level". The mean over levels, not the noisiest level alone, where every model may be
            at 0.
    """
    test, train = f"test_{metric}", f"train_{metric}"
    claims = []
    for model in models:
        if model == baseline:
            continue

        def paired(value, m=model):
            return paired_difference(_per_seed(rows, m, value), _per_seed(rows, baseline, value))

        diff = paired(_column(test))
        claims.append(Claim(model, "better clean test figure", f"{test} − baseline's", diff, claim_verdict(diff, True)))

        def gap(r):
            return None if r.get(train) is None or r.get(test) is None else float(r[train]) - float(r[test])

        diff = paired(gap)
        if diff is not None:
            measure = f"({train} − {test}) − baseline's"
            claims.append(Claim(model, "smaller train-test gap", measure, diff, claim_verdict(diff, False)))
        for noise, levels, drop in _noise_drops(curves or {}, rows, model, baseline, test):
            diff = paired_difference(*drop)
            measure = f"(mean {metric} at {noise} {levels} − clean {metric}) − baseline's"
            claims.append(Claim(model, f"more robust to {noise} noise", measure, diff, claim_verdict(diff, True)))
        diff = paired(_column("kernel_smoothness"))
        if diff is not None:
            measure = "mean |Laplacian| of the kernels − baseline's"
            claims.append(Claim(model, "smoother kernels", measure, diff, claim_verdict(diff, False)))
    return claims


def _mean_drop(points, clean: dict[int, float], noise: str, levels: list[float]) -> dict[int, float]:
    """seed -> the run's mean metric over ``levels`` of ``noise`` minus its clean metric (seeds with every level)."""
    seeds = [s for s in clean if all(s in points[(noise, lv)] for lv in levels)]
    return {s: sum(points[(noise, lv)][s] for lv in levels) / len(levels) - clean[s] for s in seeds}


def _noise_drops(curves, rows, model: str, baseline: str, test: str):
    """Per noise kind: ``(noise, levels text, (model's drops, baseline's drops))``, a run's drop being its mean metric
    over the noisy levels (level > 0) minus its clean test metric."""
    mine, theirs = curves.get(model, {}), curves.get(baseline, {})
    clean_model, clean_base = _per_seed(rows, model, _column(test)), _per_seed(rows, baseline, _column(test))
    for noise in dict.fromkeys(n for n, _ in mine):
        levels = sorted(lv for n, lv in mine if n == noise and lv > 0 and (n, lv) in theirs)
        if levels:
            drops = (_mean_drop(mine, clean_model, noise, levels), _mean_drop(theirs, clean_base, noise, levels))
            yield noise, f"{levels[0]:g}–{levels[-1]:g}", drops
