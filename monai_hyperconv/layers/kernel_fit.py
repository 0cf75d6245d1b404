"""Fitting a coordinate kernel network to given kernels (warm starts, and the paper's recapitulation study).

A kernel network generates ``W_out @ features(grid) + b_out``: linear in its output layer. So for fixed hidden
layers the best output layer is a linear least-squares solution, exact whenever the ``taps x (N_L + 1)`` matrix
of the taps' features and a ones column has rank ``taps`` (generically when ``N_L + 1 >= taps``). The fit here
solves it first and then, optionally, refines the hidden layers with Adam, solving the output layer again after
every step (variable projection: the gradient of the projected loss is the loss gradient at the solved output
layer, so only hidden parameters take Adam steps and the output layer is always optimal for them). The fit runs
in float64 on the CPU, so a fixed seed gives bitwise-identical results.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from monai_hyperconv.layers.hyperconv import HyperConvBase
from monai_hyperconv.layers.hyperconv_transpose import HyperConvTransposeNd
from monai_hyperconv.layers.kernel_net import CoordinateKernelNet, kernel_grid

__all__ = [
    "KernelFit",
    "LayerFit",
    "fit_hyper_layer",
    "fit_kernel_net",
    "fit_kernel_net_",
    "resize_kernel",
    "solve_output_layer",
]

_EXACT = 1e-20  # mean squared error, relative to the target's mean square, below which a solve counts as exact


@dataclass
class KernelFit:
    """The result of :func:`fit_kernel_net`.

    Attributes:
        kernel_net: the fitted network.
        fitted: the kernels it generates, shaped like the target.
        losses: the L2 (mean squared error) loss at every Adam step, before the update of that step.
        final_loss: the loss of ``fitted``.
        initial_loss: the loss of the freshly initialised network, before any fitting.
        solved_loss: the loss right after the first least-squares solve of the output layer (NaN without it).
    """

    kernel_net: CoordinateKernelNet
    fitted: torch.Tensor
    losses: list[float]
    final_loss: float
    initial_loss: float = math.nan
    solved_loss: float = math.nan


def resize_kernel(weight: torch.Tensor, kernel_size: Sequence[int]) -> torch.Tensor:
    """Zero-pad or centre-crop the spatial dims of ``weight`` (``(a, b, *k)``) to ``kernel_size``.

    Every tap keeps its offset from the centre tap, index ``(k - 1) // 2`` as in :func:`kernel_grid`, so a
    layer whose padding keeps that tap aligned (``"same"``, or a transposed conv's padding grown by ``(new - old)
    / 2``) computes the same with the padded kernel. Cropping drops the outer taps.
    """
    old = weight.shape[2:]
    if len(kernel_size) != len(old):
        raise ValueError(f"kernel_size {tuple(kernel_size)} must have one entry per spatial dim of {tuple(old)}.")
    pads = []
    for k_old, k_new in zip(reversed(old), reversed(tuple(kernel_size))):
        before = (k_new - 1) // 2 - (k_old - 1) // 2
        pads += [before, k_new - k_old - before]  # negative entries crop
    return F.pad(weight, pads)


def _mse(net: CoordinateKernelNet, coords: torch.Tensor, flat_target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(net(coords), flat_target)


@torch.no_grad()
def solve_output_layer(
    net: CoordinateKernelNet, coords: torch.Tensor, flat_target: torch.Tensor, ridge: float = 0.0
) -> None:
    """Set ``net``'s output layer to the minimum-norm least-squares fit of ``flat_target`` (``(out, taps)``)
    on the fixed features of ``coords``, in place.

    ``ridge`` > 0 solves the Tikhonov-regularised problem ``min ||D w - t||^2 + lambda ||w||^2`` instead, with
    ``lambda = ridge * s_max^2`` (``s_max``: the design's largest singular value), so the setting does not depend
    on the features' scale. The feature basis of a fresh kernel network is ill-conditioned (condition number ~1e5 at
    N_L = 24, 5x5), and the exact solve then holds output weights in the hundreds: a later training step of the
    hidden layers is multiplied by them. The ridge solve trades a small fit error for bounded weights.
    """
    feats = net.features(coords)
    design = torch.cat([feats, feats.new_ones(feats.shape[0], 1)], dim=1)  # (taps, N_L + 1); ones: output bias
    if ridge > 0:
        u, sv, vh = torch.linalg.svd(design, full_matrices=False)
        damped = sv / (sv.pow(2) + ridge * sv.max().pow(2))
        solution = vh.t() @ (damped.unsqueeze(1) * (u.t() @ flat_target.t()))  # (N_L + 1, out)
    else:
        # gelsd (SVD) handles rank-deficient and wide systems (N_L + 1 > taps) and returns the minimum-norm solution
        solution = torch.linalg.lstsq(design, flat_target.t(), driver="gelsd").solution  # (N_L + 1, out)
    net.out.weight.copy_(solution[:-1].t())
    net.out.bias.copy_(solution[-1])


@torch.enable_grad()
def _refine(
    net: CoordinateKernelNet,
    coords,
    flat_target,
    steps: int,
    learning_rate: float,
    least_squares: bool,
    ridge: float = 0.0,
):
    """Adam steps (cosine-decayed to 1% of ``learning_rate``), keeping the best parameters seen."""
    params = [p for layer in net.hidden for p in layer.parameters()] if least_squares else list(net.parameters())
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1), eta_min=0.01 * learning_rate)
    best_loss, best_state, losses = math.inf, None, []
    for step in range(steps + 1):
        if least_squares:
            solve_output_layer(net, coords, flat_target, ridge)
        loss = _mse(net, coords, flat_target)
        if loss.item() < best_loss:
            best_loss, best_state = loss.item(), copy.deepcopy(net.state_dict())
        if step == steps:
            break
        losses.append(loss.item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    net.load_state_dict(best_state)
    return losses


def fit_kernel_net_(
    net: CoordinateKernelNet,
    coords: torch.Tensor,
    target: torch.Tensor,
    steps: int = 0,
    learning_rate: float = 1e-2,
    least_squares: bool = True,
    ridge: float = 0.0,
) -> KernelFit:
    """Fit an existing kernel network, in place, to generate ``target`` at ``coords``.

    Args:
        net: the network to fit; its initialisation is the starting point (its hidden features, with
            ``least_squares``). It keeps its device and dtype; the fit itself runs in float64 on the CPU.
        coords: the grid coordinates it is evaluated at, ``(taps, spatial_dims)``.
        target: the kernels, any shape whose trailing dims hold ``taps`` values per kernel network output (e.g.
            the layer's weight), so that ``target.reshape(net.out_features, taps)`` is the network's layout.
        steps: Adam refinement steps after the least-squares solve (0: the solve only); skipped when the solve
            is exact (mean squared error below 1e-20 of the target's mean square).
        learning_rate: Adam learning rate, decayed by a cosine schedule to 1% of it.
        least_squares: solve the output layer by least squares (and again after every Adam step, which then
            moves the hidden layers only); False is plain Adam on every parameter from the initialisation.
        ridge: Tikhonov regularisation of the least-squares solves, relative to the largest squared singular
            value of the design (see :func:`solve_output_layer`); 0: the exact minimum-norm solve.

    Returns:
        the :class:`KernelFit`; ``kernel_net`` is ``net``, ``fitted`` shaped like ``target`` in ``net``'s dtype.
    """
    taps = coords.shape[0]
    if target.numel() != net.out_features * taps:
        raise ValueError(
            f"target of shape {tuple(target.shape)} does not hold {net.out_features} kernels of {taps} taps."
        )
    work = copy.deepcopy(net).to("cpu", torch.float64)
    coords64 = coords.detach().to("cpu", torch.float64)
    flat = target.detach().to("cpu", torch.float64).reshape(net.out_features, taps)
    with torch.no_grad():
        initial = _mse(work, coords64, flat).item()
    solved = math.nan
    if least_squares:
        solve_output_layer(work, coords64, flat, ridge)
        with torch.no_grad():
            solved = _mse(work, coords64, flat).item()
    # an exact solve (N_L + 1 >= taps at full rank) leaves nothing for Adam to refine
    exact = solved <= _EXACT * flat.pow(2).mean().item()
    refine = steps > 0 and not exact
    losses = _refine(work, coords64, flat, steps, learning_rate, least_squares, ridge) if refine else []
    with torch.no_grad():
        for p, q in zip(net.parameters(), work.parameters()):
            p.copy_(q)
        fitted = net(coords.to(net.out.weight))
        final = F.mse_loss(fitted.to(flat), flat).item()
    return KernelFit(net, fitted.reshape(target.shape), losses, final, initial, solved)


def fit_kernel_net(
    weight: torch.Tensor,
    hidden_channels: Sequence[int] = (16, 16, 8),
    steps: int = 1000,
    learning_rate: float = 1e-2,
    seed: int = 0,
    least_squares: bool = True,
) -> KernelFit:
    """Fit a fresh coordinate kernel network (float32, CPU) to generate ``weight`` by mean squared error.

    Args:
        weight: the target convolution weight, ``(out, in, *kernel_size)``.
        hidden_channels: hidden widths of the kernel network; the last is N_L.
        steps: Adam refinement steps (full batch: the whole weight every step).
        learning_rate: Adam learning rate; decayed by a cosine schedule to 1% of it.
        seed: seed of the network's initialisation (the fit is deterministic given it).
        least_squares: see :func:`fit_kernel_net_`.
    """
    if weight.dim() < 3:
        raise ValueError(f"weight must be (out, in, *kernel_size), got shape {tuple(weight.shape)}.")
    target = weight.detach().float().cpu()
    kernel_size = tuple(target.shape[2:])
    grid = kernel_grid(kernel_size)
    flat = target.reshape(-1, math.prod(kernel_size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CoordinateKernelNet(len(kernel_size), flat.shape[0], hidden_channels)
        net.reset_parameters(grid, target_std=float(flat.std()) if flat.numel() > 1 else 1.0)
    return fit_kernel_net_(net, grid, target, steps, learning_rate, least_squares)


@dataclass
class LayerFit:
    """How a hyper layer's kernel network was fitted to a replaced layer's weight (see :func:`fit_hyper_layer`).

    Attributes:
        kind: ``"conv"`` or ``"transposed"``.
        kernel_size_old, kernel_size_new: the replaced layer's and the hyper layer's kernel sizes.
        resize: ``"none"``, ``"pad"`` (old kernel zero-padded to the new size), ``"crop"`` (centre-cropped) or
            ``"pad+crop"`` (some dims each).
        taps: taps of the new kernel; n_l: the kernel network's N_L.
        solved_error: ``||W_fit - W||/||W||`` after the least-squares solve, before any Adam step, where ``W`` is
            the resized old kernel.
        relative_error: the same for the kernel the layer generates after the fit (in its own dtype).
        cropped_error: ``||W - W_old||/||W_old||`` of the resizing alone (nonzero only when cropping).
        steps: Adam steps taken (0 when the solve was exact).
    """

    kind: str
    kernel_size_old: tuple[int, ...]
    kernel_size_new: tuple[int, ...]
    resize: str
    taps: int
    n_l: int
    solved_error: float
    relative_error: float
    cropped_error: float
    steps: int


def _resize_kind(old: Sequence[int], new: Sequence[int]) -> str:
    grow, shrink = any(b > a for a, b in zip(old, new)), any(b < a for a, b in zip(old, new))
    return {(False, False): "none", (True, False): "pad", (False, True): "crop"}.get((grow, shrink), "pad+crop")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    norm = b.double().norm().item()
    return (a.double() - b.double()).norm().item() / norm if norm > 0 else float((a != 0).any())


@torch.no_grad()
def fit_hyper_layer(
    layer: HyperConvBase,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    steps: int = 100,
    learning_rate: float = 1e-2,
    ridge: float = 0.0,
) -> LayerFit:
    """Fit a hyper layer's kernel network, in place, to generate ``weight`` and copy ``bias``.

    ``weight`` has the layer's weight layout (that of :meth:`~monai_hyperconv.layers.HyperConvNd.kernel_shape`)
    with any kernel size: it is zero-padded or centre-cropped to the layer's (:func:`resize_kernel`) first.

    Args:
        layer: a :class:`~monai_hyperconv.layers.HyperConvNd` (or transposed) layer; its initialisation gives
            the hidden features the least-squares solve starts from.
        weight: the replaced layer's weight.
        bias: the replaced layer's bias, copied into ``layer.bias`` (both or neither must exist).
        steps, learning_rate: Adam refinement, see :func:`fit_kernel_net_`.
        ridge: regularisation of the output layer's solve, see :func:`solve_output_layer`.
    """
    old_size, new_size = tuple(weight.shape[2:]), tuple(layer.kernel_size)
    target = resize_kernel(weight.detach(), new_size)
    if tuple(target.shape) != tuple(layer.kernel_shape()):
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not fit {layer} (kernel {layer.kernel_shape()}).")
    if (bias is None) != (layer.bias is None):
        raise ValueError(f"bias must be given exactly when {layer} has one.")
    fit = fit_kernel_net_(layer.kernel_net, layer.grid, target, steps, learning_rate, ridge=ridge)
    if bias is not None:
        layer.bias.copy_(bias)
    layer.clear_kernel_cache()
    solved = math.sqrt(fit.solved_loss / max(target.double().pow(2).mean().item(), torch.finfo(torch.float64).tiny))
    return LayerFit(
        kind="transposed" if isinstance(layer, HyperConvTransposeNd) else "conv",
        kernel_size_old=old_size,
        kernel_size_new=new_size,
        resize=_resize_kind(old_size, new_size),
        taps=math.prod(new_size),
        n_l=layer.kernel_net.hidden_channels[-1],
        solved_error=solved,
        relative_error=_relative(layer.kernel(), target),
        cropped_error=_relative(resize_kernel(target, old_size), weight.detach()),
        steps=len(fit.losses),
    )
