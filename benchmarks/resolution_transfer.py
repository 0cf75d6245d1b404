"""Segmenting at another resolution than the training one (issue 15, item 3): liver bundle, test split.

A network trained on slices resized to ``--train_size`` segments the test slices resized to ``--test_size`` (the
bundle's own evaluation data: ``train.yaml`` + ``evaluate.yaml`` with ``image_size = test_size``, labels resized
nearest), by three routes:

- (a) ``unchanged``: the trained network on the ``test_size`` slices as they are;
- (b) ``resampled``: ``resample_kernels(net, test_size / train_size)`` on the ``test_size`` slices (hyper networks
  only: each kernel keeps its trained physical extent);
- (c) ``resize``: the standard route: slices resized to ``train_size`` (area, as the bundle's preprocessing), the
  trained network, probabilities resized back to ``test_size`` (bilinear, as the bundle's inference inverse).

Dice is the bundle's ``test_dice`` (all test slices pooled, 2TP / (2TP + FP + FN), MONAI's ``ConfusionMatrixMetric``)
at ``test_size``. Time is the forward pass over all test slices (batches of ``--batch_size``, no gradient, kernels
cached after the first pass), median of ``--repeats`` rounds in which the routes alternate, so that load from other
processes hits all alike; compare times only within one run (ratios), not across machines.

Run from the repository root, e.g. after training both networks at 128 (see the liver docs, ``resolution.md``)::

    python benchmarks/resolution_transfer.py --datalist_file bundles/liver_lesion_seg/outputs/warm_start/datalist.json \\
        --model hyper_unet_5x5=bundles/liver_lesion_seg/outputs/warm_start/hyper_unet_5x5/model.pt \\
        --model unet_5x5=bundles/liver_lesion_seg/outputs/warm_start/unet_5x5/model.pt
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
import torch.nn.functional as F
from monai.bundle import ConfigParser
from monai.metrics import ConfusionMatrixMetric

from monai_hyperconv import HyperConvNd, resample_kernels
from monai_hyperconv.handlers import load_network_weights
from monai_hyperconv.utils import atomic_write_csv

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUNDLE = os.path.join(REPO, "bundles", "liver_lesion_seg")
FRAGMENTS = {"hyper_unet_5x5": "configs/networks/hyper_unet_5x5.yaml", "unet_5x5": "configs/networks/unet_5x5.yaml"}


def test_slices(args) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The test split's (image, label) batches at ``test_size``, as the bundle's evaluation loads them."""
    parser = ConfigParser()
    parser.read_config(
        [os.path.join(BUNDLE, "configs", "train.yaml"), os.path.join(BUNDLE, "configs", "evaluate.yaml")]
    )
    parser.update({"bundle_root": args.bundle_root, "datalist_file": args.datalist_file, "image_size": args.test_size,
                   "batch_size": args.batch_size, "cache_workers": 1})  # fmt: skip
    loader = parser.get_parsed_content("validate#dataloader")
    return [(torch.as_tensor(b["image"]).float(), torch.as_tensor(b["label"])) for b in loader]


def load_network(name: str, checkpoint: str, args) -> torch.nn.Module:
    """A configs/networks fragment at ``--channels``, with the checkpoint's weights, in eval mode."""
    if name not in FRAGMENTS:
        raise ValueError(f"--model {name}=...: the network must be one of {sorted(FRAGMENTS)}.")
    parser = ConfigParser()
    parser.read_config([os.path.join(REPO, FRAGMENTS[name])])
    parser.update({"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "network_def#channels": args.channels})
    return load_network_weights(parser.get_parsed_content("network_def"), checkpoint).eval()


def _resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def routes(net: torch.nn.Module, args) -> dict:
    """Route name -> function from test_size images to test_size lesion probabilities."""
    scale = args.test_size / args.train_size
    down = "area" if args.test_size > args.train_size else "bilinear"  # area only averages (downsampling)
    up = "bilinear" if args.test_size > args.train_size else "area"
    out = {
        "unchanged": lambda x: torch.sigmoid(net(x)),
        "resize": lambda x: _resize(torch.sigmoid(net(_resize(x, args.train_size, down))), args.test_size, up),
    }
    if any(isinstance(m, HyperConvNd) for m in net.modules()):
        resampled = resample_kernels(copy.deepcopy(net), scale).eval()
        out["resampled"] = lambda x: torch.sigmoid(resampled(x))
    return out


@torch.no_grad()
def run_route(route, batches) -> tuple[float, float]:
    """(pooled test Dice, seconds) of one pass over the batches."""
    metric = ConfusionMatrixMetric(metric_name="f1 score", compute_sample=False, include_background=True)
    start = time.perf_counter()
    preds = [route(image) for image, _ in batches]
    seconds = time.perf_counter() - start
    for pred, (_, label) in zip(preds, batches):
        metric((pred > 0.5).float(), label.float())
    return float(metric.aggregate()[0].item()), seconds


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT",
                   help=f"a trained network ({', '.join(FRAGMENTS)}) and its model.pt; repeat for several")  # fmt: skip
    p.add_argument("--train_size", type=int, default=128, help="image_size the networks were trained at")
    p.add_argument("--test_size", type=int, default=256, help="image_size of the test slices")
    p.add_argument("--channels", type=int, default=8, help="network_def#channels of the trained networks")
    p.add_argument("--bundle_root", default=BUNDLE)
    p.add_argument("--datalist_file", required=True, help="the split the networks were trained with")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", default=None, help="also write the table as CSV here")
    args = p.parse_args(argv)
    batches = test_slices(args)
    cases = []
    for spec in args.model:
        name, _, checkpoint = spec.partition("=")
        net = load_network(name, checkpoint, args)
        cases += [(name, route, fn) for route, fn in routes(net, args).items()]
    dice, times = {}, {(n, r): [] for n, r, _ in cases}
    for _ in range(args.repeats):  # routes alternate within each round
        for name, route, fn in cases:
            dice[name, route], seconds = run_route(fn, batches)
            times[name, route].append(seconds)
    rows = []
    for name, route, _ in cases:
        base = statistics.median(times[name, "resize"])
        median = statistics.median(times[name, route])
        rows.append({"model": name, "route": route, "test_dice": round(dice[name, route], 4),
                     "seconds": round(median, 3), "time_vs_resize": round(median / base, 2)})  # fmt: skip
    slices = sum(len(b[0]) for b in batches)
    print(f"train {args.train_size}^2 -> test {args.test_size}^2, {slices} test slices, {args.repeats} rounds")
    print("| model | route | test Dice | time (s, median) | time / resize route |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['route']} | {r['test_dice']:.3f} | {r['seconds']:.2f} | {r['time_vs_resize']:.2f} |"
        )
    if args.output:
        atomic_write_csv(args.output, list(rows[0]), [list(r.values()) for r in rows])
    return rows


if __name__ == "__main__":
    main()
