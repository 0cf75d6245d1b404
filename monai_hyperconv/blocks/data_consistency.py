"""k-space data consistency for compressed-sensing MRI reconstruction networks (not part of the paper's networks).

A reconstruction network predicts the whole image, but the scanner measured part of its k-space exactly. Data
consistency keeps the measured samples and takes only the unmeasured ones from the network:
``|IFFT_c(m * k_measured + (1 - m) * FFT_c(image))|``, with the centred orthonormal FFTs of
:mod:`monai_hyperconv.transforms.kspace` (MONAI's ``fftn_centered_t`` convention: zero frequency at ``n // 2``). It is
the hard data-consistency step of cascaded CS-MRI networks (Schlemper et al., IEEE TMI 2018), parameter-free and
differentiable, so a network can be trained through it.
"""

from __future__ import annotations

import torch

__all__ = ["kspace_data_consistency"]


def _centered_fft(x: torch.Tensor, dims: list[int], inverse: bool) -> torch.Tensor:
    x = torch.fft.ifftshift(x, dim=dims)
    x = torch.fft.ifftn(x, dim=dims, norm="ortho") if inverse else torch.fft.fftn(x, dim=dims, norm="ortho")
    return torch.fft.fftshift(x, dim=dims)


def kspace_data_consistency(
    image: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor, spatial_dims: int = 2
) -> torch.Tensor:
    """Replace the k-space of ``image`` by the measured samples where ``mask`` is set; return the magnitude image.

    Args:
        image: real network output ``(B, C, *spatial)``.
        kspace: the measured k-space ``(B, C, *spatial, 2)`` (real and imaginary parts last, centred, orthonormal),
            as :meth:`monai_hyperconv.transforms.kspace.PoissonUndersample.measure` gives it; its values outside
            the mask are not used.
        mask: sampling mask broadcastable to ``image`` (e.g. ``(B, 1, *spatial)``), 1 where k-space was measured.
        spatial_dims: number of spatial axes (the last ones of ``image``).

    Returns:
        real tensor of ``image``'s shape and dtype. Its gradient is defined everywhere (the complex magnitude's
        gradient at 0 is 0).
    """
    if kspace.shape[-1] != 2 or list(kspace.shape[:-1]) != list(image.shape):
        raise ValueError(
            f"data consistency: kspace must have the image's shape {list(image.shape)} plus a last axis of 2 "
            f"(real, imaginary), got {list(kspace.shape)}."
        )
    dims = list(range(-spatial_dims, 0))
    predicted = _centered_fft(image.float().to(torch.complex64), dims, inverse=False)
    measured = torch.view_as_complex(kspace.float().contiguous())
    sampled = mask.to(device=image.device, dtype=torch.float32)
    merged = sampled * measured + (1.0 - sampled) * predicted
    return _centered_fft(merged, dims, inverse=True).abs().to(image.dtype)
