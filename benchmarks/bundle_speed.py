"""Training speed of the liver lesion bundle: Hyper-UNet 5×5 vs UNet 5×5, and the share of time spent waiting for data.

Builds each network's trainer from the bundle's own configs (``train.yaml`` + ``configs/networks/<variant>.yaml`` +
overrides), drops the validation / checkpoint / logging handlers, and times ``--iterations`` training iterations
after ``--warmup`` ones with ignite events:

- step: ``ITERATION_STARTED`` → ``ITERATION_COMPLETED`` (batch to device, forward, loss, backward, optimizer step);
- data wait: ``GET_BATCH_STARTED`` → ``GET_BATCH_COMPLETED`` (the trainer waiting on the DataLoader).

The networks run alternately for ``--repeats`` rounds (so CPU contention from other processes hits all alike) and
the medians are reported. Goals (issue): Hyper / UNet seconds per iteration ≤ 1.05, data wait ≤ 10 %. Besides the
paper's UNet 5×5 (3×3 post-upsample convolutions) the table has ``unet_5x5_up5``, the Hyper-UNet's architecture
with torch convolutions, which separates the cost of the larger up-convolutions from that of kernel generation.

Run from the repository root, e.g. (defaults: the embedded data, image 128, 16 channels, batch 8)::

    python benchmarks/bundle_speed.py
    python benchmarks/bundle_speed.py --image_size 256 --channels 32 --device cuda   # the paper's settings
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from ignite.engine import Events
from monai.bundle import ConfigParser

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUNDLE = os.path.join(REPO, "bundles", "liver_lesion_seg")
# network fragment and overrides per variant. The paper's regular UNet 5x5 keeps 3x3 post-upsample convolutions (as
# the released code), the Hyper-UNet's are 5x5: "unet_5x5_up5" is the Hyper-UNet's exact architecture with torch
# convolutions, the baseline that isolates the cost of generating kernels.
VARIANTS = {
    "hyper_unet_5x5": ("configs/networks/hyper_unet_5x5.yaml", {}),
    "unet_5x5": ("configs/networks/unet_5x5.yaml", {}),
    "unet_5x5_up5": ("configs/networks/unet_5x5.yaml", {"network_def#up_kernel_size": 5}),
}


def build_trainer(variant: str, args) -> object:
    """The bundle's SupervisedTrainer for one network variant, without validation or checkpointing."""
    parser = ConfigParser()
    fragment, variant_overrides = VARIANTS[variant]
    parser.read_config([os.path.join(BUNDLE, "configs", "train.yaml"), os.path.join(REPO, fragment)])
    overrides = {
        "bundle_root": args.bundle_root,
        "dataset_dir": args.dataset_dir or os.path.join(args.bundle_root, "data", "lits"),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "network_def#channels": args.channels,
        "device": f"$torch.device('{args.device}')",
        "train#handlers": [],
        "train#trainer#epoch_length": args.warmup + args.iterations,
        "max_epochs": 1,
        "train#dataloader#persistent_workers": False,
    }
    for k, v in {**overrides, **variant_overrides}.items():
        parser[k] = v
    return parser.get_parsed_content("train#trainer")


def time_trainer(trainer, warmup: int) -> tuple[float, float]:
    """Run one epoch; median seconds per iteration (data wait + step) and the data-wait share, after warmup."""
    marks: dict[str, float] = {}
    waits, steps = [], []

    def mark(name):
        return lambda engine: marks.__setitem__(name, time.perf_counter())

    def record(engine):
        if engine.state.iteration > warmup:
            waits.append(marks["got"] - marks["get"])
            steps.append(time.perf_counter() - marks["start"])

    trainer.add_event_handler(Events.GET_BATCH_STARTED, mark("get"))
    trainer.add_event_handler(Events.GET_BATCH_COMPLETED, mark("got"))
    trainer.add_event_handler(Events.ITERATION_STARTED, mark("start"))
    trainer.add_event_handler(Events.ITERATION_COMPLETED, record)
    trainer.run()
    total = [w + s for w, s in zip(waits, steps)]
    return statistics.median(total), sum(waits) / sum(total)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle_root", default=BUNDLE)
    p.add_argument("--dataset_dir", default=None, help="LiTS folder (default: the bundle's embedded data)")
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--num_workers", type=int, default=1)
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for r in range(args.repeats):
        for variant in VARIANTS:
            trainer = build_trainer(variant, args)
            results[variant].append(time_trainer(trainer, args.warmup))
            sec, wait = results[variant][-1]
            print(f"round {r + 1} {variant:14s} {sec:.3f} s/iter, data wait {100 * wait:.1f} %", flush=True)

    print(
        f"\nliver_lesion_seg training, image {args.image_size}, {args.channels} channels, batch {args.batch_size}, "
        f"{args.device}, torch threads {torch.get_num_threads()}, {args.iterations} timed iterations x {args.repeats}"
    )
    print(f"{'network':16s} {'s/iter':>8s} {'data wait':>10s}")
    med = {}
    for variant, rows in results.items():
        med[variant] = statistics.median(s for s, _ in rows)
        print(f"{variant:16s} {med[variant]:8.3f} {100 * statistics.median(w for _, w in rows):9.1f}%")
    print(f"ratio hyper / unet_5x5: {med['hyper_unet_5x5'] / med['unet_5x5']:.3f} (goal <= 1.05)")
    print(f"ratio hyper / unet_5x5_up5 (same architecture): {med['hyper_unet_5x5'] / med['unet_5x5_up5']:.3f}")


if __name__ == "__main__":
    main()
