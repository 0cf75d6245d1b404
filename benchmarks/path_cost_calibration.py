"""Calibrate the path cost model of ``fft="auto"`` (``monai_hyperconv/layers/path_cost.py``) on this device.

Times single hyper-convolution layers (``C_in -> C_out``, stride 1, ``padding="same"``) forced to the direct and to
the FFT path over a sweep of batch sizes, channels, input sizes and kernel sizes, for the train pass (forward +
backward, kernel regenerated) and the eval pass (``torch.no_grad``, cached kernel and spectrum); the two paths of a
point are timed interleaved (medians). Then, per pass and spatial dims, it fits each path's seconds as a
non-negative combination of the work counts of ``path_features`` (least squares on relative error) and prints:

- the ``PATH_COST_MODEL`` entry to paste into ``monai_hyperconv/layers/path_cost.py`` for this device type;
- the fit's median and worst relative error per path;
- in-sample, the choice's time against the faster measured path (median, worst): how much a wrong pick costs.

A direct call slower than ``--max-direct-seconds`` once is not timed further (far from the crossover, and torch's
direct convolution is not linear in the kernel's taps there). Out-of-sample check: ``benchmarks/kernel_size_speed.py --paths [--train]``.

Usage: PYTHONPATH=. python benchmarks/path_cost_calibration.py [--device cpu] [--reps 5] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics

import numpy as np
import torch
from timing import layer_step, once_within, time_interleaved

from monai_hyperconv import HyperConv1d, HyperConv2d, HyperConv3d
from monai_hyperconv.layers.fft_conv import use_fft
from monai_hyperconv.layers.path_choice import call_features
from monai_hyperconv.layers.path_cost import PathCost, predicted_seconds

CONV = {1: HyperConv1d, 2: HyperConv2d, 3: HyperConv3d}
# (dims, batches, (C_in, C_out) pairs, sizes, kernel sizes)
SWEEP = [
    (2, (1, 4), ((8, 8), (32, 32), (16, 8)), (32, 128, 256), (3, 5, 9, 15, 31)),
    (3, (1, 2), ((8, 8), (16, 16)), (16, 32, 48), (3, 5, 7, 11, 15)),
]
QUICK_SWEEP = [
    (2, (1, 4), ((8, 8), (32, 32)), (32, 128), (3, 9, 31)),
    (3, (1,), ((8, 8),), (16, 32), (3, 7, 15)),
]


def with_features(row: dict) -> dict:
    """A saved measurement with its work counts recomputed (so a change of the features can be refitted)."""
    batch, c_in, c_out, size, k = row["shape"]
    x = torch.empty(batch, c_in, *([size] * row["dims"]), device="meta")
    return {**row, "features": call_features(CONV[row["dims"]](c_in, c_out, k), x)}


def measure(sweep, device, reps: int, max_direct_seconds: float) -> list[dict]:
    rows = []
    for dims, batches, channels, sizes, kernels in sweep:
        for batch, (c_in, c_out), size, k in itertools.product(batches, channels, sizes, kernels):
            if k > size:
                continue
            torch.manual_seed(0)
            x = torch.randn(batch, c_in, *([size] * dims), device=device)
            direct = CONV[dims](c_in, c_out, k, fft=False).to(device)
            fft = CONV[dims](c_in, c_out, k, fft=True).to(device)
            features = call_features(direct, x)
            for train in (True, False):
                steps = {"fft": layer_step(fft, x, train)}
                if once_within(layer_step(direct, x, train), max_direct_seconds, device):
                    steps["direct"] = layer_step(direct, x, train)
                t = time_interleaved(steps, reps, device)
                rows.append(
                    {
                        "dims": dims,
                        "pass": "train" if train else "eval",
                        "shape": (batch, c_in, c_out, size, k),
                        "features": features,
                        "direct": t.get("direct"),
                        "fft": t["fft"],
                    }
                )
                direct_ms = "not timed" if "direct" not in t else f"{t['direct'] * 1e3:.2f} ms"
                print(
                    f"{dims}D b{batch} {c_in}->{c_out} {size} k{k} {rows[-1]['pass']}: direct {direct_ms}, "
                    f"fft {t['fft'] * 1e3:.2f} ms",
                    flush=True,
                )
    return rows


def nonnegative_fit(features: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Coefficients >= 0 minimising the relative error: least squares, dropping negative terms until none is left."""
    scaled = features / seconds[:, None]
    scale = np.abs(scaled).max(0)
    scale[scale == 0] = 1.0
    active = list(range(features.shape[1]))
    while True:
        coef = np.zeros(features.shape[1])
        solution, *_ = np.linalg.lstsq(scaled[:, active] / scale[active], np.ones(len(seconds)), rcond=None)
        coef[active] = solution / scale[active]
        negative = [i for i in active if coef[i] < 0]
        if not negative:
            return coef
        active.remove(min(negative, key=lambda i: coef[i]))


