"""Cost of large kernels in a Hyper-UNet: train step and eval at k = 15 and 31 against the same network at k = 5.

The network is ``monai_hyperconv.networks.PaperUNet`` (``conv="hyper"``, as ``configs/networks/hyper_unet_5x5.yaml``
but with ``--channels`` first-scale channels), on a batch of random 2D images. Train step: forward, cross-entropy-like
loss, backward and an Adam step; eval: forward in ``eval()`` mode under ``torch.no_grad``. All variants are timed in
interleaved, shuffled repetitions in one process; the table shows medians and each k's ratio against k = 5
(goal of issue 13: <= 1.5x at k = 31, train and eval).

``--paths``: instead, the path choice of single layers (``channels -> channels``): for each shape and kernel size
the direct and the FFT path forced, ``fft="auto"`` by default (the cost model of ``layers/path_cost.py``, or the
thresholds where the device has none) and ``fft="auto"`` in benchmark mode
(``monai_hyperconv.layers.path_choice.benchmark``, its one-time measurement done in the warm-up, outside the timed
calls); ``auto / best`` against the faster forced path (goal: <= 1.05). A forced direct call slower than 1 s once
is not timed further (torch's 31x31 direct convolution at 256^2 takes about 28 s here): the FFT path is then the best.

``--compile``: also times the Hyper-UNet compiled with ``torch.compile`` (train step and eval, compiled vs eager).

``--layers``: also times each hyper layer of the networks alone, on inputs of the shapes it sees in the network
(forward + backward of a scalar loss, and eval), against the same layer of the baseline network: where the step's
time goes.

Run from the repository root with the worktree's package first on the path, e.g.::

    PYTHONPATH=. python benchmarks/kernel_size_speed.py [--channels 8] [--batch 4] [--size 128] [--kernels 5 15 31]
    PYTHONPATH=. python benchmarks/kernel_size_speed.py --paths [--train]
    PYTHONPATH=. python benchmarks/kernel_size_speed.py --kernels 5 31 --layers
"""

from __future__ import annotations

import argparse
import statistics

import torch
from timing import layer_step, network_train_step, once_within, time_interleaved

from monai_hyperconv import HyperConv2d, HyperConv3d
from monai_hyperconv.layers import path_choice
from monai_hyperconv.networks import PaperUNet

# (spatial dims, batch, channels, size): the shapes of issue 13's item 2
PATH_SHAPES = [(2, 4, 8, 128), (2, 2, 8, 256), (3, 1, 8, 32)]


def hyper_unet(kernel_size: int, channels: int, device: torch.device, spatial_dims: int = 2) -> PaperUNet:
    """The Hyper-UNet of ``configs/networks/hyper_unet_5x5.yaml`` with another kernel size and width."""
    torch.manual_seed(0)
    return PaperUNet(spatial_dims, 1, 2, channels=channels, conv="hyper", kernel_size=kernel_size).to(device)


def train_step(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor):
    return network_train_step(net, x, target, torch.nn.functional.cross_entropy, 1e-4)


def eval_step(net: torch.nn.Module, x: torch.Tensor):
    def step():
        net.eval()
        with torch.no_grad():
            net(x)

    return step


def path_name(fft: bool) -> str:
    return "FFT" if fft else "direct"


def picked(layer, x: torch.Tensor, train: bool) -> bool:
    """The path ``fft="auto"`` takes for this call (in benchmark mode: the remembered measurement)."""
    with torch.set_grad_enabled(train):
        return layer._chooses_fft(x)


