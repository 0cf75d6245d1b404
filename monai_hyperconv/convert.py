"""Turn a network's convolutions into hyper-convolutions, and hyper-convolutions back into plain ones."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence

from torch import nn

from monai_hyperconv.layers.factories import REGULAR_CONV_TYPES
from monai_hyperconv.layers.grid import grid_scales, resampled_grid
from monai_hyperconv.layers.hyperconv import HyperConv1d, HyperConv2d, HyperConv3d, HyperConvBase, HyperConvNd
from monai_hyperconv.layers.hyperconv_transpose import (
    HyperConvTranspose1d,
    HyperConvTranspose2d,
    HyperConvTranspose3d,
    HyperConvTransposeNd,
)
from monai_hyperconv.layers.kernel_fit import fit_hyper_layer
from monai_hyperconv.layers.materialize import materialize, replace_matching_modules, scriptable_copy

__all__ = ["fit_report", "hyperize", "materialize", "resample_kernels", "scriptable_copy"]

logger = logging.getLogger(__name__)
_INITS = ("random", "fit")

_HYPER_FOR = {nn.Conv1d: HyperConv1d, nn.Conv2d: HyperConv2d, nn.Conv3d: HyperConv3d}
_HYPER_TRANSPOSE_FOR = {
    nn.ConvTranspose1d: HyperConvTranspose1d,
    nn.ConvTranspose2d: HyperConvTranspose2d,
    nn.ConvTranspose3d: HyperConvTranspose3d,
}


def _same_padding(kernel_size: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...] | None:
    """Symmetric padding that keeps the size at stride 1, or None when an even kernel makes it asymmetric."""
    totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
    return None if any(t % 2 for t in totals) else tuple(t // 2 for t in totals)


def _hyper_padding(conv: nn.Module, kernel_size: tuple[int, ...]) -> str | tuple[int, ...]:
    """The new layer's padding: unchanged when the kernel size is kept; otherwise 'same' stays 'same'."""
    padding = conv.padding
    if tuple(conv.kernel_size) == kernel_size:
        return padding
    if padding == "valid" or (not isinstance(padding, str) and not any(padding)):
        return padding
    if padding == "same" or tuple(padding) == _same_padding(conv.kernel_size, conv.dilation):
        return "same"
    raise ValueError(
        f"Cannot change the kernel size of {conv} from {tuple(conv.kernel_size)} to {kernel_size}: its padding "
        f"{padding} is neither 0 nor size-preserving, so the new padding is ambiguous."
    )


