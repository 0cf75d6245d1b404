"""Optimizer parameter groups that give each hyper-convolution's kernel network its own learning rate.

Adam moves every parameter by about the learning rate per step. For a regular convolution that moves each kernel
weight by about ``lr``; for a hyper-convolution the kernel is ``W_out @ F + b`` over the N_L features ``F`` of its
taps, so moving every entry of ``W_out`` and ``b`` by ``lr`` moves each kernel weight by up to
``lr * ||(F[:, tap], 1)||`` — a step several times larger, growing with N_L (measured on the liver Hyper-UNet:
relative kernel change per step 2-8x the UNet's; see ``bundles/liver_lesion_seg/docs/evidence.md``).
``kernel_lr_scale="auto"`` divides each layer's kernel-network learning rate by that feature norm (root mean square
over the taps, read from the layer when the groups are built), so that a step moves a generated kernel about as
far as it moves a regular one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from monai_hyperconv.layers.hyperconv import HyperConvBase

__all__ = ["hyper_param_groups", "kernel_step_scale"]


@torch.no_grad()
def kernel_step_scale(layer: HyperConvBase) -> float:
    """``1 / rms_taps ||(F[:, tap], 1)||``: the learning-rate factor under which an Adam step of the layer's output
    layer moves its kernel weights about as far as a regular convolution's step moves its weights."""
    maps, _ = layer.kernel_basis()  # (N_L + 1, *kernel_size): the features and a map of ones
    per_tap = maps.reshape(maps.shape[0], -1).double().pow(2).sum(0)
    return float(1.0 / math.sqrt(float(per_tap.mean())))


def _hyper_layers(model: nn.Module) -> Iterator[HyperConvBase]:
    for module in model.modules():
        if isinstance(module, HyperConvBase):
            yield module


def hyper_param_groups(
    model: nn.Module, lr: float, kernel_lr_scale: float | str | None = None, kernel_weight_decay: float = 0.0
) -> list[dict] | Iterator[nn.Parameter]:
    """The parameters of ``model`` for a torch optimizer, the kernel networks' at a scaled learning rate.

    ``kernel_weight_decay`` decays the *generated kernels*, not the kernel network: the kernel is linear in the
    output layer's weight and bias, so decoupled weight decay of that layer alone (``torch.optim.AdamW``, or
    ``Adam(decoupled_weight_decay=True)``) multiplies every generated kernel by ``1 - lr * weight_decay`` per step,
    as AdamW does to a regular kernel. Under batch norm the kernel's scale does not change the output, but its growth
    shrinks the effective step; the decay holds it.

    Args:
        model: any network; its hyper-convolutions' kernel networks get their own groups.
        lr: the base learning rate (every other parameter, and each group's ``lr * scale``).
        kernel_lr_scale: None or 1 (the paper): every parameter at ``lr``, returned as ``model.parameters()`` (one
            group, the optimizer state of earlier checkpoints loads); a number: every kernel network at
            ``lr * kernel_lr_scale``; ``"auto"``: each layer's kernel network at ``lr * kernel_step_scale(layer)``.

    Returns:
        ``model.parameters()``, or a list of parameter groups (``{"params", "lr", "name"}``) in module order.
    """
    if isinstance(kernel_lr_scale, str) and kernel_lr_scale.strip().lower() in ("none", "null", "1", "1.0"):
        kernel_lr_scale = None
    decay = float(kernel_weight_decay or 0.0)
    if not (math.isfinite(decay) and decay >= 0):
        raise ValueError(f"kernel_weight_decay must be a number >= 0, got {kernel_weight_decay!r}.")
    if kernel_lr_scale is None:
        kernel_lr_scale = 1.0
    if not isinstance(kernel_lr_scale, str) and float(kernel_lr_scale) == 1.0 and decay == 0:
        return model.parameters()
    auto = isinstance(kernel_lr_scale, str)
    if auto and kernel_lr_scale.strip().lower() != "auto":
        raise ValueError(f"kernel_lr_scale must be null, a positive number or 'auto', got {kernel_lr_scale!r}.")
    if not auto and not (math.isfinite(float(kernel_lr_scale)) and float(kernel_lr_scale) > 0):
        raise ValueError(f"kernel_lr_scale must be null, a positive number or 'auto', got {kernel_lr_scale!r}.")
    groups, grouped = [], set()
    for name, module in model.named_modules():
        if not isinstance(module, HyperConvBase):
            continue
        net = module.kernel_net
        out = [p for p in net.out.parameters() if p.requires_grad and id(p) not in grouped]
        hidden = [p for p in net.hidden.parameters() if p.requires_grad and id(p) not in grouped]
        scale = kernel_step_scale(module) if auto else float(kernel_lr_scale)
        for part, params, weight_decay in (("hidden", hidden, 0.0), ("out", out, decay)):
            if params:
                grouped.update(id(p) for p in params)
                groups.append({
                    "params": params, "lr": float(lr) * scale, "weight_decay": weight_decay,
                    "name": f"{name}.kernel_net.{part}",
                })  # fmt: skip
    rest = [p for p in model.parameters() if id(p) not in grouped]
    if rest:
        groups.insert(0, {"params": rest, "lr": float(lr), "name": "other"})
    return groups