def fit(rows: list[dict]) -> dict[str, dict[int, PathCost]]:
    model: dict[str, dict[int, PathCost]] = {}
    for (pass_, dims), group in itertools.groupby(
        sorted(rows, key=lambda r: (r["pass"], r["dims"])), key=lambda r: (r["pass"], r["dims"])
    ):
        group = list(group)
        timed = [r for r in group if r["direct"] is not None]
        direct = nonnegative_fit(np.array([r["features"][0] for r in timed]), np.array([r["direct"] for r in timed]))
        fft = nonnegative_fit(np.array([r["features"][1] for r in group]), np.array([r["fft"] for r in group]))
        model.setdefault(pass_, {})[dims] = PathCost(tuple(direct.tolist()), tuple(fft.tolist()))
    return model


def report(rows: list[dict], model: dict[str, dict[int, PathCost]], device_type: str) -> None:
    worst_picks = []
    print(f"\nPATH_COST_MODEL[{device_type!r}] = {{")
    for pass_, by_dims in sorted(model.items()):
        print(f"    {pass_!r}: {{")
        for dims, cost in sorted(by_dims.items()):
            direct = ", ".join(f"{c:.4g}" for c in cost.direct)
            fft = ", ".join(f"{c:.4g}" for c in cost.fft)
            print(f"        {dims}: PathCost(direct=({direct}), fft=({fft})),")
        print("    },")
    print("}\n")
    print(
        "| pass | dims | points | direct fit error median / worst | FFT fit error median / worst | "
        "model: choice / best median, worst, wrong picks | thresholds: the same |"
    )
    print("|---|---|---|---|---|---|---|")
    for pass_, by_dims in sorted(model.items()):
        for dims, cost in sorted(by_dims.items()):
            group = [r for r in rows if r["pass"] == pass_ and r["dims"] == dims]
            errors = {"direct": [], "fft": []}
            choice, wrong, by_threshold, threshold_wrong = [], 0, [], 0
            for r in group:
                predicted = dict(zip(("direct", "fft"), predicted_seconds(cost, r["features"])))
                for path, seen in errors.items():
                    if r[path] is not None:
                        seen.append(abs(predicted[path] / r[path] - 1))
                if r["direct"] is None:
                    continue
                pick = "fft" if predicted["fft"] < predicted["direct"] else "direct"
                best = min(r["direct"], r["fft"])
                choice.append(r[pick] / best)
                wrong += r[pick] > best
                if r[pick] > 1.2 * best:
                    worst_picks.append(f"{pass_} {dims}D shape {r['shape']}: {pick} {r[pick] / best:.2f}x the best")
                k = r["shape"][-1]
                threshold_pick = (
                    "fft" if use_fft(device_type, dims, [k] * dims, [1] * dims, pass_ == "train") else "direct"
                )
                by_threshold.append(r[threshold_pick] / best)
                threshold_wrong += r[threshold_pick] > best
            print(
                f"| {pass_} | {dims}D | {len(group)} | {statistics.median(errors['direct']):.2f} / "
                f"{max(errors['direct']):.2f} | {statistics.median(errors['fft']):.2f} / {max(errors['fft']):.2f} | "
                f"{statistics.median(choice):.2f}, {max(choice):.2f}, {wrong} of {len(choice)} | "
                f"{statistics.median(by_threshold):.2f}, {max(by_threshold):.2f}, {threshold_wrong} of {len(choice)} |"
            )
    print("\nThe model's picks more than 1.2x the faster path:" if worst_picks else "")
    for line in worst_picks:
        print(f"- {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--max-direct-seconds", type=float, default=0.5, help="direct calls slower are not timed")
    parser.add_argument("--quick", action="store_true", help="a small sweep (a smoke run, not a calibration)")
    parser.add_argument("--save", help="write the measurements to this JSON file")
    parser.add_argument("--load", help="fit measurements of an earlier --save instead of measuring")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, reps {args.reps}\n")
    if args.load:
        with open(args.load) as f:
            rows = [with_features(r) for r in json.load(f)]
    else:
        rows = measure(QUICK_SWEEP if args.quick else SWEEP, device, args.reps, args.max_direct_seconds)
    if args.save:
        with open(args.save, "w") as f:
            json.dump([{k: v for k, v in r.items() if k != "features"} for r in rows], f, indent=1)
    report(rows, fit(rows), device.type)


if __name__ == "__main__":
    main()
