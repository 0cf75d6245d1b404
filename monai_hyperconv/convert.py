"""Turn a network's convolutions into hyper-convolutions, and hyper-convolutions back into plain ones."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import torch
from torch import nn

from monai_hyperconv.layers.hyperconv import HyperConv1d, HyperConv2d, HyperConv3d, HyperConvNd
from monai_hyperconv.layers.hyperconv_transpose import (
    HyperConvTranspose1d,
    HyperConvTranspose2d,
    HyperConvTranspose3d,
    HyperConvTransposeNd,
)
from monai_hyperconv.layers.kernel_fit import fit_hyper_layer

__all__ = ["fit_report", "hyperize", "materialize"]

logger = logging.getLogger(__name__)
_INITS = ("random", "fit")

_HYPER_FOR = {nn.Conv1d: HyperConv1d, nn.Conv2d: HyperConv2d, nn.Conv3d: HyperConv3d}
_HYPER_TRANSPOSE_FOR = {
    nn.ConvTranspose1d: HyperConvTranspose1d,
    nn.ConvTranspose2d: HyperConvTranspose2d,
    nn.ConvTranspose3d: HyperConvTranspose3d,
}
_TORCH_FOR = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TORCH_TRANSPOSE_FOR = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_PAD_FOR = {1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d}


def _replace_modules(model: nn.Module, convert, prefix: str = "") -> nn.Module:
    """Apply ``convert`` ((module, qualified name) -> replacement or None) to the model and all descendants, in
    place."""
    replacement = convert(model, prefix)
    if replacement is not None:
        return replacement
    for name, child in list(model.named_children()):
        new_child = _replace_modules(child, convert, f"{prefix}.{name}" if prefix else name)
        if new_child is not child:
            setattr(model, name, new_child)
    return model


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
            _warm_start(layer, module, name, fit_steps)
        return layer

    return _replace_modules(model, convert)


def _warm_start(layer: HyperConvNd, module: nn.Module, name: str, steps: int) -> None:
    record = fit_hyper_layer(layer, module.weight, module.bias, steps=steps)
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
        if isinstance(module, HyperConvNd) and getattr(module, "fit_record", None) is not None
    ]


@torch.no_grad()
def _materialize_transposed(layer: HyperConvTransposeNd) -> nn.Module:
    weight = layer.kernel()
    conv = _TORCH_TRANSPOSE_FOR[layer.spatial_dims](
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        output_padding=layer.output_padding,
        groups=layer.groups,
        bias=layer.bias is not None,
        dilation=layer.dilation,
        device=weight.device,
        dtype=weight.dtype,
    )
    conv.weight.copy_(weight)
    if layer.bias is not None:
        conv.bias.copy_(layer.bias)
    return conv.train(layer.training)


@torch.no_grad()
def _materialize_layer(layer: HyperConvNd) -> nn.Module:
    dims = layer.spatial_dims
    pairs = layer._padding_pairs
    symmetric = all(a == b for a, b in pairs)
    if symmetric:
        padding: str | tuple[int, ...] = tuple(a for a, _ in pairs)
    elif all(s == 1 for s in layer.stride):
        padding = "same"
    else:
        padding = (0,) * dims
    weight = layer.kernel()
    conv = _TORCH_FOR[dims](
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=padding,
        dilation=layer.dilation,
        groups=layer.groups,
        bias=layer.bias is not None,
        padding_mode=layer.padding_mode,
        device=weight.device,
        dtype=weight.dtype,
    )
    conv.weight.copy_(weight)
    if layer.bias is not None:
        conv.bias.copy_(layer.bias)
    conv.train(layer.training)
    if symmetric or padding == "same":
        return conv
    # Asymmetric 'same' padding with a stride: torch convs cannot express it, an explicit pad can.
    if layer.padding_mode != "zeros":
        raise ValueError(f"Cannot materialize {layer}: asymmetric padding with padding_mode={layer.padding_mode!r}.")
    return nn.Sequential(_PAD_FOR[dims]([p for pair in reversed(pairs) for p in pair], 0.0), conv)


def _materialized(module: nn.Module, name: str) -> nn.Module | None:
    if isinstance(module, HyperConvTransposeNd):
        return _materialize_transposed(module)
    return _materialize_layer(module) if isinstance(module, HyperConvNd) else None


def materialize(model: nn.Module) -> nn.Module:
    """Replace every hyper-convolution by a plain torch convolution holding its generated kernel, in place
    (transposed ones by ``nn.ConvTranspose{N}d``).

    The result computes the same outputs (up to float rounding when the hyper layer used the FFT path) with no
    kernel network, for deployment and export (``torch.jit.trace``, TorchScript, ONNX). Returns the model, or
    its replacement when ``model`` itself is a hyper-convolution.
    """
    return _replace_modules(model, _materialized)
