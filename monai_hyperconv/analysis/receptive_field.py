"""Receptive field of a network: the networks package's helper when it has one, else measured by gradients."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["gradient_receptive_field", "network_receptive_field"]


_IMAGE_STATISTICS = (
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def _without_image_statistics(model: nn.Module) -> nn.Module:
    """``model`` with every normalisation over whole images replaced by an identity, in place."""
    for name, child in list(model.named_children()):
        if isinstance(child, _IMAGE_STATISTICS):
            setattr(model, name, nn.Identity())
        else:
            _without_image_statistics(child)
    return model


def gradient_receptive_field(
    network: nn.Module, spatial_dims: int, in_channels: int, size: int = 256, trials: int = 2, seed: int = 0
) -> int | None:
    """The receptive field in pixels measured as the gradient support of one output pixel (the centre one).

    The network (a copy, in eval mode, so batch norm uses running statistics; instance, group and layer norms,
    whose image-wide statistics would make every network "global", replaced by identities) is fed random inputs of
    ``size`` pixels per axis; the extent along the first spatial axis of the input pixels with a non-zero
    gradient of the centre output pixel is the receptive field. The union over ``trials`` inputs avoids
    under-counting where a ReLU or a max-pool happens to block the gradient of one input.

    Returns:
        The extent in pixels, or None when it reaches both borders of the input ("all": global operations such
        as non-local attention, or a receptive field of ``size`` pixels or more).
    """
    net = _without_image_statistics(copy.deepcopy(network)).float().eval()
    generator = torch.Generator().manual_seed(seed)
    support = torch.zeros((size,) * spatial_dims, dtype=torch.bool)
    for _ in range(trials):
        x = torch.randn(1, in_channels, *(size,) * spatial_dims, generator=generator).requires_grad_(True)
        y = net(x)
        y = y[0] if isinstance(y, (tuple, list)) else y
        centre = tuple(s // 2 for s in y.shape[2:])
        y[(0, slice(None), *centre)].sum().backward()
        support |= x.grad[0].abs().sum(0) > 0
    hit = support.reshape(size, -1).any(1).nonzero().flatten()
    if hit.numel() == 0:
        return 0
    if hit[0] == 0 and hit[-1] == size - 1:
        return None
    return int(hit[-1] - hit[0] + 1)


def network_receptive_field(
    network: nn.Module, spatial_dims: int, in_channels: int, size: int = 256
) -> tuple[str, str]:
    """The receptive field as report text (e.g. ``"128 px"`` or ``"all"``) and how it was obtained.

    Uses :func:`monai_hyperconv.networks.receptive_field` (the paper's count, read from the layers: for a UNet the
    encoder's bottleneck output; None meaning "all") for the networks it knows, else the network's own
    ``receptive_field()`` method if it has one, else :func:`gradient_receptive_field`, which measures the whole
    network's, decoder included, so it is larger than the paper's count for a UNet.
    """
    try:
        from monai_hyperconv.networks import receptive_field as paper_receptive_field
    except ImportError:  # the networks package is optional here
        paper_receptive_field = None
    method = getattr(network, "receptive_field", None)
    value, source = None, None
    if paper_receptive_field is not None:
        try:
            value, source = paper_receptive_field(network), "monai_hyperconv.networks.receptive_field"
        except TypeError:  # not one of its networks
            pass
    if source is None and callable(method):
        value, source = method(), f"{type(network).__name__}.receptive_field()"
    if source is not None:
        return ("all" if value is None else f"{int(value)} px"), source
    with torch.enable_grad():
        value = gradient_receptive_field(network, spatial_dims, in_channels, size)
    return ("all" if value is None else f"{value} px"), f"gradient support of the whole network at {size} px"
