"""Retrospective k-space under-sampling for compressed-sensing MRI: Poisson-disk masks and zero-filled images.

The paper's CS-MRI experiment takes a fully sampled magnitude image, goes to k-space with the centred orthonormal
FFT, keeps about 1/8 of k-space with a variable-density Poisson-disk mask, and feeds the network the zero-filled
reconstruction (the magnitude of the centred inverse FFT of the masked k-space). The robustness experiment adds
complex Gaussian noise to k-space *before* masking.

The physics is kept apart from the learning, as in fastMRI's ``subsample.py`` / ``transforms.py``:

- :func:`poisson_disk_mask`: the seeded mask (sigpy's maintained variable-density Poisson-disc sampler, built once
  per ``(shape, acceleration, seed, calib)`` and cached, because its first call JIT-compiles for seconds);
- :func:`centered_kspace` / :func:`zero_filled_recon`: MONAI's centred FFTs (``monai.networks.blocks.fft_utils_t``);
- :class:`PoissonUndersample` / :class:`PoissonUndersampled`: the MONAI transforms (array and dictionary) that turn
  a fully sampled image into its zero-filled reconstruction, with a fixed seeded mask by default, a random mask per
  sample as an option, and optional k-space noise;
- :func:`make_kspace_noise` / :func:`kspace_noise_factory`: a seeded noisy under-sampler for
  :func:`monai_hyperconv.handlers.run_noise_sweep`.

Noise model: ``k_noisy = k + sigma * (n_re + i n_im)`` with ``n_re, n_im ~ N(0, 1)`` independent per k-space sample.
Because the FFT is orthonormal, this is the same white complex noise (standard deviation ``sigma`` per component)
in the image domain of the fully sampled image; masking then keeps a fraction ``f`` of it, so the zero-filled image
of a zero object has mean squared magnitude ``2 sigma^2 f``.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.apps.reconstruction.complex_utils import complex_abs_t
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.networks.blocks.fft_utils_t import fftn_centered_t, ifftn_centered_t
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from monai_hyperconv.utils.flags import as_bool
from monai_hyperconv.utils.optional import require

__all__ = [
    "KSpaceMeasurement",
    "PoissonUndersample",
    "PoissonUndersampled",
    "centered_kspace",
    "default_calibration",
    "kspace_noise_factory",
    "make_kspace_noise",
    "poisson_disk_mask",
    "zero_filled_recon",
]

#: calibration (fully sampled centre) width as a fraction of each k-space axis: 24 lines of 256, sigpy's usual choice
CALIB_FRACTION = 24 / 256


def default_calibration(shape: Sequence[int]) -> tuple[int, int]:
    """The fully sampled centre used when none is given: 24/256 of each axis, at least 2 samples (24×24 at 256²)."""
    return tuple(max(2, round(s * CALIB_FRACTION)) for s in shape)  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _poisson_2d(shape: tuple[int, int], acceleration: float, seed: int, calib: tuple[int, int], crop_corner: bool):
    # imported here: its import and first call (numba JIT) take seconds, and it is an optional package
    sigpy_mri = require("sigpy.mri", purpose="Poisson-disk k-space masks")

    try:
        mask = sigpy_mri.poisson(
            shape, accel=acceleration, calib=calib, dtype=np.float32, crop_corner=crop_corner, seed=seed
        )
    except ValueError as e:  # sigpy's binary search found no density within its tolerance
        raise ValueError(
            f"Cannot build a Poisson-disk mask of shape {shape} at acceleration {acceleration} with calibration "
            f"{calib}: {e} Use a larger shape, a smaller calibration region or another acceleration."
        ) from e
    mask = mask != 0
    mask.setflags(write=False)
    return mask


def poisson_disk_mask(
    shape: Sequence[int],
    acceleration: float = 8.0,
    seed: int = 0,
    calib: Sequence[int] | None = None,
    crop_corner: bool = True,
) -> np.ndarray:
    """Variable-density Poisson-disk k-space sampling mask (centred: the k-space centre is at ``n // 2``).

    Samples are spread as a Poisson-disc pattern (no two closer than a minimum distance) whose distance grows with
    the k-space radius, so sampling is densest at the centre; a ``calib`` region around the centre is fully sampled;
    about ``1 / acceleration`` of k-space is kept (within sigpy's tolerance of 0.1 on the acceleration). Built with
    ``sigpy.mri.poisson`` and cached: the same arguments give the same mask.

    For a 3D ``shape`` ``(X, Y, Z)`` the first axis is the fully sampled read-out direction of a 3D Cartesian
    acquisition: the 2D mask of ``(Y, Z)`` is repeated along it.

    Args:
        shape: spatial shape of k-space, 2 or 3 sizes.
        acceleration: under-sampling factor (> 1); 8 in the paper.
        seed: seed of the pattern.
        calib: size of the fully sampled centre along the two sampled axes; None gives
            :func:`default_calibration` (24×24 for 256×256).
        crop_corner: leave the k-space corners (radius beyond the inscribed ellipse) unsampled, as sigpy does.

    Returns:
        boolean array of ``shape`` (a new array each call).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 2:
        raise ValueError(f"poisson_disk_mask: shape must hold 2 or 3 sizes >= 2, got {shape}.")
    if not acceleration > 1:
        raise ValueError(f"poisson_disk_mask: acceleration must be > 1, got {acceleration}.")
    plane = shape[-2:]
    calib = default_calibration(plane) if calib is None else tuple(int(c) for c in calib)
    if len(calib) != 2 or any(c < 0 or c > s for c, s in zip(calib, plane)):
        raise ValueError(f"poisson_disk_mask: calib must be 2 sizes within {plane}, got {calib}.")
    mask = _poisson_2d(plane, float(acceleration), int(seed), calib, bool(crop_corner))
    if len(shape) == 3:
        return np.broadcast_to(mask, shape).copy()
    return mask.copy()


def _check_spatial(img: torch.Tensor, spatial_dims: int, name: str = "image") -> None:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if img.ndim not in (spatial_dims + 1, spatial_dims + 2):
        expected = "(C, H, W) or (B, C, H, W)" if spatial_dims == 2 else "(C, H, W, D) or (B, C, H, W, D)"
        raise ValueError(
            f"{name}: expected a channel-first {spatial_dims}D array {expected}, got shape {tuple(img.shape)}."
        )
    if img.is_complex():
        raise ValueError(f"{name}: expected a real magnitude image, got a complex array.")
    if not bool(torch.isfinite(img).all()):
        raise ValueError(f"{name}: has NaN or infinite values; expected a finite image.")


def centered_kspace(image: torch.Tensor, spatial_dims: int = 2) -> torch.Tensor:
    """Centred orthonormal FFT of a real image over its last ``spatial_dims`` axes.

    Returns:
        k-space as a real tensor ``(..., *spatial, 2)`` (real and imaginary parts last), as MONAI's
        ``fftn_centered_t`` gives it; the zero frequency is at index ``n // 2`` of each axis.
    """
    return fftn_centered_t(image.float(), spatial_dims=spatial_dims, is_complex=False)


def zero_filled_recon(kspace: torch.Tensor, mask: torch.Tensor | np.ndarray, spatial_dims: int = 2) -> torch.Tensor:
    """Magnitude of the centred inverse FFT of the masked k-space (the zero-filled reconstruction).

    Args:
        kspace: ``(..., *spatial, 2)`` as from :func:`centered_kspace`.
        mask: boolean (or 0/1) array of the spatial shape, centred like ``kspace``.
        spatial_dims: number of spatial axes.

    Returns:
        real tensor ``(..., *spatial)``.
    """
    mask = torch.as_tensor(np.asarray(mask) if isinstance(mask, np.ndarray) else mask, device=kspace.device)
    if tuple(mask.shape) != tuple(kspace.shape[-spatial_dims - 1 : -1]):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match the k-space spatial shape "
            f"{tuple(kspace.shape[-spatial_dims - 1 : -1])}."
        )
    masked = kspace * mask.to(kspace.dtype)[..., None]
    return complex_abs_t(ifftn_centered_t(masked, spatial_dims=spatial_dims, is_complex=True))


class PoissonUndersample(RandomizableTransform):
    """Zero-filled reconstruction of a fully sampled image under-sampled by a Poisson-disk k-space mask.

    ``image -> |IFFT_c(mask * (FFT_c(image) + noise))|`` with the centred orthonormal FFTs over the spatial axes.
    The input is a real channel-first image ``(C, *spatial)`` (each channel under-sampled alike) or a batch
    ``(B, C, *spatial)``; the output has the input's shape, type and metadata.

    By default the mask is fixed: :func:`poisson_disk_mask` with ``seed`` (what the paper does, one mask for the whole
    data set). ``random_mask=True`` draws a new mask seed per call from the transform's random state (seed it with
    ``set_random_state``); each new mask costs about 0.3 s at 256×256.

    Args:
        acceleration: under-sampling factor (8 in the paper).
        spatial_dims: 2 or 3 (3D: the first spatial axis is fully sampled, see :func:`poisson_disk_mask`).
        seed: seed of the fixed mask.
        random_mask: draw a new mask per call instead.
        noise_std: standard deviation ``sigma`` of the complex Gaussian noise added to k-space before masking
            (per real and imaginary component; the image is assumed to lie in [0, 1]). 0 adds none.
        calib: fully sampled centre, see :func:`poisson_disk_mask`.
        prob: probability of applying the transform; 1 by default (the network input must always be under-sampled).
    """

    backend = [TransformBackends.TORCH]  # noqa: RUF012  (declared as a list, as in MONAI's own transforms)

    def __init__(
        self,
        acceleration: float = 8.0,
        spatial_dims: int = 2,
        seed: int = 0,
        random_mask: bool = False,
        noise_std: float = 0.0,
        calib: Sequence[int] | None = None,
        prob: float = 1.0,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if not acceleration > 1:
            raise ValueError(f"acceleration must be > 1, got {acceleration}.")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}.")
        self.acceleration = float(acceleration)
        self.spatial_dims = spatial_dims
        self.seed = int(seed)
        self.random_mask = as_bool(random_mask, "random_mask")
        self.noise_std = float(noise_std)
        self.calib = None if calib is None else tuple(calib)
        self._mask_seed = self.seed
        self._noise: np.ndarray | None = None

    def randomize(self, kspace_shape: Sequence[int] | None = None) -> None:
        """Draw whether to apply, the mask seed (``random_mask``) and the k-space noise for ``kspace_shape``."""
        super().randomize(None)
        if not self._do_transform:
            return
        self._mask_seed = int(self.R.randint(0, 2**31 - 1)) if self.random_mask else self.seed
        self._noise = None
        if kspace_shape is not None:
            self.randomize_noise(kspace_shape)

    def randomize_noise(self, kspace_shape: Sequence[int]) -> None:
        """Draw new k-space noise for ``kspace_shape`` (nothing when ``noise_std`` is 0), keeping the mask."""
        if self.noise_std > 0:
            self._noise = self.R.standard_normal(tuple(kspace_shape)).astype(np.float32)

    def mask(self, spatial_shape: Sequence[int]) -> np.ndarray:
        """The mask the next (or last) call uses for images of ``spatial_shape``."""
        return poisson_disk_mask(spatial_shape, self.acceleration, self._mask_seed, self.calib)

    def measure(self, img: NdarrayOrTensor, randomize: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The acquisition simulated on ``img``: what a scanner measures, and the zero-filled image made from it.

        Args:
            img: real image ``(C, *spatial)`` or batch ``(B, C, *spatial)``, intensities in about [0, 1].
            randomize: draw a new mask seed / noise (False reuses the last draw, for several keys).

        Returns:
            ``(zero_filled, kspace, mask)`` as plain tensors: the zero-filled magnitude image (``img``'s shape and
            dtype), the measured k-space ``(*img.shape, 2)`` (with its noise, zero where not sampled) and the mask
            ``(1, *spatial)`` (``(1, 1, *spatial)`` for a batch) as 0 / 1 floats, the inputs of
            :func:`monai_hyperconv.blocks.kspace_data_consistency`. When the transform is not applied (``prob``), the
            image itself, its full k-space and a mask of ones.
        """
        img_t = convert_to_tensor(img, track_meta=False)
        _check_spatial(img_t, self.spatial_dims)
        kspace = centered_kspace(img_t, self.spatial_dims)
        if randomize:
            self.randomize(kspace.shape)
        spatial_shape = tuple(img_t.shape[-self.spatial_dims :])
        mask_shape = (1,) * (img_t.ndim - self.spatial_dims) + spatial_shape
        if not self._do_transform:
            return img_t, kspace, torch.ones(mask_shape, device=img_t.device)
        if self._noise is not None and self.noise_std > 0:
            if tuple(self._noise.shape) != tuple(kspace.shape):
                raise RuntimeError(
                    f"the drawn noise {self._noise.shape} does not fit k-space {tuple(kspace.shape)}; call randomize()."
                )
            kspace = kspace + self.noise_std * torch.from_numpy(self._noise).to(kspace.device)
        mask = torch.as_tensor(self.mask(spatial_shape), device=kspace.device)
        measured = kspace * mask.to(kspace.dtype)[..., None]
        zero_filled = zero_filled_recon(measured, mask, self.spatial_dims).to(img_t.dtype)
        return zero_filled, measured, mask.reshape(mask_shape).float()

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """
        Args:
            img: real image ``(C, *spatial)`` or batch ``(B, C, *spatial)``, intensities in about [0, 1].
            randomize: draw a new mask seed / noise (False reuses the last draw, for several keys).
        """
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        zero_filled = self.measure(img_t, randomize)[0]
        if not self._do_transform:
            return img_t
        return convert_to_dst_type(zero_filled, dst=img_t)[0]


class PoissonUndersampled(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`PoissonUndersample`: replaces each key's image by its zero-filled reconstruction.

    All keys share one mask per call; each key gets its own k-space noise. To keep the fully sampled target,
    copy it first, e.g. ``CopyItemsd(keys="image", names="label")`` then ``PoissonUndersampled(keys="image")``.

    Args:
        keys: keys of the images to under-sample.
        acceleration, spatial_dims, seed, random_mask, noise_std, calib, prob: as in :class:`PoissonUndersample`.
        store_measurement: also store the measured k-space ``(C, *spatial, 2)`` under ``kspace_key`` and the sampling
            mask ``(1, *spatial)`` (0 / 1 floats) under ``mask_key`` (one image key only): the inputs of a
            data-consistency network (:meth:`PoissonUndersample.measure`). A flag (``"false"`` reads as False).
        kspace_key, mask_key: the keys of the stored measurement.
        allow_missing_keys: do not raise when a key is missing.
    """

    backend = PoissonUndersample.backend

    def __init__(
        self,
        keys: KeysCollection,
        acceleration: float = 8.0,
        spatial_dims: int = 2,
        seed: int = 0,
        random_mask: bool = False,
        noise_std: float = 0.0,
        calib: Sequence[int] | None = None,
        prob: float = 1.0,
        store_measurement: bool | str = False,
        kspace_key: str = "kspace",
        mask_key: str = "mask",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.store_measurement = as_bool(store_measurement, "store_measurement (data_consistency)")
        if self.store_measurement and len(self.keys) != 1:
            raise ValueError(
                f"PoissonUndersampled: store_measurement keeps the measurement of one image, got keys {self.keys}."
            )
        self.kspace_key, self.mask_key = kspace_key, mask_key
        self.undersample = PoissonUndersample(acceleration, spatial_dims, seed, random_mask, noise_std, calib, 1.0)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.undersample.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        first = True
        for key in self.key_iterator(d):
            try:
                img = convert_to_tensor(d[key], track_meta=get_track_meta())
                shape = (*img.shape, 2)  # k-space shape: real and imaginary parts last
                if first:  # one mask per call; noise drawn for every key
                    self.undersample.randomize(shape)
                    first = False
                else:
                    self.undersample.randomize_noise(shape)
                zero_filled, kspace, mask = self.undersample.measure(img, randomize=False)
                d[key] = convert_to_dst_type(zero_filled, dst=img)[0]
                if self.store_measurement:
                    d[self.kspace_key], d[self.mask_key] = kspace, mask
            except ValueError as e:
                raise ValueError(f"PoissonUndersampled, key {key!r} of {_source(d[key])}: {e}") from e
        return d


def _source(img) -> str:
    meta = getattr(img, "meta", None) or {}
    return str(meta.get("filename_or_obj", "<in-memory array>"))


def make_kspace_noise(
    kind: str,
    level: float,
    seed: int = 0,
    acceleration: float = 8.0,
    spatial_dims: int = 2,
    mask_seed: int = 0,
    calib: Sequence[int] | None = None,
    data_consistency: bool = False,
) -> PoissonUndersample | KSpaceMeasurement:
    """A seeded noisy under-sampler for the robustness sweep: fully sampled batch -> noisy zero-filled batch.

    Made for :func:`monai_hyperconv.handlers.run_noise_sweep`'s ``noise_factory`` with ``image_key`` set to the
    fully sampled image: the k-space noise goes in before the (fixed, ``mask_seed``) mask, as in the paper.

    Args:
        kind: ``"kspace_gaussian"`` (the only kind).
        level: noise standard deviation ``sigma`` (see :class:`PoissonUndersample`).
        seed: seed of the noise: the same for every model, so that all models see the same inputs.
        acceleration, spatial_dims, mask_seed, calib: the mask, as in training.
        data_consistency: return a :class:`KSpaceMeasurement` (the zero-filled batch and the network's ``kspace`` /
            ``mask`` keyword arguments) instead, for a data-consistency network.
    """
    if kind != "kspace_gaussian":
        raise ValueError(f"Unknown k-space noise kind {kind!r}; expected 'kspace_gaussian'.")
    t = PoissonUndersample(acceleration, spatial_dims, mask_seed, False, float(level), calib)
    t.set_random_state(seed)
    return KSpaceMeasurement(t) if as_bool(data_consistency, "data_consistency") else t


class KSpaceMeasurement:
    """``image -> (zero_filled, {"kspace": ..., "mask": ...})``: a network input and the keyword arguments of a
    data-consistency network (e.g. :class:`~monai_hyperconv.networks.PaperUNet`), from one
    :meth:`PoissonUndersample.measure` (a new draw per call).

    :class:`monai_hyperconv.handlers.NoisyBatch` passes the keyword arguments on to the network.
    """

    def __init__(self, undersample: PoissonUndersample) -> None:
        self.undersample = undersample

    def __call__(self, img: NdarrayOrTensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        zero_filled, kspace, mask = self.undersample.measure(img)
        return zero_filled, {"kspace": kspace, "mask": mask}


def kspace_noise_factory(
    acceleration: float = 8.0,
    spatial_dims: int = 2,
    mask_seed: int = 0,
    calib: Sequence[int] | None = None,
    data_consistency: bool = False,
):
    """``(kind, level, seed) -> transform``: :func:`make_kspace_noise` bound to one mask, the ``noise_factory`` of
    :class:`monai_hyperconv.handlers.NoiseSweep`."""
    return functools.partial(
        make_kspace_noise, acceleration=acceleration, spatial_dims=spatial_dims, mask_seed=mask_seed, calib=calib,
        data_consistency=data_consistency,
    )  # fmt: skip
