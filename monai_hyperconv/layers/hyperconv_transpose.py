"""Transposed hyper-convolutions: ``torch.nn.ConvTranspose{N}d`` with a kernel generated from grid coordinates."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from monai_hyperconv.layers.hyperconv import HyperConvBase, HyperConvNd, spatial_tuple

__all__ = ["HyperConvTranspose1d", "HyperConvTranspose2d", "HyperConvTranspose3d", "HyperConvTransposeNd"]

_CONV_TRANSPOSE_FUNCTIONS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class HyperConvTransposeNd(HyperConvBase):
    """N-d transposed hyper-convolution with the signature of ``torch.nn.ConvTranspose{N}d``.

    The kernel network, its parameter count (eq. 3 of the paper, independent of ``kernel_size``), the separate
    bias, the kernel cache and the kernel grid in the state dict are those of every hyper-convolution
    (:class:`~monai_hyperconv.layers.HyperConvBase`, shared with :class:`~monai_hyperconv.layers.HyperConvNd`); only
    the weight layout and the convolution differ. :meth:`kernel` returns exactly the weight an equivalent
    ``nn.ConvTranspose{N}d`` holds, ``(in_channels, out_channels // groups, *kernel_size)``, and the forward pass is
    ``torch.nn.functional.conv_transpose{N}d`` on it.

    Initialisation follows torch's fan-in convention for transposed weights, ``fan_in = out_channels // groups *
    prod(kernel_size)`` (``weight.size(1) * prod(k)``, what ``nn.init`` computes from that layout): kernels get the
    Kaiming-normal (ReLU gain) standard deviation ``sqrt(2 / fan_in)`` through the kernel network's
    ``reset_parameters``, and the bias torch's ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, as
    :class:`~monai_hyperconv.layers.HyperConvNd` does with its own fan-in.

    There is one path, the direct one (no FFT path as :class:`~monai_hyperconv.layers.HyperConvNd` has: it would
    apply only at stride 1, where a transposed convolution is a full correlation with the flipped kernel, and
    transposed convolutions are nearly always upsampling ones). ``isinstance(layer, HyperConvNd)`` holds (a virtual
    subclass), so code that looks for hyper-convolutions finds transposed ones too.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
            padding_mode: as in ``torch.nn.ConvTranspose{N}d`` (``padding`` is an int or one int per spatial dim;
            ``padding_mode`` can only be ``"zeros"``, as in torch).
        hidden_channels: hidden widths of the kernel network; the last entry is the paper's N_L.
        negative_slope: leaky ReLU slope of the kernel network (0.1 in the paper).
        device, dtype: of the parameters.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        output_padding: int | Sequence[int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | Sequence[int] = 1,
        padding_mode: str = "zeros",
        *,
        hidden_channels: Sequence[int] = (16, 16, 4),
        negative_slope: float = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        n = self.spatial_dims
        name = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding_mode is supported (as in torch), got {padding_mode!r}.')
        if isinstance(padding, str):
            raise TypeError(
                f"{name}: padding must be an int or {n} ints (no string padding, as in torch), got {padding!r}."
            )
        padding = spatial_tuple(padding, n, "padding")
        if min(padding) < 0:
            raise ValueError(f"{name}: padding must be non-negative, got {padding}.")
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            hidden_channels=hidden_channels, negative_slope=negative_slope, device=device, dtype=dtype,
        )  # fmt: skip
        self.padding_mode = padding_mode
        self.output_padding = spatial_tuple(output_padding, n, "output_padding")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not 0 <= op < max(s, d):
                raise ValueError(
                    f"{name}: output_padding must be non-negative and smaller than stride or dilation, got "
                    f"output_padding={self.output_padding}, stride={self.stride}, dilation={self.dilation}."
                )

    def kernel_shape(self) -> tuple[int, ...]:
        """``nn.ConvTranspose{N}d.weight``'s shape: ``(in_channels, out_channels // groups, *kernel_size)``."""
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def kernel(self) -> torch.Tensor:
        """The generated weight, shaped like ``torch.nn.ConvTranspose{N}d.weight``: ``(in, out // groups, *k)``."""
        return super().kernel()

    def forward(self, x: torch.Tensor, output_size: Sequence[int] | None = None) -> torch.Tensor:
        """Transposed convolution of ``x``; ``output_size`` picks the output padding as in torch."""
        n = self.spatial_dims
        if not torch.jit.is_tracing() and (x.dim() != n + 2 or x.shape[1] != self.in_channels):
            raise ValueError(
                f"{type(self).__name__} expects input (batch, {self.in_channels}, {n} spatial dims), "
                f"got shape {tuple(x.shape)}."
            )
        output_padding = self.output_padding if output_size is None else self._output_padding_for(x, output_size)
        return _CONV_TRANSPOSE_FUNCTIONS[n](
            x, self.kernel(), self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )

    def _output_padding_for(self, x: torch.Tensor, output_size: Sequence[int]) -> tuple[int, ...]:
        """The output padding that gives ``output_size`` (its last ``spatial_dims`` entries), torch's rule: between
        the smallest output ``(in - 1) * stride - 2 * padding + dilation * (k - 1) + 1`` and that plus ``stride - 1``.
        """
        n = self.spatial_dims
        output_size = [int(s) for s in output_size]
        if len(output_size) not in (n, n + 2):
            raise ValueError(
                f"{type(self).__name__}: output_size must have {n} or {n + 2} elements (got {len(output_size)})."
            )
        output_size = output_size[-n:]
        smallest = [
            (size - 1) * s - 2 * p + d * (k - 1) + 1
            for size, s, p, d, k in zip(x.shape[-n:], self.stride, self.padding, self.dilation, self.kernel_size)
        ]
        for want, low, s in zip(output_size, smallest, self.stride):
            if not low <= want <= low + s - 1:
                raise ValueError(
                    f"{type(self).__name__}: requested an output size of {output_size}, but valid sizes range from "
                    f"{smallest} to {[lo + s - 1 for lo, s in zip(smallest, self.stride)]} (for an input of "
                    f"{list(x.shape[2:])})."
                )
        return tuple(want - low for want, low in zip(output_size, smallest))

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, hidden_channels={self.hidden_channels}"
        )
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class HyperConvTranspose1d(HyperConvTransposeNd):
    """1-d transposed hyper-convolution; see :class:`HyperConvTransposeNd`."""

    spatial_dims = 1


class HyperConvTranspose2d(HyperConvTransposeNd):
    """2-d transposed hyper-convolution; see :class:`HyperConvTransposeNd`."""

    spatial_dims = 2


class HyperConvTranspose3d(HyperConvTransposeNd):
    """3-d transposed hyper-convolution; see :class:`HyperConvTransposeNd`."""

    spatial_dims = 3


# every hyper-convolution is a HyperConvNd for isinstance / issubclass, as before the shared base existed
HyperConvNd.register(HyperConvTransposeNd)
