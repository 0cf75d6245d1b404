"""Cost of the 3D Hyper-UNet of ``bundles/liver_lesion_seg_3d`` at k = 3, 5, 7, 9 against the regular 3D UNet at 3³.

Networks and shapes are those of the bundle's CPU job (``configs/train.yaml`` + ``configs/cpu_quick.yaml``):
``monai_hyperconv.networks.PaperUNet`` with ``spatial_dims=3``, 8 first-scale channels, N_L = 4; a train step is
forward + Dice-like loss + backward + Adam step on ``batch_size * num_samples`` = 4 patches of 32³; inference is
MONAI's ``SlidingWindowInferer`` (48³ windows, overlap 0, 4 windows a batch) on one 96 x 96 x 48 volume in ``eval()``
under ``no_grad``. All networks are timed in interleaved, shuffled repetitions in one process (``timing.py``);
the table gives each network's median time as a ratio against the regular UNet 3³.

Path check: for each k, one 8 -> 8 hyper layer at the first scale (the largest input, 4 x 8 x 32³) with the direct
and the FFT path forced (train step: forward + backward), against what ``fft="auto"`` picks with the cost model
(default) and in benchmark mode (``monai_hyperconv.layers.path_choice.benchmark``). Where the time goes: the top
operators of one Hyper-UNet train step under ``torch.profiler``.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/hyperconv3d_speed.py [--quick] [--reps 3] [--profile-k 5]
"""

from __future__ import annotations

import argparse

import torch
from monai.inferers import SlidingWindowInferer
from timing import layer_step, network_train_step, once_within, time_interleaved

from monai_hyperconv import HyperConv3d
from monai_hyperconv.layers import path_choice
from monai_hyperconv.networks import PaperUNet
from monai_hyperconv.networks.receptive_field import receptive_field


def unet3d(conv: str, kernel_size: int, channels: int) -> PaperUNet:
    torch.manual_seed(0)
    return PaperUNet(3, 1, 1, channels=channels, conv=conv, kernel_size=kernel_size, hidden_channels=(16, 16, 4))


def train_step(net, x, target):
    """The bundle's loss (binary lesion logits) at the CPU main job's learning rate."""
    return network_train_step(net, x, target, torch.nn.functional.binary_cross_entropy_with_logits, 1e-3)


def infer_step(net, volume, roi, sw_batch):
    inferer = SlidingWindowInferer(roi_size=roi, sw_batch_size=sw_batch, overlap=0.0)

    def step():
        net.eval()
        with torch.no_grad():
            inferer(volume, net)

    return step


def path_check(k: int, x: torch.Tensor, reps: int, device: torch.device) -> str:
    """``auto (default) / auto (benchmark) / fastest forced`` for one first-scale layer, and forced ms."""
    torch.manual_seed(0)
    ch = x.shape[1]
    layers = {n: HyperConv3d(ch, ch, k, fft=f) for n, f in (("direct", False), ("fft", True), ("auto", "auto"))}
    steps = {n: layer_step(layer, x, True) for n, layer in layers.items() if n != "auto"}
    if not once_within(steps["direct"], 2.0, device):
        del steps["direct"]
    t = time_interleaved(steps, reps, device)
    fastest = "FFT" if t["fft"] <= t.get("direct", float("inf")) else "direct"
    with torch.enable_grad():
        default = "FFT" if layers["auto"]._chooses_fft(x) else "direct"
        path_choice.benchmark = True
        try:
            bench = "FFT" if layers["auto"]._chooses_fft(x) else "direct"
        finally:
            path_choice.benchmark = False
    direct_ms = f"{t['direct'] * 1e3:.0f}" if "direct" in t else ">2000"
    return f"{default} / {bench} / {fastest} (direct {direct_ms} ms, FFT {t['fft'] * 1e3:.0f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--patches", type=int, default=4)
    parser.add_argument("--roi", type=int, default=48)
    parser.add_argument("--volume", type=int, nargs=3, default=[96, 96, 48])
    parser.add_argument("--kernels", type=int, nargs="+", default=[3, 5, 7, 9])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile-k", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (16³ patches, 2 channels, k 3 5)")
    args = parser.parse_args()
    if args.quick:
        args.channels, args.patch, args.patches, args.roi, args.volume = 2, 16, 1, 16, [16, 16, 16]
        args.kernels, args.reps, args.profile_k = [3, 5], 1, 3
    device = torch.device("cpu")
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, reps {args.reps}; 3D PaperUNet "
        f"{args.channels} channels; train: {args.patches} x {args.patch}³ patches; inference: volume "
        f"{'x'.join(map(str, args.volume))}, {args.roi}³ windows, overlap 0\n",
        flush=True,
    )
    torch.manual_seed(0)
    x = torch.randn(args.patches, 1, *[args.patch] * 3)
    target = (torch.rand(args.patches, 1, *[args.patch] * 3) < 0.05).float()
    volume = torch.randn(1, 1, *args.volume)
    nets = {"Regular 3": unet3d("regular", 3, args.channels)}
    nets.update({f"Hyper {k}": unet3d("hyper", k, args.channels) for k in args.kernels})
    train = time_interleaved({n: train_step(net, x, target) for n, net in nets.items()}, args.reps, device)
    infer = time_interleaved(
        {n: infer_step(net, volume, [args.roi] * 3, 4) for n, net in nets.items()}, args.reps, device
    )
    feat = torch.randn(args.patches, args.channels, *[args.patch] * 3, requires_grad=True)
    print(
        "| network | parameters | receptive field | train ms | train / UNet 3³ | inference ms | inference / UNet 3³ "
        "| path: auto (cost model) / auto (benchmark) / fastest forced |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base = "Regular 3"
    for name, net in nets.items():
        k = int(name.split()[1])
        paths = path_check(k, feat, args.reps, device) if name != base else "-"
        print(
            f"| {name.split()[0].replace('Regular', 'regular')} UNet {k}³ | {sum(p.numel() for p in net.parameters()):,} | {receptive_field(net)} | "
            f"{train[name] * 1e3:.0f} | {train[name] / train[base]:.2f} | {infer[name] * 1e3:.0f} | "
            f"{infer[name] / infer[base]:.2f} | {paths} |",
            flush=True,
        )
    net = nets[f"Hyper {args.profile_k}"]
    step = train_step(net, x, target)
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    print(f"\nWhere the time goes: one Hyper-UNet {args.profile_k}³ train step, top operators (self CPU time)\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


if __name__ == "__main__":
    main()
