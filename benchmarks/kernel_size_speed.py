"""Cost of large kernels in a Hyper-UNet: train step and eval at k = 15 and 31 against the same network at k = 5.

The network is ``monai_hyperconv.networks.PaperUNet`` (``conv="hyper"``, as ``configs/networks/hyper_unet_5x5.yaml``
but with ``--channels`` first-scale channels), on a batch of random 2D images. Train step: forward, cross-entropy-like
loss, backward and an Adam step; eval: forward in ``eval()`` mode under ``torch.no_grad``. All variants are timed in
interleaved, shuffled repetitions in one process; the table shows medians and each k's ratio against k = 5
(goal of issue 13: <= 1.5x at k = 31, train and eval).

Usage: python benchmarks/kernel_size_speed.py [--channels 8] [--batch 4] [--size 128] [--kernels 5 15 31] [--reps 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from monai_hyperconv.networks import PaperUNet


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(variants: dict, reps: int, device: torch.device, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each variant; each repetition runs all variants in a shuffled order."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for _ in range(reps):
        random.shuffle(order)
        for name in order:
            sync(device)
            start = time.perf_counter()
            variants[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def hyper_unet(kernel_size: int, channels: int, device: torch.device, spatial_dims: int = 2) -> PaperUNet:
    """The Hyper-UNet of ``configs/networks/hyper_unet_5x5.yaml`` with another kernel size and width."""
    torch.manual_seed(0)
    return PaperUNet(spatial_dims, 1, 2, channels=channels, conv="hyper", kernel_size=kernel_size).to(device)


def train_step(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor):
    optimizer = torch.optim.Adam(net.parameters(), 1e-4)

    def step():
        net.train()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), target).backward()
        optimizer.step()

    return step


def eval_step(net: torch.nn.Module, x: torch.Tensor):
    def step():
        net.eval()
        with torch.no_grad():
            net(x)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--kernels", type=int, nargs="+", default=[5, 15, 31], help="the first is the baseline")
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, reps {args.reps}; Hyper-UNet "
        f"{args.channels} channels, batch {args.batch}, {args.size}^2\n"
    )
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, args.size, args.size, device=device)
    target = torch.randint(0, 2, (args.batch, args.size, args.size), device=device)
    nets = {k: hyper_unet(k, args.channels, device) for k in args.kernels}
    train = time_interleaved({k: train_step(n, x, target) for k, n in nets.items()}, args.reps, device)
    evals = time_interleaved({k: eval_step(n, x) for k, n in nets.items()}, args.reps, device)
    base = args.kernels[0]
    print(f"| k | train ms | train / k={base} | eval ms | eval / k={base} |")
    print("|---|---|---|---|---|")
    for k in args.kernels:
        print(f"| {k} | {train[k] * 1e3:.1f} | {train[k] / train[base]:.2f} | {evals[k] * 1e3:.1f} | "
              f"{evals[k] / evals[base]:.2f} |")


if __name__ == "__main__":
    main()