def _transposed_padding(conv: nn.Module, kernel_size: tuple[int, ...]) -> tuple[int, ...]:
    """Padding that keeps a transposed conv's output shape and alignment with a kernel grown or shrunk evenly.

    The output size is ``(n - 1) s - 2 p + d (k - 1) + output_padding + 1``, so ``k -> k + 2 m`` with
    ``p -> p + d m`` keeps it, and every old tap stays where it was (the new taps sit ``m`` outside each side).
    """
    padding = []
    for k_old, k_new, p, d in zip(conv.kernel_size, kernel_size, conv.padding, conv.dilation):
        if (k_new - k_old) % 2 or p + d * (k_new - k_old) // 2 < 0:
            raise ValueError(
                f"Cannot change the kernel size of {conv} from {tuple(conv.kernel_size)} to {kernel_size} keeping "
                "its output shape: transposed kernel sizes can only change by an even number of taps per dim, and "
                "shrink by at most 2 * padding / dilation."
            )
        padding.append(p + d * (k_new - k_old) // 2)
    return tuple(padding)


def _requested_size(requested: int | Sequence[int] | None, module: nn.Module) -> tuple[int, ...]:
    if requested is None:
        return tuple(module.kernel_size)
    dims = len(module.kernel_size)
    return (requested,) * dims if isinstance(requested, int) else tuple(requested)


def _hyper_conv(module: nn.Module, kernel_size: tuple[int, ...], hidden_channels, hyper_kwargs) -> HyperConvNd:
    return _HYPER_FOR[type(module)](
        module.in_channels,
        module.out_channels,
        kernel_size,
        stride=module.stride,
        padding=_hyper_padding(module, kernel_size),
        dilation=module.dilation,
        groups=module.groups,
        bias=module.bias is not None,
        hidden_channels=hidden_channels,
        padding_mode=module.padding_mode,
        device=module.weight.device,
        dtype=module.weight.dtype,
        **hyper_kwargs,
    )


def _hyper_conv_transpose(
    module: nn.Module, kernel_size: tuple[int, ...], hidden_channels, hyper_kwargs
) -> HyperConvTransposeNd:
    hyper_kwargs = {k: v for k, v in hyper_kwargs.items() if k != "fft"}  # transposed layers are direct only
    return _HYPER_TRANSPOSE_FOR[type(module)](
        module.in_channels,
        module.out_channels,
        kernel_size,
        stride=module.stride,
        padding=_transposed_padding(module, kernel_size),
        output_padding=module.output_padding,
        groups=module.groups,
        bias=module.bias is not None,
        dilation=module.dilation,
        hidden_channels=hidden_channels,
        device=module.weight.device,
        dtype=module.weight.dtype,
        **hyper_kwargs,
    )


def hyperize(
    model: nn.Module,
    kernel_size: int | Sequence[int] | None = None,
    hidden_channels: Sequence[int] = (16, 16, 4),
    *,
    transposed_kernel_size: int | Sequence[int] | None = None,
    init: str = "random",
    fit_steps: int = 100,
    fit_ridge: float = 0.0,
    **hyper_kwargs,
) -> nn.Module:
    """Replace every ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d`` with a kernel larger than 1 by a
    hyper-convolution (:class:`HyperConvNd`, :class:`HyperConvTransposeNd`), in place.

    Channels, stride, dilation, groups, padding, padding mode, output padding, bias on/off, device and dtype are
    kept. 1×1 convolutions, like the paper's output layers, stay regular. With ``init="random"`` the kernel
    networks are freshly initialised and the model's weights are dropped; ``init="fit"`` warm-starts each one
    from the replaced layer (:func:`~monai_hyperconv.layers.kernel_fit.fit_hyper_layer`): its output layer is
    solved by least squares on the freshly initialised hidden features, exact (up to float rounding) when
    ``N_L + 1 >= taps``, and otherwise refined by ``fit_steps`` Adam steps on the hidden layers; the bias is
    copied. With a new kernel size the old kernel is zero-padded or centre-cropped to it first (cropping
    drops the outer taps). Each fitted layer keeps its :class:`~monai_hyperconv.layers.kernel_fit.LayerFit` as
    ``layer.fit_record`` (:func:`fit_report` collects them) and a one-line summary per layer is logged (INFO).

    Args:
        model: any network; modified in place and returned (``copy.deepcopy`` it first to keep the original).
        kernel_size: new kernel size for every replaced regular convolution, or None to keep each layer's own.
            With a new size, size-preserving padding stays size-preserving and zero padding stays zero.
            Transposed convolutions keep theirs: ``kernel_size`` does not apply to them.
        hidden_channels: kernel-network widths; the last entry is N_L.
        transposed_kernel_size: new kernel size for every replaced transposed convolution, or None to keep each
            layer's own. Their padding grows by ``dilation * (new - old) / 2``, which keeps output shapes and tap
            positions, so the size may only change by an even number per dim (a ValueError says otherwise).
        init: ``"random"`` (fresh kernel networks) or ``"fit"`` (fitted to the replaced weights, see above).
        fit_steps: Adam refinement steps per layer with ``init="fit"`` when the least-squares solve is not exact.
        fit_ridge: with ``init="fit"``, Tikhonov regularisation of the output layer's solve, relative to the
            largest squared singular value of the tap features
            (:func:`~monai_hyperconv.layers.kernel_fit.solve_output_layer`); 0 (default): the exact
            minimum-norm solve, whose output weights can reach the hundreds where N_L + 1 >= taps, so that
            fine-tuning the hidden layers moves the kernels by hundreds of times their step. ``1e-4`` keeps the
            weights bounded at a small fit error (see ``bundles/liver_lesion_seg/docs/evidence.md``).
        hyper_kwargs: further keyword arguments of :class:`HyperConvNd` (``negative_slope``, ``fft``); ``fft``
            is not passed to transposed layers, which always use the direct path.

    Returns:
        the model (or its replacement when ``model`` itself is a convolution).
    """

    if init not in _INITS:
        raise ValueError(f"hyperize: init must be one of {_INITS}, got {init!r}.")

    def convert(module: nn.Module, name: str) -> nn.Module | None:
        transposed = type(module) in _HYPER_TRANSPOSE_FOR
        if not (transposed or type(module) in _HYPER_FOR) or max(module.kernel_size) <= 1:
            return None
        if transposed:
            new_size = _requested_size(transposed_kernel_size, module)
            layer = _hyper_conv_transpose(module, new_size, hidden_channels, hyper_kwargs)
        else:
            layer = _hyper_conv(module, _requested_size(kernel_size, module), hidden_channels, hyper_kwargs)
        if init == "fit":
            _warm_start(layer, module, name, fit_steps, fit_ridge)
        return layer

    return replace_matching_modules(model, convert)


def _warm_start(layer: HyperConvBase, module: nn.Module, name: str, steps: int, ridge: float = 0.0) -> None:
    record = fit_hyper_layer(layer, module.weight, module.bias, steps=steps, ridge=ridge)
    layer.fit_record = record
    logger.info(
        "hyperize fit %s: %s kernel %s -> %s (%s), %d taps, N_L=%d, relative kernel error %.3g%s",
        name or "<model>", record.kind, "x".join(map(str, record.kernel_size_old)),
        "x".join(map(str, record.kernel_size_new)), record.resize, record.taps, record.n_l, record.relative_error,
        f" (cropping alone {record.cropped_error:.3g})" if record.cropped_error > 0 else "",
    )  # fmt: skip


def fit_report(model: nn.Module) -> list[dict]:
    """One row per hyper layer that ``hyperize(..., init="fit")`` fitted: ``layer`` (its name in ``model``) and
    the fields of :class:`~monai_hyperconv.layers.kernel_fit.LayerFit` (kernel sizes, resize, taps, ``n_l``,
    ``relative_error`` = ``||W_fit - W||/||W||``, ...), in module order. The records describe the fit at
    conversion time, not the kernels after later training."""
    return [
        {"layer": name, **dataclasses.asdict(module.fit_record)}
        for name, module in model.named_modules()
        if isinstance(module, HyperConvBase) and getattr(module, "fit_record", None) is not None
    ]


def resample_kernels(model: nn.Module, scale: float | Sequence[float]) -> nn.Module:
    """Adapt every hyper-convolution of ``model`` to an input ``scale`` times finer (per spatial dim), in place.

    A hyper-convolution's kernel is a function of continuous tap offsets, so it can be sampled on a finer (or,
    with ``scale < 1``, coarser) grid. Each hyper layer:

    - samples its kernel network at its taps' offsets divided by ``scale`` (its grid scale, relative to its
      training grid, is multiplied by ``scale``);
    - gets the taps that cover the same physical extent: per dim, the trained kernel spans ``k`` cells of width
      1, i.e. ``[-k/2, k/2]``; the new taps sit at ``j / scale`` for every integer ``j`` whose cell (width
      ``1 / scale``) overlaps that span, so 5 taps become 11 at scale 2, 15 at scale 3 and 3 at scale 0.5. Even
      kernels refuse any scale but 1 (their taps are not centred);
    - weights every tap by the area of its cell inside the trained span, in units of a trained tap's cell
      (``1 / prod(scale)`` inside, less for the partly covered outer taps), so that the response to a smooth
      input keeps its magnitude (a constant kernel keeps its sum exactly);
    - recomputes ``"same"`` padding (and explicit size-preserving ints) for the new size; ``"valid"`` / zero
      padding stays (it trims the same physical margin); other explicit padding raises.

    Scales compose (``resample_kernels(net, 2)`` then ``resample_kernels(net, 0.5)`` restores the training grid
    exactly, ``scale=1`` changes nothing), ``kernel()``, the kernel cache, the FFT path and :func:`materialize`
    follow the new grid, and the state dict records it (loading it into a network on another grid raises: call
    ``resample_kernels`` on that network first). Parameters are not changed.

    What it does not change: pooling, strides, upsampling and dilations act in pixels. That keeps a UNet
    consistent when *every* level's kernels are rescaled (a 2× pool of a 2× finer map gives the next level a map
    2× finer than in training, which its rescaled kernels expect); its receptive field in pixels grows by
    ``scale``. Regular convolutions with kernels larger than 1 keep their pixel kernels and so cover ``1/scale``
    of their trained extent: a ``UserWarning`` names them (1×1 convolutions are scale-free). Other pixel-sized
    operations (e.g. HyperSeg's patch-wise dynamic convolutions, max-pooling's window) are not adapted, and
    nothing makes a network trained at one resolution *exact* at another: the result approximates, for smooth
    inputs, what the network computes on the coarser input.

    Args:
        model: a network holding hyper-convolutions; modified in place and returned.
        scale: input resolution relative to the current one: a number, or one per spatial dim (anisotropic).

    Raises:
        ValueError: no hyper-convolution in ``model``, a non-positive scale, an even kernel with a scale other
            than 1, or explicit padding that is neither size-preserving nor 0 (nothing is changed then).
    """
    layers = [(name or type(m).__name__, m) for name, m in model.named_modules() if isinstance(m, HyperConvBase)]
    if not layers:
        raise ValueError(f"resample_kernels: {type(model).__name__} holds no hyper-convolution to resample.")
    targets = []
    for name, layer in layers:  # check every layer before changing any
        target = tuple(g * s for g, s in zip(layer.grid_scale, grid_scales(scale, layer.spatial_dims)))
        try:
            layer.resampled_padding(resampled_grid(layer.base_kernel_size, target, name)[0])
        except ValueError as e:
            raise ValueError(f"resample_kernels: layer {name!r}: {e}") from e
        targets.append(target)
    regular = [
        name or type(m).__name__
        for name, m in model.named_modules()
        if isinstance(m, REGULAR_CONV_TYPES) and max(m.kernel_size) > 1
    ]
    if regular:
        warnings.warn(
            f"resample_kernels: {len(regular)} regular convolution(s) with kernels larger than 1 keep their pixel "
            f"kernels ({', '.join(regular[:4])}{', ...' if len(regular) > 4 else ''}): on the finer input they cover "
            "1/scale of their trained extent, so the network only approximates its trained behaviour.",
            stacklevel=2,
        )
    for (_, layer), target in zip(layers, targets):
        layer.set_grid_scale(target)
    return model
