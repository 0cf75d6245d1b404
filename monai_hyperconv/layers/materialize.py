"""Materialization: a hyper-convolution as the plain torch convolution holding its generated kernel.

Lives with the layers (not in ``convert.py``) because the layers' and networks' ``__prepare_scriptable__`` use it,
and the core's import order is layers <- blocks <- networks <- convert.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from monai_hyperconv.layers.hyperconv import HyperConvBase, HyperConvNd
from monai_hyperconv.layers.hyperconv_transpose import HyperConvTransposeNd

__all__ = ["materialize", "materialize_layer", "replace_matching_modules", "scriptable_copy"]

_TORCH_FOR = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TORCH_TRANSPOSE_FOR = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_PAD_FOR = {1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d}


def replace_matching_modules(model: nn.Module, convert, prefix: str = "") -> nn.Module:
    """Apply ``convert`` ((module, qualified name) -> replacement or None) to the model and all descendants, in
    place."""
    replacement = convert(model, prefix)
    if replacement is not None:
        return replacement
    for name, child in list(model.named_children()):
        new_child = replace_matching_modules(child, convert, f"{prefix}.{name}" if prefix else name)
        if new_child is not child:
            setattr(model, name, new_child)
    return model


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
    pairs = layer.padding_pairs
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


def materialize_layer(module: nn.Module, name: str = "") -> nn.Module | None:
    """The plain torch convolution equivalent to ``module`` if it is a hyper-convolution, else None."""
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
    return replace_matching_modules(model, materialize_layer)


def scriptable_copy(model: nn.Module) -> nn.Module:
    """A materialized deep copy of ``model`` when it holds hyper-convolutions, else ``model`` itself.

    For ``__prepare_scriptable__`` of networks: ``torch.jit.script`` then compiles plain convolutions and leaves
    the scripted network (hyper layers, kernel networks) untouched, so it can go on training.
    """
    if not any(isinstance(m, HyperConvBase) for m in model.modules()):
        return model
    return materialize(copy.deepcopy(model))
