"""GPU readiness of monai-hyperconv in one command (issue 13, item 5); also runs on CPU for a smoke test.

1. Equivalence on the device: HyperConv2d/3d, direct and FFT path, against torch's convolution with the generated
   kernel computed in float64 on the CPU; forward and gradients (input, kernel network); float32, and bf16 / fp16
   autocast. Prints the relative errors and PASS / FAIL against tolerances (float32 1e-4, half precision 5e-2).
2. Kernel-size sweep, direct vs FFT path of single layers (2D batch 4, 32 -> 32, 128^2; 3D batch 1, 16 -> 16,
   64^3), train step and eval, and the smallest kernel size from which the FFT path stays faster: the values for
   ``FFT_MIN_KERNEL_SIZE[device]`` in ``monai_hyperconv/layers/fft_conv.py``.
3. Cost-model calibration (``benchmarks/path_cost_calibration.py``'s sweep, its quick sweep with ``--quick``): the
   ``PATH_COST_MODEL[device]`` entry for ``monai_hyperconv/layers/path_cost.py``, with which ``fft="auto"`` picks
   the path per shape on this device, and how often it picks the slower path on the sweep.
4. The three bundles' networks (``network_def`` of each ``configs/train.yaml``, hyper as configured and the same
   network with ``conv: regular``): train-step time (forward, loss, backward, Adam) and peak memory, with AMP
   (autocast, bf16 where supported, else fp16 with a GradScaler) and without.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/gpu_check.py                       # CUDA (target: under 8 minutes; not yet run on a GPU)
    PYTHONPATH=. python benchmarks/gpu_check.py --device cpu --quick  # smoke run on CPU, about a minute
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import path_cost_calibration
import torch
import torch.nn.functional as F
from monai.bundle import ConfigParser
from timing import layer_step, median_time

from monai_hyperconv import HyperConv2d, HyperConv3d

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUNDLES = ("liver_lesion_seg", "ms_lesion_seg", "csmri_recon")
CONV = {2: F.conv2d, 3: F.conv3d}
HYPER = {2: HyperConv2d, 3: HyperConv3d}


def _amp_dtypes(device: torch.device) -> list[torch.dtype]:
    if device.type == "cuda":
        return [torch.bfloat16, torch.float16] if torch.cuda.is_bf16_supported() else [torch.float16]
    return [torch.bfloat16, torch.float16]


# -- 1. equivalence ------------------------------------------------------------------------------------------------
def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def equivalence(device: torch.device, quick: bool) -> bool:
    print("## 1. Equivalence with torch's convolution on the generated kernel (max error / max |reference|)\n")
    print("| layer | path | precision | forward | grad input | grad kernel net | result |")
    print("|---|---|---|---|---|---|---|")
    cases = (
        [(2, 4, 6, 9, (24, 20)), (3, 3, 4, 5, (10, 9, 8))]
        if quick
        else [(2, 8, 16, 9, (64, 48)), (2, 16, 8, 31, (40, 40)), (3, 4, 8, 7, (24, 20, 16))]
    )
    ok = True
    for dims, cin, cout, k, size in cases:
        torch.manual_seed(0)
        layer = HYPER[dims](cin, cout, k).to(device)
        x = torch.randn(2, cin, *size, device=device)
        weights = torch.randn(2, cout, *size, device=device)
        ref_layer = HYPER[dims](cin, cout, k).double()
        ref_layer.load_state_dict({n: t.double().cpu() for n, t in layer.state_dict().items()})
        xr = x.double().cpu().requires_grad_(True)
        pad = [p for pair in reversed(ref_layer._padding_pairs) for p in pair]
        ref = CONV[dims](F.pad(xr, pad), ref_layer.kernel(), ref_layer.bias)
        ref_grads = torch.autograd.grad((ref * weights.double().cpu()).sum(), [xr, ref_layer.kernel_net.out.weight])
        for fft in (False, True):
            layer.fft = fft
            for precision in ["float32", *[str(d).replace("torch.", "") for d in _amp_dtypes(device)]]:
                xi = x.clone().requires_grad_(True)
                with torch.autocast(device.type, dtype=getattr(torch, precision), enabled=precision != "float32"):
                    y = layer(xi)
                grads = torch.autograd.grad((y.float() * weights).sum(), [xi, layer.kernel_net.out.weight])
                errors = [_relative(y, ref), *(_relative(g, r) for g, r in zip(grads, ref_grads))]
                tolerance = 1e-4 if precision == "float32" else 5e-2
                passed = max(errors) <= tolerance
                ok &= passed
                print(
                    f"| {dims}D {cin}->{cout} k={k} {size} | {'FFT' if fft else 'direct'} | {precision} | "
                    f"{errors[0]:.1e} | {errors[1]:.1e} | {errors[2]:.1e} | {'PASS' if passed else 'FAIL'} |",
                    flush=True,
                )
    print()
    return ok


# -- 2. kernel-size sweep ------------------------------------------------------------------------------------------
def crossover(kernels: list[int], fft_faster: list[bool]) -> int | None:
    """The smallest kernel size from which the FFT path is faster at every measured larger size."""
    for i, k in enumerate(kernels):
        if all(fft_faster[i:]):
            return k
    return None


def kernel_sweep(device: torch.device, quick: bool, reps: int) -> dict:
    print("## 2. Kernel-size sweep: direct vs FFT path (ms, median)\n")
    shapes = {2: (1, 8, 64), 3: (1, 4, 24)} if quick else {2: (4, 32, 128), 3: (1, 16, 64)}
    sizes = (
        {2: [3, 7, 11, 15, 23, 31], 3: [3, 5, 7, 9]}
        if quick
        else {2: [3, 5, 7, 9, 11, 13, 15, 17, 19, 23, 27, 31], 3: [3, 5, 7, 9, 11, 13, 15]}
    )
    found: dict = {"train": {}, "eval": {}}
    for dims, (batch, ch, n) in shapes.items():
        for mode in ("eval", "train"):
            print(f"{dims}D {mode}, batch {batch}, {ch} -> {ch}, {n}^{dims}\n")
            print("| k | direct ms | FFT ms | FFT / direct |")
            print("|---|---|---|---|")
            faster = []
            for k in sizes[dims]:
                torch.manual_seed(0)
                x = torch.randn(batch, ch, *([n] * dims), device=device)
                layer = HYPER[dims](ch, ch, k).to(device)
                times = {}
                for fft in (False, True):
                    layer.fft = fft
                    times[fft] = median_time(layer_step(layer, x, mode == "train"), reps, device)
                faster.append(times[True] < times[False])
                print(
                    f"| {k} | {times[False] * 1e3:.2f} | {times[True] * 1e3:.2f} | {times[True] / times[False]:.2f} |",
                    flush=True,
                )
            found[mode][dims] = crossover(sizes[dims], faster)
            print()
    print(
        f"Suggested FFT_MIN_KERNEL_SIZE[{device.type!r}] (None: the FFT path never stayed faster; keep a value "
        f"above the largest size measured): {found}\n"
    )
    return found


# -- 3. bundles' networks ------------------------------------------------------------------------------------------
def bundle_network(bundle: str, conv: str, overrides: dict) -> tuple[torch.nn.Module, dict]:
    parser = ConfigParser()
    parser.read_config(os.path.join(REPO, "bundles", bundle, "configs", "train.yaml"))
    parser["network_def#conv"] = conv
    for key, value in overrides.items():
        parser[key] = value
    settings = {
        key: parser.get_parsed_content(key)
        for key in ("spatial_dims", "in_channels", "out_channels", "image_size", "batch_size")
    }
    return parser.get_parsed_content("network_def"), settings


def input_size(settings: dict) -> tuple[int, ...]:
    """The network's input size from the bundle's image_size (a 3D volume size for a 2D net: its slice, last two)."""
    size, dims = settings["image_size"], settings["spatial_dims"]
    size = [size] * dims if isinstance(size, int) else list(size)[-dims:]
    return tuple(int(s) // 8 * 8 for s in size)  # the UNets pool three times


def bundle_steps(device: torch.device, quick: bool, reps: int) -> None:
    print("## 3. Bundles' networks: train step (forward, loss, backward, Adam) and peak memory\n")
    print("| bundle | conv | params | input | precision | step ms | peak memory MiB | hyper / regular time |")
    print("|---|---|---|---|---|---|---|---|")
    overrides = {"network_def#channels": 4} if quick else {}
    for bundle in BUNDLES:
        base: dict = {}
        for conv in ("regular", "hyper"):
            net, settings = bundle_network(bundle, conv, overrides)
            net = net.to(device)
            batch = 2 if quick else int(settings["batch_size"])
            size = (32, 32) if quick else input_size(settings)
            x = torch.randn(batch, settings["in_channels"], *size, device=device)
            target = torch.randn(batch, settings["out_channels"], *size, device=device)
            optimizer = torch.optim.Adam(net.parameters(), 1e-4)
            for precision in ["float32", *[str(d).replace("torch.", "") for d in _amp_dtypes(device)[:1]]]:
                amp = precision != "float32"
                scaler = torch.amp.GradScaler(device.type, enabled=amp and precision == "float16")

                def step(net=net, x=x, target=target, optimizer=optimizer, amp=amp, precision=precision, scaler=scaler):
                    optimizer.zero_grad(set_to_none=True)
                    with torch.autocast(device.type, dtype=getattr(torch, precision), enabled=amp):
                        loss = F.mse_loss(net(x).float(), target)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()

                if device.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
                seconds = median_time(step, reps, device)
                peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
                base.setdefault(precision, seconds)
                params = sum(p.numel() for p in net.parameters())
                print(
                    f"| {bundle} | {conv} | {params / 1e6:.2f}M | {batch}x{tuple(x.shape[1:])} | {precision} | "
                    f"{seconds * 1e3:.1f} | {peak:.0f} | {seconds / base[precision]:.2f} |",
                    flush=True,
                )
    if device.type != "cuda":
        print("\n(peak memory is measured on CUDA only)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small shapes and few repetitions (smoke run)")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--skip", nargs="*", default=[], choices=["equivalence", "sweep", "calibration", "bundles"])
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available (use --device cpu for a smoke run).")
    reps = args.reps or (2 if args.quick else 10)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}, reps {reps}{', quick' if args.quick else ''}\n")
    start = time.perf_counter()
    ok = True
    if "equivalence" not in args.skip:
        ok = equivalence(device, args.quick)
    if "sweep" not in args.skip:
        kernel_sweep(device, args.quick, reps)
    if "calibration" not in args.skip:
        print("Path cost model calibration (monai_hyperconv/layers/path_cost.py)\n")
        rows = path_cost_calibration.measure(
            path_cost_calibration.QUICK_SWEEP if args.quick else path_cost_calibration.SWEEP, device, min(reps, 5), 0.5
        )
        path_cost_calibration.report(rows, path_cost_calibration.fit(rows), device.type)
    if "bundles" not in args.skip:
        bundle_steps(device, args.quick, reps)
    print(f"Total {time.perf_counter() - start:.0f} s; equivalence {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
