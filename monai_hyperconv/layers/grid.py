"""Where a hyper-convolution samples its kernel network: the kernel grid, its scale, and its record in state dicts.

A layer built with kernel size ``k`` samples its kernel network at the integer offsets of ``k`` taps: its
*training grid*, grid scale 1. :func:`monai_hyperconv.resample_kernels` moves it to a grid ``scale`` times finer
(taps at ``offset / scale``, as many as cover the same physical extent, weighted by ``1 / prod(scale)``).
The state dict records the grid (``<layer>._extra_state``), so loading weights into a layer on another grid is
an error unless asked for with :func:`load_on_new_grid`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch

from monai_hyperconv.layers.kernel_net import kernel_grid

__all__ = [
    "grid_mismatch",
    "grid_scales",
    "grid_state",
    "load_on_new_grid",
    "resampled_grid",
    "tap_weighted",
]

_new_grid_loads = 0  # depth of active load_on_new_grid() blocks


@contextlib.contextmanager
def load_on_new_grid() -> Iterator[None]:
    """Within this block, ``load_state_dict`` loads hyper-convolution weights written on another kernel grid.

    Each layer keeps its own grid (kernel size and grid scale) and samples the loaded kernel network on it: e.g.
    a network trained with 5×5 kernels, built with ``kernel_size=7``, evaluates the trained kernel networks on
    7×7 offsets (their extrapolation beyond the trained support). Outside the block a grid mismatch raises.

    Example::

        net = PaperUNet(conv="hyper", kernel_size=7)
        with load_on_new_grid():
            net.load_state_dict(torch.load("model_5x5.pt", weights_only=True))
    """
    global _new_grid_loads
    _new_grid_loads += 1
    try:
        yield
    finally:
        _new_grid_loads -= 1


def grid_scales(scale: float | Sequence[float], spatial_dims: int, what: str = "scale") -> tuple[float, ...]:
    """``scale`` as one positive finite float per spatial dim."""
    values = (scale,) * spatial_dims if isinstance(scale, (int, float)) else tuple(scale)
    if len(values) != spatial_dims:
        raise ValueError(f"{what} must be a number or {spatial_dims} numbers (one per spatial dim), got {scale!r}.")
    values = tuple(float(v) for v in values)
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{what} must be positive and finite, got {scale!r}.")
    return values


def resampled_grid(
    base_kernel_size: Sequence[int], scale: Sequence[float], layer: str
) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor | None]:
    """Kernel size, tap offsets ``(taps, dims)`` and tap weights ``(taps,)`` (None at scale 1) of a grid ``scale``
    times finer than the training grid of ``base_kernel_size``.

    Per dim, ``k`` training taps of width 1 span ``[-k/2, k/2]``, i.e. ``h = k * scale / 2`` new tap widths each
    side. The new taps sit at the integer offsets ``j`` with ``|j| <= ceil(h - 1/2)`` (offsets ``j / scale`` in
    training units), each weighted by the part of its cell ``[j - 1/2, j + 1/2]`` inside ``[-h, h]`` and by
    ``1 / scale``: interior taps ``1 / scale``, the outermost ones less where their cell sticks out (half at even
    integer scales, where 5 taps become 11, the outer two half-weighted). So a constant kernel keeps its sum exactly
    and the response keeps its magnitude. Scale 1 gives the training grid itself.

    Even sizes have no centre tap, so no finer grid covers the same support symmetrically: they only take scale 1.
    """
    if all(s == 1.0 for s in scale):
        return tuple(int(k) for k in base_kernel_size), kernel_grid(base_kernel_size), None
    sizes, weights = [], []
    for dim, (k, s) in enumerate(zip(base_kernel_size, scale)):
        if s != 1.0 and k % 2 == 0:
            raise ValueError(
                f"{layer}: cannot resample an even kernel size ({k} along spatial dim {dim}); its taps are not "
                "centred on the output pixel. Only odd kernels take a grid scale other than 1."
            )
        half = k * s / 2
        radius = max(math.ceil(half - 0.5 - 1e-9), 0)  # the tolerance keeps exact cell edges from adding a tap
        j = torch.arange(-radius, radius + 1, dtype=torch.float64)
        cover = (torch.minimum(j + 0.5, torch.tensor(half)) - torch.maximum(j - 0.5, torch.tensor(-half))).clamp(0, 1)
        sizes.append(2 * radius + 1)
        weights.append(cover / s)
    mesh = torch.meshgrid(*weights, indexing="ij")  # the tap order of kernel_grid
    tap_weights = torch.stack(mesh).prod(0).reshape(-1).float()
    offsets = (kernel_grid(sizes).double() / torch.tensor(scale, dtype=torch.float64)).float()
    return tuple(sizes), offsets, tap_weights


def tap_weighted(values: torch.Tensor, tap_weights: torch.Tensor | None, dim: int) -> torch.Tensor:
    """``values`` (one entry per tap along ``dim``) times the tap weights of :func:`resampled_grid`; unchanged
    when there are none (the training grid)."""
    if tap_weights is None:
        return values
    shape = [1] * values.dim()
    shape[dim] = -1
    return values * tap_weights.to(values.dtype).reshape(shape)


def grid_state(kernel_size: Sequence[int], scale: Sequence[float], base_kernel_size: Sequence[int]) -> torch.Tensor:
    """The grid as stored in state dicts: a float64 ``(3, spatial_dims)`` tensor of the kernel size, the grid scale
    and the training kernel size. A tensor (not a dict) so that ``weights_only`` loading and MONAI's
    ``copy_model_state`` (which compares ``.shape`` of every entry) take it."""
    return torch.tensor([list(kernel_size), list(scale), list(base_kernel_size)], dtype=torch.float64)


def _describe(kernel_size: Sequence[int], scale: Sequence[float], base: Sequence[int]) -> str:
    size = "x".join(str(int(k)) for k in kernel_size)
    if all(s == 1.0 for s in scale):
        return f"{size} (training grid)"
    return f"{size} at grid scale {tuple(float(s) for s in scale)} (trained as {'x'.join(str(int(k)) for k in base)})"


def grid_mismatch(
    state: object, kernel_size: Sequence[int], scale: Sequence[float], base_kernel_size: Sequence[int], layer: str
) -> str | None:
    """Why a stored grid ``state`` (from :func:`grid_state`) cannot load into a layer on the given grid, or None.

    None as well inside :func:`load_on_new_grid`, and for checkpoints written before grids were recorded
    (``state`` None), which load as they always did.
    """
    if state is None or _new_grid_loads:
        return None
    expected = grid_state(kernel_size, scale, base_kernel_size)
    if not isinstance(state, torch.Tensor) or state.shape != expected.shape:
        return f"{layer}: the stored kernel grid {state!r} is not a {tuple(expected.shape)} tensor of grid_state()."
    stored = state.detach().to("cpu", torch.float64)
    if torch.allclose(stored, expected, rtol=1e-9, atol=0.0):
        return None
    theirs = _describe(stored[0].tolist(), stored[1].tolist(), stored[2].tolist())
    ours = _describe(kernel_size, scale, base_kernel_size)
    if torch.equal(stored[2], expected[2]):
        ratio = [a / b for a, b in zip(stored[1].tolist(), scale)]
        ratio_text = ratio[0] if len(set(ratio)) == 1 else tuple(ratio)
        fix = f"call monai_hyperconv.resample_kernels(model, {ratio_text}) before loading to match it"
    else:
        fix = f"build the network with kernel_size={tuple(int(k) for k in stored[2].tolist())} to match it"
    return (
        f"{layer}: the checkpoint's kernels are {theirs}, this layer's are {ours}. To load, "
        f"{fix}, or load inside `with monai_hyperconv.load_on_new_grid():` to sample the loaded kernel network "
        "on this layer's grid."
    )
