"""Does a warm-started hyper network keep what it was fitted to when it is fine-tuned? (evidence issue, item 3)

A small, self-contained task: bright disks on a noisy background, 32x32, segmented by the paper's UNet 5x5 (8
channels). Per seed: train the UNet (``--unet_steps`` Adam steps at 1e-3), turn it into a Hyper-UNet with
``hyperize(init="fit")`` at N_L = 4 and 24, measure Dice, fine-tune ``--steps`` Adam steps at ``--lr`` (the paper's
1e-4), measure Dice again. Each variant of the recipe changes one thing: the fit's ridge
(``hyperize(fit_ridge=...)``), the kernel networks' learning rate (``hyper_param_groups(kernel_lr_scale=...)``) or
the kernel weight decay. Dice is pooled over a fixed held-out set of 64 images (2TP / (2TP + FP + FN)), the
network in eval mode. CPU, float32; a few minutes::

    python benchmarks/warm_start_finetune.py --seeds 0 1 2 --out warm_start_finetune.csv
"""

from __future__ import annotations

import argparse
import copy
import csv
import statistics

import torch

from monai_hyperconv import HyperConvNd, PaperUNet, hyperize
from monai_hyperconv.layers import hyper_param_groups

VARIANTS = {
    # name: (fit_ridge, kernel_lr_scale, kernel_weight_decay)
    "paper (exact fit)": (0.0, None, 0.0),
    "ridge 1e-4": (1e-4, None, 0.0),
    "ridge 1e-3": (1e-3, None, 0.0),
    "lr scale auto": (0.0, "auto", 0.0),
    "ridge 1e-4 + lr auto": (1e-4, "auto", 0.0),
}


def disks(n: int, generator: torch.Generator, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images with 1-3 disks of radius 3-7 (intensity 1) on N(0, 0.35^2) noise, and their masks."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            cy, cx = torch.randint(6, size - 6, (2,), generator=generator).tolist()
            r = float(torch.empty(1).uniform_(3, 7, generator=generator))
            masks[i, 0] = torch.maximum(masks[i, 0], ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).float())
    images = masks + 0.35 * torch.randn(masks.shape, generator=generator)
    return images, masks


def soft_dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    return 1 - (2 * (p * masks).sum() + 1e-5) / (p.sum() + masks.sum() + 1e-5)


@torch.no_grad()
def dice(net: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor) -> float:
    net.eval()
    pred = (net(images) > 0).float()
    tp = (pred * masks).sum()
    return float(2 * tp / (pred.sum() + masks.sum()).clamp_min(1))


def train(net, groups, steps: int, lr: float, generator: torch.Generator, decoupled: bool = True) -> list[float]:
    optimizer = torch.optim.Adam(groups, lr=lr, decoupled_weight_decay=decoupled)
    losses = []
    for _ in range(steps):
        net.train()
        images, masks = disks(16, generator)
        loss = soft_dice_loss(net(images), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def max_output_weight(net) -> float:
    return max(float(m.kernel_net.out.weight.abs().max()) for m in net.modules() if isinstance(m, HyperConvNd))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--unet_steps", type=int, default=300)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--n_l", type=int, nargs="+", default=[4, 24])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--out", default=None, help="CSV of every (seed, N_L, variant)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    test_images, test_masks = disks(64, torch.Generator().manual_seed(12345))
    rows = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        unet = PaperUNet(2, 1, 1, channels=8, conv="regular", kernel_size=5, dropout=0.0)
        train(unet, unet.parameters(), args.unet_steps, 1e-3, torch.Generator().manual_seed(seed))
        unet_dice = dice(unet, test_images, test_masks)
        for n_l in args.n_l:
            for name in args.variants:
                ridge, scale, decay = VARIANTS[name]
                torch.manual_seed(1000 + seed)  # the same fresh hidden features for every variant
                hyper = hyperize(copy.deepcopy(unet), hidden_channels=(16, 16, n_l), init="fit", fit_ridge=ridge)
                before = dice(hyper, test_images, test_masks)
                weight = max_output_weight(hyper)
                groups = hyper_param_groups(hyper, args.lr, scale, decay)
                losses = train(hyper, groups, args.steps, args.lr, torch.Generator().manual_seed(10_000 + seed))
                after = dice(hyper, test_images, test_masks)
                row = {"seed": seed, "n_l": n_l, "variant": name, "unet_dice": unet_dice, "dice_before": before,
                       "dice_after": after, "max_out_weight": weight, "last_loss": losses[-1]}  # fmt: skip
                rows.append(row)
                print(f"seed {seed} N_L={n_l:2d} {name:22s} UNet {unet_dice:.3f} fitted {before:.3f} "
                      f"-> fine-tuned {after:.3f} (max |W_out| {weight:.1f})", flush=True)  # fmt: skip
    print("\nmean over seeds: Dice fitted -> after fine-tuning (change)")
    for n_l in args.n_l:
        for name in args.variants:
            sel = [r for r in rows if r["n_l"] == n_l and r["variant"] == name]
            b = statistics.mean(r["dice_before"] for r in sel)
            a = statistics.mean(r["dice_after"] for r in sel)
            worst = min(r["dice_after"] - r["dice_before"] for r in sel)
            print(f"N_L={n_l:2d} {name:22s} {b:.3f} -> {a:.3f} ({a - b:+.3f}, worst seed {worst:+.3f})")
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