def path_table(device: torch.device, reps: int, train: bool, kernels: list[int]) -> None:
    print(f"Path choice, {'train step' if train else 'eval'}: ms per call, auto / best (best of forced direct, FFT)\n")
    print(
        "| shape | k | direct ms | FFT ms | faster | auto (default) ms | picks | auto / best | "
        "auto (benchmark) ms | picks | auto / best |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst = {"default": [], "benchmark": []}
    wrong = {"default": [], "benchmark": []}
    for dims, batch, ch, size in PATH_SHAPES:
        conv = {2: HyperConv2d, 3: HyperConv3d}[dims]
        for k in kernels:
            if dims == 3 and k > 15:
                continue
            torch.manual_seed(0)
            x = torch.randn(batch, ch, *([size] * dims), device=device)
            layers = {
                name: conv(ch, ch, k, fft=fft).to(device)
                for name, fft in (("direct", False), ("fft", True), ("default", "auto"), ("benchmark", "auto"))
            }
            steps = {name: layer_step(layer, x, train) for name, layer in layers.items()}
            measured = steps["benchmark"]

            def benchmark_step(measured=measured):
                path_choice.benchmark = True
                try:
                    measured()
                finally:
                    path_choice.benchmark = False

            steps["benchmark"] = benchmark_step
            if not once_within(steps["direct"], 1.0, device):
                del steps["direct"]
            t = time_interleaved(steps, reps, device)
            best = min(t.get("direct", float("inf")), t["fft"])
            ratios = {n: t[n] / best for n in worst}
            for n, seen in worst.items():
                seen.append(ratios[n])
            direct_ms = f"{t['direct'] * 1e3:.1f}" if "direct" in t else "> 1000"
            picks = {n: path_name(picked(layers[n], x, train)) for n in worst}
            faster = path_name(t["fft"] <= t.get("direct", float("inf")))
            for n, seen in wrong.items():
                if picks[n] != faster:
                    seen.append(f"{dims}D b{batch} {ch}ch {size} k{k}: {ratios[n]:.2f}x")
            print(
                f"| {dims}D b{batch} {ch}ch {size}^{dims} | {k} | {direct_ms} | {t['fft'] * 1e3:.1f} | {faster} | "
                f"{t['default'] * 1e3:.1f} | {picks['default']} | {ratios['default']:.2f} | "
                f"{t['benchmark'] * 1e3:.1f} | {picks['benchmark']} | {ratios['benchmark']:.2f} |",
                flush=True,
            )
    for n, r in worst.items():
        print(f"auto ({n}) / best: median {statistics.median(r):.2f}, worst {max(r):.2f}")
    for n, seen in wrong.items():
        print(
            f"auto ({n}) picked the slower path in {len(seen)} of {len(worst[n])} rows"
            + "".join(f"; {w}" for w in seen)
        )


def layer_table(nets: dict, x: torch.Tensor, reps: int, device: torch.device) -> None:
    """Each hyper layer of the networks alone, at the input shape it sees in the network, against the baseline's."""
    kernels = list(nets)
    base = kernels[0]
    layers = {k: [m for m in net.modules() if isinstance(m, HyperConv2d)] for k, net in nets.items()}
    shapes = []
    hooks = [m.register_forward_pre_hook(lambda m, a: shapes.append(tuple(a[0].shape))) for m in layers[base]]
    with torch.no_grad():
        nets[base].eval()(x)
    for h in hooks:
        h.remove()
    # as in the network's backward, every layer but the first also computes the gradient of its input
    inputs = [torch.randn(shape, device=device, requires_grad=i > 0) for i, shape in enumerate(shapes)]
    print(f"\nHyper layers alone, ms per call (forward + backward; eval), against k = {base}\n")
    print(
        "| layer | in -> out | size | " + " | ".join(f"k={k} path (train/eval) | train | eval" for k in kernels) + " |"
    )
    print("|---|---|---|" + "---|---|---|" * len(kernels))
    totals = {(k, p): 0.0 for k in kernels for p in ("train", "eval")}
    for i, inp in enumerate(inputs):
        steps = {(k, p): layer_step(layers[k][i], inp, p == "train") for k in kernels for p in ("train", "eval")}
        t = time_interleaved(steps, reps, device)
        cells = []
        for k in kernels:
            paths = "/".join(path_name(picked(layers[k][i], inp, p == "train")) for p in ("train", "eval"))
            cells.append(f"{paths} | {t[(k, 'train')] * 1e3:.2f} | {t[(k, 'eval')] * 1e3:.2f}")
            for p in ("train", "eval"):
                totals[(k, p)] += t[(k, p)]
        layer = layers[base][i]
        print(f"| {i} | {layer.in_channels} -> {layer.out_channels} | {inp.shape[2]}^2 | " + " | ".join(cells) + " |")
    for p in ("train", "eval"):
        sums = ", ".join(
            f"k={k} {totals[(k, p)] * 1e3:.1f} ms ({totals[(k, p)] / totals[(base, p)]:.2f})" for k in kernels
        )
        print(f"sum of the layers, {p}: {sums}")


def compile_table(nets: dict, x: torch.Tensor, target: torch.Tensor, reps: int, device: torch.device) -> None:
    print("\ntorch.compile (inductor) against eager, same network (compilation in the warm-up)\n")
    print(
        "| k | eager train ms | compiled train ms | compiled / eager | eager eval ms | compiled eval ms | compiled / eager |"
    )
    print("|---|---|---|---|---|---|---|")
    for k, net in nets.items():
        compiled = torch.compile(net)
        train = time_interleaved(
            {"eager": train_step(net, x, target), "compiled": train_step(compiled, x, target)}, reps, device, warmup=2
        )
        evals = time_interleaved(
            {"eager": eval_step(net, x), "compiled": eval_step(compiled, x)}, reps, device, warmup=2
        )
        print(
            f"| {k} | {train['eager'] * 1e3:.1f} | {train['compiled'] * 1e3:.1f} | "
            f"{train['compiled'] / train['eager']:.2f} | {evals['eager'] * 1e3:.1f} | "
            f"{evals['compiled'] * 1e3:.1f} | {evals['compiled'] / evals['eager']:.2f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--kernels", type=int, nargs="+", default=[5, 15, 31], help="the first is the baseline")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--paths", action="store_true", help="the path-choice table of single layers instead")
    parser.add_argument("--train", action="store_true", help="--paths: time forward + backward")
    parser.add_argument("--compile", action="store_true", help="also time the network under torch.compile")
    parser.add_argument("--layers", action="store_true", help="also time each hyper layer alone")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.paths:
        print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, reps {args.reps}\n")
        kernels = args.kernels if args.kernels != [5, 15, 31] else [3, 5, 7, 9, 11, 13, 15, 21, 31]
        path_table(device, args.reps, args.train, kernels)
        return
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
        print(
            f"| {k} | {train[k] * 1e3:.1f} | {train[k] / train[base]:.2f} | {evals[k] * 1e3:.1f} | "
            f"{evals[k] / evals[base]:.2f} |"
        )
    if args.layers:
        layer_table(nets, x, args.reps, device)
    if args.compile:
        compile_table(nets, x, target, args.reps, device)


if __name__ == "__main__":
    main()
