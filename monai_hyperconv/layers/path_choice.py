"""How ``fft="auto"`` picks between the direct and the FFT path of a hyper-convolution (:func:`auto_chooses_fft`).

In this order:

1. stride above 1: the direct path (the FFT path would compute every output and drop most of them);
2. a measured choice, with ``benchmark = True`` (opt-in, like ``torch.backends.cudnn.benchmark``): the first call of
   a layer for a new configuration times both paths on that input (forward, plus backward when the pass records
   gradients; best of ``BENCHMARK_REPEATS`` after one warm-up each) and remembers the faster one for every later
   call with the same key: device, dtype, input shape, the layer's convolution settings and whether gradients are
   recorded. That first call is therefore slower: warm a model up before timing it. The measurement computes
   gradients with ``torch.autograd.grad``, so it leaves ``.grad`` untouched. Inside ``torch.compile`` nothing is
   measured: a remembered choice is used, else the next rule;
3. the cost model of :mod:`~monai_hyperconv.layers.path_cost` (both paths' time predicted from the input size,
   channels, batch and kernel), where the device type has one for the pass and spatial dims;
4. else the kernel-size thresholds of :data:`~monai_hyperconv.layers.fft_conv.FFT_MIN_KERNEL_SIZE`, which ignore
   the input size, channels and batch.
"""

from __future__ import annotations

import time

import torch

from monai_hyperconv.layers.fft_conv import basis_fft_plan, use_fft
from monai_hyperconv.layers.path_cost import fft_is_cheaper, path_features

__all__ = [
    "BENCHMARK_REPEATS",
    "auto_chooses_fft",
    "benchmark",
    "call_features",
    "clear_choices",
    "measured_choice",
    "modelled_choice",
    "remembered_choices",
]

benchmark: bool = False
BENCHMARK_REPEATS = 3
_choices: dict[tuple, bool] = {}


def remembered_choices() -> dict[tuple, bool]:
    """A copy of the measured choices: key -> True for the FFT path."""
    return dict(_choices)


def clear_choices() -> None:
    """Forget every measured choice (e.g. after changing thread counts or devices)."""
    _choices.clear()


def _key(layer, x: torch.Tensor, training: bool) -> tuple:
    return (
        type(layer).__name__,
        x.device.type,
        x.device.index,
        x.dtype,
        tuple(x.shape),
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        layer.dilation,
        layer.groups,
        layer.padding_pairs,
        layer.padding_mode,
        layer.hidden_channels,
        training,
        torch.is_autocast_enabled(x.device.type),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_path(layer, x: torch.Tensor, fft: bool, training: bool) -> float:
    saved = layer.fft
    layer.fft = fft
    params = [p for p in layer.parameters() if p.requires_grad]
    try:
        best = float("inf")
        for i in range(BENCHMARK_REPEATS + 1):  # the first run warms up (allocations, FFT plans)
            _sync(x.device)
            start = time.perf_counter()
            y = layer(x)
            if training:
                torch.autograd.grad(y.sum(), params, allow_unused=True)
            _sync(x.device)
            if i:
                best = min(best, time.perf_counter() - start)
        return best
    finally:
        layer.fft = saved


def measured_choice(layer, x: torch.Tensor, training: bool) -> bool | None:
    """The remembered (or, in benchmark mode, newly measured) choice for this call; None when there is none."""
    key = _key(layer, x, training)
    if key in _choices or not benchmark or torch.compiler.is_compiling():
        return _choices.get(key)
    with torch.set_grad_enabled(training):
        x = x.detach()
        direct, fft = _time_path(layer, x, False, training), _time_path(layer, x, True, training)
    _choices[key] = fft < direct
    return _choices[key]


def call_features(layer, x: torch.Tensor):
    """The work counts of this call on each path (:func:`~monai_hyperconv.layers.path_cost.path_features`); None
    when the kernel is larger than the padded input (no FFT plan exists)."""
    # plain ints: under torch.jit.trace sizes are tensors (the traced graph keeps the path of the example input)
    pairs, size, batch = layer.padding_pairs, [int(n) for n in x.shape[2:]], int(x.shape[0])
    if layer.padding_mode != "zeros":  # padded beforehand; the FFT path then sees a larger, unpadded input
        size, pairs = [n + a + b for n, (a, b) in zip(size, pairs)], ((0, 0),) * len(pairs)
    try:
        plan = basis_fft_plan(size, pairs, layer.kernel_extent)
    except ValueError:  # kernel larger than the padded input: let the direct path raise torch's error
        return None
    maps = layer.hidden_channels[-1] + 1
    return path_features(batch, layer.in_channels, layer.out_channels, layer.groups, layer.kernel_size, maps, plan)


def modelled_choice(layer, x: torch.Tensor, training: bool) -> bool | None:
    """The cost model's choice for this call (stride 1); None where the device has no model or no plan exists."""
    features = call_features(layer, x)
    return None if features is None else fft_is_cheaper(x.device.type, layer.spatial_dims, training, features)


def auto_chooses_fft(layer, x: torch.Tensor, training: bool) -> bool:
    """Whether ``fft="auto"`` runs this call on the FFT path (the rules of this module's docstring, in order)."""
    if any(s != 1 for s in layer.stride):
        return False
    for choice in (measured_choice, modelled_choice):
        chosen = choice(layer, x, training)
        if chosen is not None:
            return chosen
    return use_fft(x.device.type, layer.spatial_dims, layer.kernel_extent, layer.stride, training=training)
