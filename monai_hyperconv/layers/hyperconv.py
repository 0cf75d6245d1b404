"""Hyper-convolution layers: convolutions whose kernel is generated from its grid coordinates.

Ma, Wang, Dalca, Sabuncu, "Hyper-Convolutions via Implicit Kernels for Medical Imaging", MedIA 2023.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from monai_hyperconv.layers import path_choice
from monai_hyperconv.layers.fft_conv import (
    BasisFFTPlan,
    basis_fft_conv,
    basis_fft_plan,
    basis_spectrum,
    dilate_taps,
)
from monai_hyperconv.layers.grid import (
    grid_mismatch,
    grid_scales,
    grid_state,
    resampled_grid,
    tap_weighted,
)
from monai_hyperconv.layers.kernel_net import CoordinateKernelNet, kernel_grid

__all__ = [
    "KERNEL_INIT_STD",
    "HyperConv1d",
    "HyperConv2d",
    "HyperConv3d",
    "HyperConvBase",
    "HyperConvNd",
    "reinit_hyper_kernels",
]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# standard deviation of the generated kernels at initialisation, by ``kernel_init``, from the layer's fan-in:
# "he" is Kaiming-normal with the ReLU gain (the paper's release initialises its kernel networks He-normal);
# "torch" is the std of torch.nn.Conv*d's default weights (Kaiming-uniform, a = sqrt(5)), the regular layer's
KERNEL_INIT_STD = {"he": lambda fan_in: math.sqrt(2.0 / fan_in), "torch": lambda fan_in: math.sqrt(1.0 / (3 * fan_in))}
_CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _edit_count(tensor: torch.Tensor) -> int | None:
    """In-place edits of ``tensor`` so far; inference tensors keep no count."""
    return None if tensor.is_inference() else tensor._version


def spatial_tuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value}.")
    return value


class HyperConvBase(nn.Module):
    """The kernel machinery every hyper-convolution shares, regular (:class:`HyperConvNd`) and transposed
    (:class:`~monai_hyperconv.layers.HyperConvTransposeNd`): each kernel weight is computed by a small MLP
    (:class:`CoordinateKernelNet`) from the integer offset of its tap, so the parameter count depends on
    ``hidden_channels`` and the channels, never on ``kernel_size`` (eq. 3 of the paper). A separate learned bias is
    added after the convolution.

    A subclass sets ``spatial_dims``, gives the weight layout (:meth:`kernel_shape`), validates and stores its own
    ``padding`` and defines ``forward`` with :meth:`kernel`. Initialisation follows torch's fan-in convention for
    the layout: ``fan_in = kernel_shape()[1] * prod(kernel_size)`` (``weight.size(1) * prod(k)``, what ``nn.init``
    computes), the kernels get the standard deviation of ``kernel_init`` from it (through the kernel network's
    ``reset_parameters``) and the bias torch's ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    The kernel is regenerated on every forward pass that records gradients, which also drops the cached one.
    Otherwise (e.g. eval mode under ``torch.no_grad``) it is cached and reused until a kernel-network parameter
    changes, which parameter version counters, storage, dtype and device reveal; fused optimizer steps
    (``Adam(fused=True)``...) bump no version counter, so while a kernel-network parameter holds a gradient (the
    only parameters an optimizer steps) the cache is also checked against the parameters' bytes. No process-wide
    hook is involved. Edits through ``param.data`` bypass version counters: call :meth:`clear_kernel_cache` after
    them.

    The state dict records the kernel grid (``_extra_state``: kernel size, grid scale, training kernel size):
    loading weights written on another grid raises, unless inside
    :func:`~monai_hyperconv.layers.grid.load_on_new_grid`. :func:`monai_hyperconv.resample_kernels` moves the
    layer to a finer grid (:meth:`set_grid_scale`). ``torch.jit.script`` compiles the materialized convolution.

    Args:
        in_channels, out_channels, kernel_size, stride, dilation, groups, bias: as in torch.
        padding: stored as given (the subclass has validated it).
        hidden_channels: hidden widths of the kernel network; the last entry is the paper's N_L.
        negative_slope: leaky ReLU slope of the kernel network (0.1 in the paper).
        kernel_init: the initial kernels' standard deviation from the fan-in: ``"he"`` ``sqrt(2 / fan_in)`` or
            ``"torch"`` ``sqrt(1 / (3 fan_in))`` (:data:`KERNEL_INIT_STD`).
        device, dtype: of the parameters.
    """

    spatial_dims: int = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int],
        padding: str | tuple[int, ...],
        dilation: int | Sequence[int],
        groups: int,
        bias: bool,
        *,
        hidden_channels: Sequence[int],
        negative_slope: float,
        kernel_init: str = "he",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        n = self.spatial_dims
        if kernel_init not in KERNEL_INIT_STD:
            raise ValueError(f"kernel_init must be one of {sorted(KERNEL_INIT_STD)}, got {kernel_init!r}.")
        self.kernel_init = kernel_init
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must divide by groups ({groups})."
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = spatial_tuple(kernel_size, n, "kernel_size")
        self.base_kernel_size, self.grid_scale = self.kernel_size, (1.0,) * n  # the training grid; see set_grid_scale
        self.stride = spatial_tuple(stride, n, "stride")
        self.dilation = spatial_tuple(dilation, n, "dilation")
        self.groups = groups
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError("kernel_size, stride and dilation must be positive.")
        self.padding = padding

        factory = {"device": device, "dtype": dtype}
        self.register_buffer("grid", kernel_grid(self.kernel_size).to(**factory), persistent=False)
        self.register_buffer("tap_weights", None, persistent=False)  # set by set_grid_scale
        self.kernel_net = CoordinateKernelNet(
            n, out_channels * (in_channels // groups), hidden_channels, negative_slope
        ).to(**factory)
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.clear_kernel_cache()
        self.reset_parameters()

    @property
    def hidden_channels(self) -> tuple[int, ...]:
        return self.kernel_net.hidden_channels

    @property
    def kernel_extent(self) -> tuple[int, ...]:
        """Extent of the (dilated) kernel per spatial dim: ``dilation * (kernel_size - 1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))

    @property
    def fan_in(self) -> int:
        """torch's fan-in of the weight layout: ``kernel_shape()[1] * prod(kernel_size)`` (``in // groups * prod(k)``
        for a convolution, ``out // groups * prod(k)`` for a transposed one)."""
        return self.kernel_shape()[1] * math.prod(self.kernel_size)

    def kernel_shape(self) -> tuple[int, ...]:
        """Shape of :meth:`kernel`, that of the equivalent torch layer's weight."""
        raise NotImplementedError(f"{type(self).__name__} must define kernel_shape().")

    def reset_parameters(self) -> None:
        """Kernel statistics of ``kernel_init`` (default: Kaiming-normal, ReLU gain); torch's default bias init."""
        self.kernel_net.reset_parameters(self.grid, target_std=KERNEL_INIT_STD[self.kernel_init](self.fan_in))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.fan_in)
            nn.init.uniform_(self.bias, -bound, bound)
        self.clear_kernel_cache()

    # -- the kernel -------------------------------------------------------------------------------------------
    def _generate_kernel(self) -> torch.Tensor:
        # Computed in the parameters' precision; autocast, if active, casts it at the convolution.
        with torch.autocast(self.grid.device.type, enabled=False):
            flat = tap_weighted(self.kernel_net(self.grid.to(self.kernel_net.out.weight.dtype)), self.tap_weights, 1)
        return flat.view(self.kernel_shape())

    def _parameter_state(self) -> tuple:
        """What reveals a kernel-network change without reading values: each parameter's storage, version counter
        (in-place edits, unfused optimizer steps), dtype and device (``load_state_dict``, ``.to()``)."""
        return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self.kernel_net.parameters())

    def _parameter_bytes(self) -> torch.Tensor | None:
        """The kernel network's parameters as one byte vector while one of them holds a gradient, else None.

        Fused optimizer steps change parameters without bumping their version counters, and an optimizer steps
        only parameters that hold a gradient: while one does, a cached kernel is valid only if these bytes are
        unchanged (an exact comparison, a few thousand bytes per layer). Without gradients no step can happen, and
        the last forward that recorded gradients dropped the cache (:meth:`kernel`), so the state above suffices.
        """
        params = list(self.kernel_net.parameters())
        if all(p.grad is None for p in params):
            return None
        with torch.no_grad():
            return torch.cat([p.detach().reshape(-1).view(torch.uint8) for p in params])

    @staticmethod
    def _same_bytes(stored: torch.Tensor | None, current: torch.Tensor | None) -> bool:
        if stored is None or current is None:
            return stored is current
        return stored.shape == current.shape and stored.device == current.device and torch.equal(stored, current)

    def _cache_is_valid(self) -> bool:
        kernel = self._cached_kernel
        return (
            kernel is not None
            and self._cache_key == (self._parameter_state(), _edit_count(kernel))  # the handed-out kernel unedited
            and (torch.is_inference_mode_enabled() or not kernel.is_inference())  # inference tensors stay there
            and self._same_bytes(getattr(self, "_cache_bytes", None), self._parameter_bytes())
        )

    def _records_grad(self) -> bool:
        """Whether autograd records the kernel network: then kernels are regenerated, never cached."""
        return torch.is_grad_enabled() and any(p.requires_grad for p in self.kernel_net.parameters())

    def clear_kernel_cache(self) -> None:
        """Forget the cached kernel (and whatever a subclass derives from it); the next use regenerates it.

        Needed only after edits that bypass parameter version counters, i.e. through ``param.data``; optimizer
        steps (fused ones included), ``load_state_dict``, ``.to()`` and in-place edits are detected.
        """
        self._cache_key, self._cached_kernel, self._cache_bytes = None, None, None

    def _uncached(self) -> bool:
        """Whether this call regenerates the kernel (spectrum) instead of using the cache.

        When autograd records the kernel network, a backward pass and an optimizer step may follow: the cache is
        dropped then, so that a later step that bumps no version counter (a fused one) cannot leave it stale.
        Compiled graphs regenerate the kernel (a small MLP) instead of consulting the Python-side cache, whose
        checks (version counters, inference tensors) would break the graph and guard on every layer; dropping the
        cache is an attribute write that the compiled graph replays.
        """
        records_grad = self._records_grad()
        if records_grad:
            self.clear_kernel_cache()
        return records_grad or torch.compiler.is_compiling()

    def kernel(self) -> torch.Tensor:
        """The generated weight, in the layout of the equivalent torch layer's weight (:meth:`kernel_shape`)."""
        if self._uncached():
            return self._generate_kernel()
        if not self._cache_is_valid():
            with torch.no_grad():
                self._cached_kernel = self._generate_kernel()
            self._cache_key = (self._parameter_state(), _edit_count(self._cached_kernel))
            self._cache_bytes = self._parameter_bytes()
        return self._cached_kernel

    @property
    def weight(self) -> torch.Tensor:
        """Read-only view of the generated kernel, for code that inspects ``conv.weight``."""
        return self.kernel()

    def _apply(self, fn, recurse=True):
        self.clear_kernel_cache()
        return super()._apply(fn, recurse)

    # -- the kernel grid in the state dict (monai_hyperconv.layers.grid) ------------------------------------------
    def get_extra_state(self) -> torch.Tensor:
        """The kernel grid (kernel size, grid scale, training kernel size), so that loading checks it."""
        return grid_state(self.kernel_size, self.grid_scale, self.base_kernel_size)

    def set_extra_state(self, state) -> None:
        """Nothing to set: a layer keeps its own grid; :meth:`_load_from_state_dict` checks the stored one."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors):
        """As torch's, plus: a stored kernel grid other than this layer's is an error (torch raises it with any
        size mismatch, naming the layer) unless inside :func:`~monai_hyperconv.layers.grid.load_on_new_grid`; a
        state dict without one (written before grids were recorded) loads, also with ``strict=True``."""
        self.clear_kernel_cache()
        key = prefix + "_extra_state"
        name = f"{type(self).__name__} {prefix[:-1]!r}" if prefix else type(self).__name__
        error = grid_mismatch(state_dict.get(key), self.kernel_size, self.grid_scale, self.base_kernel_size, name)
        if error:
            errors.append(error)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors)
        if key in missing_keys:
            missing_keys.remove(key)

    def set_grid_scale(self, grid_scale: float | Sequence[float]) -> None:
        """Sample the kernel network on a grid ``grid_scale`` times finer than the training grid (per spatial dim;
        1 is the training grid), in place. Used by :func:`monai_hyperconv.resample_kernels`, which documents the
        kernel size, tap weighting and padding this gives."""
        scale = grid_scales(grid_scale, self.spatial_dims, "grid_scale")
        size, grid, tap_weights = resampled_grid(self.base_kernel_size, scale, type(self).__name__)
        padding = self.resampled_padding(size)
        self.grid_scale, self.kernel_size, self.padding = scale, size, padding
        self.grid = grid.to(self.grid)
        self.tap_weights = None if tap_weights is None else tap_weights.to(self.grid)
        self.clear_kernel_cache()

    def resampled_padding(self, size: tuple[int, ...]) -> str | tuple[int, ...]:
        """Padding for kernel ``size``: unchanged for the same size, "same" and "valid" / zero padding as they are,
        size-preserving ints recomputed; other explicit padding has no physical counterpart: an error."""
        padding = self.padding
        if size == self.kernel_size or isinstance(padding, str) or not any(padding):
            return padding
        if all(p * 2 == d * (k - 1) for p, k, d in zip(padding, self.kernel_size, self.dilation)):
            return tuple(d * (k - 1) // 2 for k, d in zip(size, self.dilation))
        raise ValueError(
            f"{type(self).__name__}({self.extra_repr()}): cannot resample a kernel with explicit padding {padding}: "
            "it is neither size-preserving nor 0, so its counterpart on the new grid is undefined. Use padding='same' "
            "or 'valid'."
        )

    def __prepare_scriptable__(self) -> nn.Module:
        """What ``torch.jit.script`` compiles in place of this layer: its materialized ``nn.Conv{N}d`` (same outputs).

        Scripting a module stores the prepared layers back into their parents (torch's recursion does), so the
        scripted module's *source* then holds plain convolutions too: script a ``copy.deepcopy`` to keep training
        the hyper one. The networks of :mod:`monai_hyperconv.networks` copy themselves for this.
        """
        from monai_hyperconv.layers.materialize import materialize  # that module imports this one

        return materialize(self)

    def kernel_basis(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The kernel as M = N_L + 1 shared maps and their mixing: ``kernel()[o, i] == sum_m mix[o, i, m] maps[m]``.

        Returns ``(maps, mix)``: ``maps`` ``(M, *kernel_size)`` are the kernel network's N_L features at every tap
        and a map of ones (for the output layer's bias); ``mix`` ``(out, in // groups, M)`` is the output layer.
        Computed in the parameters' precision, autocast disabled.
        """
        net = self.kernel_net
        with torch.autocast(self.grid.device.type, enabled=False):
            feats = net.features(self.grid.to(net.out.weight.dtype))
            feats = torch.cat([feats, feats.new_ones(feats.shape[0], 1)], dim=1)  # ones column: output bias
            feats = tap_weighted(feats, self.tap_weights, 0)  # the kernel's tap weights, as in _generate_kernel
            mix = torch.cat([net.out.weight, net.out.bias.unsqueeze(1)], dim=1)
        maps = feats.t().reshape(-1, *self.kernel_size)
        return maps, mix.reshape(self.out_channels, self.in_channels // self.groups, -1)


class HyperConvNd(HyperConvBase, metaclass=abc.ABCMeta):
    """N-d hyper-convolution with the signature of ``torch.nn.Conv{N}d``.

    The kernel network, its parameter count (eq. 3 of the paper, independent of ``kernel_size``), the separate bias,
    the kernel cache and the kernel grid in the state dict are those of :class:`HyperConvBase`; this class adds
    torch's and MONAI's padding options and the convolution itself, on a direct or an FFT path.

    ``isinstance(layer, HyperConvNd)`` holds for every hyper-convolution, transposed ones included (they are
    registered as virtual subclasses, see :class:`~monai_hyperconv.layers.HyperConvTransposeNd`), as it always has;
    code that uses the shared machinery may test :class:`HyperConvBase` instead, which is the same set of layers.

    Args:
        in_channels, out_channels, kernel_size, stride, dilation, groups, bias, padding_mode: as in torch.
        padding: ``"same"`` (default), ``"valid"``, an int or one int per spatial dim. ``"same"`` with a stride
            above 1 pads as it would with stride 1 (``dilation * (k - 1)`` in total), so odd kernels give
            ``ceil(size / stride)`` outputs, as MONAI's ``same_padding``.
        hidden_channels: hidden widths of the kernel network; the last entry is the paper's N_L.
        negative_slope: leaky ReLU slope of the kernel network (0.1 in the paper).
        kernel_init: the initial kernels' standard deviation (the kernel network is initialised so that its kernels
            have it, see :meth:`CoordinateKernelNet.reset_parameters`): ``"he"`` (default) ``sqrt(2 / fan_in)``, or
            ``"torch"`` ``sqrt(1 / (3 fan_in))``, that of a ``torch.nn.Conv{N}d``'s default weights. Under batch norm
            the kernels' scale sets how far a step moves them relative to their size: with ``"he"`` they start 2.45x
            larger than the regular kernels they replace.
        fft: ``"auto"`` picks the direct or the FFT path per call, from a cost model of both in the input size,
            channels, batch and kernel (calibrated per device type), or, with
            ``monai_hyperconv.layers.path_choice.benchmark = True``, from a one-time measurement of both paths per
            input shape (see :mod:`monai_hyperconv.layers.path_choice`); ``True`` / ``False`` force it.
        device, dtype: of the parameters.

    The kernel cache (see :class:`HyperConvBase`) also holds the FFT path's kernel spectrum.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str | int | Sequence[int] = "same",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        hidden_channels: Sequence[int] = (16, 16, 4),
        negative_slope: float = 0.1,
        padding_mode: str = "zeros",
        fft: bool | str = "auto",
        kernel_init: str = "he",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}.")
        if fft not in ("auto", True, False):
            raise ValueError(f"fft must be 'auto', True or False, got {fft!r}.")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid' or ints, got {padding!r}.")
        super().__init__(
            in_channels, out_channels, kernel_size, stride,
            padding if isinstance(padding, str) else spatial_tuple(padding, self.spatial_dims, "padding"),
            dilation, groups, bias, hidden_channels=hidden_channels, negative_slope=negative_slope,
            kernel_init=kernel_init, device=device, dtype=dtype,
        )  # fmt: skip
        self.padding_mode = padding_mode
        self.fft = fft

    @property
    def padding_pairs(self) -> tuple[tuple[int, int], ...]:
        """Zero padding ``(before, after)`` per spatial dim that :attr:`padding` resolves to (``"same"`` may pad
        one more after than before)."""
        if self.padding == "valid":
            return ((0, 0),) * self.spatial_dims
        if self.padding == "same":
            totals = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        return tuple((p, p) for p in self.padding)

    def kernel_shape(self) -> tuple[int, ...]:
        """``nn.Conv{N}d.weight``'s shape: ``(out_channels, in_channels // groups, *kernel_size)``."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def kernel(self) -> torch.Tensor:
        """The generated weight, shaped like ``torch.nn.Conv{N}d.weight``: ``(out, in // groups, *kernel_size)``."""
        return super().kernel()

    def clear_kernel_cache(self) -> None:
        """Forget the cached kernel and kernel spectrum; the next use regenerates them (see
        :meth:`HyperConvBase.clear_kernel_cache`)."""
        super().clear_kernel_cache()
        self._spectrum_key, self._cached_spec, self._spectrum_bytes = None, None, None

    # -- the convolution --------------------------------------------------------------------------------------
    def _chooses_fft(self, x: torch.Tensor) -> bool:
        """The path of this call for input ``x`` (before padding); see :mod:`monai_hyperconv.layers.path_choice`."""
        if self.fft != "auto":
            return bool(self.fft)
        return path_choice.auto_chooses_fft(self, x, self._records_grad())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels):
            raise ValueError(
                f"{type(self).__name__} expects input (batch, {self.in_channels}, {self.spatial_dims} spatial dims), "
                f"got shape {tuple(x.shape)}."
            )
        fft = self._chooses_fft(x)
        pairs = self.padding_pairs
        if self.padding_mode != "zeros":
            x = F.pad(x, [p for pair in reversed(pairs) for p in pair], mode=self.padding_mode)
            pairs = ((0, 0),) * self.spatial_dims
        if fft:
            return self._fft_forward(x, pairs)  # zero padding, even asymmetric, is part of the FFT plan
        if any(a != b for a, b in pairs):
            x = F.pad(x, [p for pair in reversed(pairs) for p in pair])
            pairs = ((0, 0),) * self.spatial_dims
        padding = tuple(a for a, _ in pairs)
        return _CONV_FUNCTIONS[self.spatial_dims](
            x, self.kernel(), self.bias, self.stride, padding, self.dilation, self.groups
        )

    def kernel_spectrum(self, plan: BasisFFTPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """The FFT path's view of the kernel for one input geometry: ``(spectrum, mix)``.

        ``spectrum`` ``(M, *freq)`` holds the conjugate spectra of the M = N_L + 1 maps of :meth:`kernel_basis`
        (dilated, cropped and placed by ``plan``, see :func:`~monai_hyperconv.layers.fft_conv.basis_spectrum`), in
        float32 or wider (torch has no half-precision CPU FFT); ``mix`` is the basis's mixing matrix in the same
        precision. The kernel is linear in the maps, so M FFTs replace the ``in * out / groups`` of a generic kernel.
        """
        maps, mix = self.kernel_basis()
        compute = torch.promote_types(maps.dtype, torch.float32)
        with torch.autocast(self.grid.device.type, enabled=False):
            spectrum = basis_spectrum(dilate_taps(maps.to(compute), self.dilation), plan)
        return spectrum, mix.to(compute)

    def _cached_spectrum(self, plan: BasisFFTPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`kernel_spectrum`, cached while the parameters are unchanged when no gradients are recorded.

        Under ``torch.compile`` nothing is cached: the spectrum is part of the compiled graph (a few small FFTs),
        which keeps the graph free of the Python-side cache bookkeeping and always fresh.
        """
        if self._uncached():
            return self.kernel_spectrum(plan)
        key = (self._parameter_state(), plan, torch.is_inference_mode_enabled())
        current = self._parameter_bytes()
        if getattr(self, "_spectrum_key", None) != key or not self._same_bytes(self._spectrum_bytes, current):
            with torch.no_grad():
                self._cached_spec = self.kernel_spectrum(plan)
            self._spectrum_key, self._spectrum_bytes = key, current
        return self._cached_spec

    def _fft_forward(self, x: torch.Tensor, pairs) -> torch.Tensor:
        device_type = x.device.type
        out_dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else x.dtype
        compute = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(device_type, enabled=False):
            plan = basis_fft_plan(x.shape[2:], pairs, self.kernel_extent)
            spectrum, mix = self._cached_spectrum(plan)
            bias = None if self.bias is None else self.bias.to(compute)
            y = basis_fft_conv(x.to(compute), spectrum, mix.to(compute), bias, plan, self.stride, self.groups)
        return y.to(out_dtype)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding!r}, hidden_channels={self.hidden_channels}"
        )
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.fft != "auto":
            s += f", fft={self.fft}"
        if self.kernel_init != "he":
            s += f", kernel_init={self.kernel_init!r}"
        if self.grid_scale != (1.0,) * self.spatial_dims:
            s += f", grid_scale={self.grid_scale}, trained kernel_size={self.base_kernel_size}"
        return s


class HyperConv1d(HyperConvNd):
    """1-d hyper-convolution; see :class:`HyperConvNd`."""

    spatial_dims = 1


class HyperConv2d(HyperConvNd):
    """2-d hyper-convolution; see :class:`HyperConvNd`."""

    spatial_dims = 2


class HyperConv3d(HyperConvNd):
    """3-d hyper-convolution; see :class:`HyperConvNd`."""

    spatial_dims = 3


def reinit_hyper_kernels(model: nn.Module, kernel_init: str | None = None) -> nn.Module:
    """Re-draw every hyper-convolution of ``model`` with ``kernel_init`` (see :class:`HyperConvNd`), in place.

    For networks built without a ``kernel_init`` argument (a bundle's ``network_def``): ``None`` (or ``"null"``)
    changes nothing and draws no random numbers, so a run without it is the same run as before.
    """
    if kernel_init is None or (isinstance(kernel_init, str) and kernel_init.strip().lower() in ("null", "none")):
        return model
    if kernel_init not in KERNEL_INIT_STD:
        raise ValueError(f"kernel_init must be null or one of {sorted(KERNEL_INIT_STD)}, got {kernel_init!r}.")
    for module in model.modules():
        if isinstance(module, HyperConvNd):
            module.kernel_init = kernel_init
            module.reset_parameters()
    return model
