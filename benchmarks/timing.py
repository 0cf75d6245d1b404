"""Timing helpers shared by the benchmark scripts: medians of interleaved repetitions, synchronised on CUDA."""

from __future__ import annotations

import random
import statistics
import time

import torch

__all__ = ["layer_step", "median_time", "once_within", "sync", "time_interleaved"]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); nothing to wait for on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(variants: dict, reps: int, device: torch.device, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each variant; each repetition runs all variants in a shuffled order."""
    for _ in range(warmup):  # allocator, FFT plans, lazy init, compilation
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


def median_time(fn, reps: int, device: torch.device) -> float:
    """Median seconds per call of one function, after one warm-up call."""
    return time_interleaved({"fn": fn}, reps, device)["fn"]


def once_within(step, seconds: float, device: torch.device) -> bool:
    """Whether one call of ``step`` takes at most ``seconds`` (torch's direct convolution falls off a cliff for
    large kernels: 28 s for one 31x31 call at 256^2, 8 channels, on the project's CPU)."""
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start <= seconds


def layer_step(layer: torch.nn.Module, x: torch.Tensor, train: bool):
    """One call of a layer: forward and backward of a scalar loss (``train``), else a forward under ``no_grad``."""

    def step():
        if train:
            layer.zero_grad(set_to_none=True)
            layer(x).square().mean().backward()
        else:
            with torch.no_grad():
                layer(x)

    return step


def network_train_step(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, loss_fn, lr: float):
    """One optimizer step of a network: forward, ``loss_fn(net(x), target)``, backward, Adam step (its own Adam)."""
    optimizer = torch.optim.Adam(net.parameters(), lr)

    def step():
        net.train()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(x), target).backward()
        optimizer.step()

    return step
