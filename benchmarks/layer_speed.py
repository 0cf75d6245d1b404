"""Speed of hyper-convolutions against torch's convolution of the same configuration.

Every table row is measured in one process, with the variants of a row timed in interleaved, shuffled
repetitions; the table shows medians and the ratio against the baseline (torch's ``nn.Conv{2,3}d``).

1. U-Net scale (the paper's set-up): train step (forward + backward) and eval (forward, ``eval()`` mode,
   ``torch.no_grad``); 2D batch 8, 32->32 channels, 128^2, k = 3, 5, 7; 3D batch 1, 16->16, 64^3, k = 3, 5.
2. Kernel-size sweep (eval, 2D batch 4, 32->32, 128^2, k = 3..31): torch direct conv, the hyper layer forced to
   the FFT path, and the hyper layer with ``fft="auto"``; ``auto / best`` is auto against the faster of
   direct and FFT. The crossover seen here is what ``FFT_MIN_KERNEL_SIZE`` in
   ``monai_hyperconv/layers/fft_conv.py`` records (``--sweep-train`` times forward + backward instead).

Usage: python benchmarks/layer_speed.py [--quick] [--device cpu|cuda] [--reps N] [--only unet|sweep]
"""

from __future__ import annotations

import argparse

import torch
from timing import layer_step, time_interleaved
from torch import nn

from monai_hyperconv import HyperConv2d, HyperConv3d

TORCH_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
HYPER_CONV = {2: HyperConv2d, 3: HyperConv3d}


def unet_scale(device: torch.device, reps: int, quick: bool) -> list[str]:
    configs = [(2, 8, 32, 128, k) for k in (3, 5, 7)] + [(3, 1, 16, 64, k) for k in (3, 5)]
    if quick:
        configs = [(2, 2, 32, 64, 5), (3, 1, 8, 32, 3)]
    rows = [
        "| dims | batch | channels | size | k | torch train ms | hyper train ms | train ratio | torch eval ms | hyper eval ms | eval ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(rows), flush=True)
    for dims, batch, ch, size, k in configs:
        torch.manual_seed(0)
        x = torch.randn(batch, ch, *([size] * dims), device=device)
        ref = TORCH_CONV[dims](ch, ch, k, padding="same").to(device)
        hyper = HYPER_CONV[dims](ch, ch, k).to(device)
        train = time_interleaved(
            {"torch": layer_step(ref.train(), x, True), "hyper": layer_step(hyper.train(), x, True)}, reps, device
        )
        ref.eval(), hyper.eval()
        evals = time_interleaved(
            {"torch": layer_step(ref, x, False), "hyper": layer_step(hyper, x, False)}, reps, device
        )
        rows.append(
            f"| {dims}D | {batch} | {ch}->{ch} | {size}^{dims} | {k} | {train['torch'] * 1e3:.1f} | "
            f"{train['hyper'] * 1e3:.1f} | {train['hyper'] / train['torch']:.3f} | {evals['torch'] * 1e3:.1f} | "
            f"{evals['hyper'] * 1e3:.1f} | {evals['hyper'] / evals['torch']:.3f} |"
        )
        print(rows[-1], flush=True)
    return rows


def kernel_sweep(device: torch.device, reps: int, quick: bool, train: bool, dims: int = 2) -> list[str]:
    sizes = [3, 9, 15, 21, 31] if quick else list(range(3, 32, 2))
    if dims == 2:
        batch, ch, size = (1, 16, 64) if quick else (4, 32, 128)
    else:
        batch, ch, size = (1, 8, 32) if quick else (1, 16, 64)
        sizes = [k for k in sizes if k <= (9 if quick else 15)]
    mode = "train step" if train else "eval"
    rows = [
        f"Kernel sweep, {dims}D {mode}: batch {batch}, {ch}->{ch}, {size}^{dims}",
        "",
        "| k | torch direct ms | hyper FFT ms | hyper auto ms | auto path | direct / auto | auto / best |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(rows), flush=True)
    for k in sizes:
        torch.manual_seed(0)
        x = torch.randn(batch, ch, *([size] * dims), device=device)
        ref = TORCH_CONV[dims](ch, ch, k, padding="same").to(device)
        fft = HYPER_CONV[dims](ch, ch, k, fft=True).to(device)
        auto = HYPER_CONV[dims](ch, ch, k).to(device)
        for m in (ref, fft, auto):
            m.train(train)
        t = time_interleaved(
            {"direct": layer_step(ref, x, train), "fft": layer_step(fft, x, train), "auto": layer_step(auto, x, train)},
            reps,
            device,
        )
        with torch.enable_grad() if train else torch.no_grad():  # the pass decides the threshold
            path = "FFT" if auto._chooses_fft(x) else "direct"
        best = min(t["direct"], t["fft"])
        rows.append(
            f"| {k} | {t['direct'] * 1e3:.1f} | {t['fft'] * 1e3:.1f} | {t['auto'] * 1e3:.1f} | {path} | "
            f"{t['direct'] / t['auto']:.2f} | {t['auto'] / best:.3f} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", choices=["unet", "sweep"], default=None)
    parser.add_argument("--sweep-train", action="store_true", help="time forward + backward in the sweep")
    parser.add_argument("--sweep-dims", type=int, choices=[2, 3], default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, reps {args.reps}\n")
    if args.only in (None, "unet"):
        print("U-Net scale: hyper / torch (median of interleaved repetitions)\n")
        unet_scale(device, args.reps, args.quick)
        print()
    if args.only in (None, "sweep"):
        kernel_sweep(device, args.reps, args.quick, args.sweep_train, args.sweep_dims)


if __name__ == "__main__":
    main()
