"""Turn a network's convolutions into hyper-convolutions, and hyper-convolutions back into plain ones."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from monai_hyperconv.layers.grid import grid_scales, resampled_grid
from monai_hyperconv.layers.hyperconv import HyperConv1d, HyperConv2d, HyperConv3d, HyperConvNd

__all__ = ["hyperize", "materialize", "resample_kernels", "scriptable_copy"]

_HYPER_FOR = {nn.Conv1d: HyperConv1d, nn.Conv2d: HyperConv2d, nn.Conv3d: HyperConv3d}
_TORCH_FOR = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_PAD_FOR = {1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d}


def _replace_modules(model: nn.Module, convert) -> nn.Module:
    """Apply ``convert`` (module -> replacement or None) to the model and all descendants, in place."""
    replacement = convert(model)
    if replacement is not None:
        return replacement
    for name, child in list(model.named_children()):
        new_child = _replace_modules(child, convert)
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


def hyperize(
    model: nn.Module,
    kernel_size: int | Sequence[int] | None = None,
    hidden_channels: Sequence[int] = (16, 16, 4),
    **hyper_kwargs,
) -> nn.Module:
    """Replace every ``nn.Conv1d/2d/3d`` with a kernel larger than 1 by a hyper-convolution, in place.

    Channels, stride, dilation, groups, padding, padding mode, bias on/off, device and dtype are kept. The
    kernel networks are freshly initialised (a hyper-convolution cannot hold arbitrary weights); 1×1
    convolutions, like the paper's output layers, stay regular. Transposed convolutions are left as they are.

    Args:
        model: any network; modified in place and returned (``copy.deepcopy`` it first to keep the original).
        kernel_size: new kernel size for every replaced layer, or None to keep each layer's own. With a new
            size, size-preserving padding stays size-preserving and zero padding stays zero.
        hidden_channels: kernel-network widths; the last entry is N_L.
        hyper_kwargs: further keyword arguments of :class:`HyperConvNd` (``negative_slope``, ``fft``).

    Returns:
        the model (or its replacement when ``model`` itself is a convolution).
    """

    def convert(module: nn.Module) -> nn.Module | None:
        hyper_type = _HYPER_FOR.get(type(module))
        if hyper_type is None or max(module.kernel_size) <= 1:
            return None
        dims = hyper_type.spatial_dims
        new_size = tuple(module.kernel_size) if kernel_size is None else (
            (kernel_size,) * dims if isinstance(kernel_size, int) else tuple(kernel_size)
        )
        return hyper_type(
            module.in_channels,
            module.out_channels,
            new_size,
            stride=module.stride,
            padding=_hyper_padding(module, new_size),
            dilation=module.dilation,
            groups=module.groups,
            bias=module.bias is not None,
            hidden_channels=hidden_channels,
            padding_mode=module.padding_mode,
            device=module.weight.device,
            dtype=module.weight.dtype,
            **hyper_kwargs,
        )

    return _replace_modules(model, convert)


def resample_kernels(model: nn.Module, scale: float | Sequence[float]) -> nn.Module:
    """Adapt every hyper-convolution of ``model`` to an input ``scale`` times finer (per spatial dim), in place.

    A hyper-convolution's kernel is a function of continuous tap offsets, so it can be sampled on a finer (or,
    with ``scale < 1``, coarser) grid. Each hyper layer:

    - samples its kernel network at its taps' offsets divided by ``scale`` (its grid scale, relative to its
      training grid, is multiplied by ``scale``);
    - gets the kernel size that covers the same physical extent: per dim the odd size nearest to
      ``k_train * grid_scale``, ties to the smaller one (radius ``r`` becomes ``2r`` at scale 2, ``3r + 1`` at
      scale 3, where ``k`` taps of width 1 become ``3k`` of width 1/3). Even kernels refuse any scale but 1;
    - weights every tap by ``1 / prod(grid_scale)``, the fraction of a training tap's area it covers, so that the
      response to a smooth input keeps its magnitude;
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
    layers = [(name or type(m).__name__, m) for name, m in model.named_modules() if isinstance(m, HyperConvNd)]
    if not layers:
        raise ValueError(f"resample_kernels: {type(model).__name__} holds no hyper-convolution to resample.")
    targets = []
    for name, layer in layers:  # check every layer before changing any
        target = tuple(g * s for g, s in zip(layer.grid_scale, grid_scales(scale, layer.spatial_dims)))
        try:
            layer._resampled_padding(resampled_grid(layer.base_kernel_size, target, name)[0])
        except ValueError as e:
            raise ValueError(f"resample_kernels: layer {name!r}: {e}") from e
        targets.append(target)
    regular = [
        name or type(m).__name__
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.conv._ConvNd) and max(m.kernel_size) > 1
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


def materialize(model: nn.Module) -> nn.Module:
    """Replace every hyper-convolution by a plain torch convolution holding its generated kernel, in place.

    The result computes the same outputs (up to float rounding when the hyper layer used the FFT path) with no
    kernel network, for deployment and export (``torch.jit.trace``, TorchScript, ONNX). Returns the model, or
    its replacement when ``model`` itself is a hyper-convolution.
    """
    return _replace_modules(model, lambda m: _materialize_layer(m) if isinstance(m, HyperConvNd) else None)


def scriptable_copy(model: nn.Module) -> nn.Module:
    """A materialized deep copy of ``model`` when it holds hyper-convolutions, else ``model`` itself.

    For ``__prepare_scriptable__`` of networks: ``torch.jit.script`` then compiles plain convolutions and leaves
    the scripted network (hyper layers, kernel networks) untouched, so it can go on training.
    """
    if not any(isinstance(m, HyperConvNd) for m in model.modules()):
        return model
    return materialize(copy.deepcopy(model))
