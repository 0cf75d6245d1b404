"""The MS task's three-plane inferer: a 2D network predicts every slice of each orthogonal plane of a 3D volume,
and the planes' probabilities are averaged into one 3D prediction (the paper's fusion)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.data import MetaTensor
from monai.inferers import Inferer

from monai_hyperconv.apps.ms.planes import as_plain_tensor, pad_to_square, plane_slices, square_slice_size, unpad_square

__all__ = ["OrthogonalPlaneInferer"]


class OrthogonalPlaneInferer(Inferer):
    """Predict a 3D volume with a 2D network slice by slice in several planes and average the probabilities.

    For each volume of the batch and each plane, all slices are zero-padded to ``slice_size`` squares, passed
    through the network ``sw_batch_size`` at a time, un-padded, turned into probabilities by ``activation`` and
    put back in place; the result is the mean over the planes, with the input's spatial shape.

    Args:
        planes: the planes to predict (default all three).
        slice_size: side of the square slices the network sees (as in training); None uses the largest in-plane
            size of the input.
        sw_batch_size: slices per network call.
        activation: ``"sigmoid"``, ``"softmax"`` (over channels) or None (fuse raw outputs).
    """

    def __init__(
        self,
        planes: Sequence[int] = (0, 1, 2),
        slice_size: int | None = None,
        sw_batch_size: int = 16,
        activation: str | None = "sigmoid",
    ) -> None:
        super().__init__()
        self.planes = tuple(int(p) for p in planes)
        if not self.planes or any(p not in (0, 1, 2) for p in self.planes):
            raise ValueError(f"planes must be a non-empty subset of (0, 1, 2), got {planes}.")
        if activation not in ("sigmoid", "softmax", None):
            raise ValueError(f"activation must be 'sigmoid', 'softmax' or None, got {activation!r}.")
        self.slice_size = slice_size
        self.sw_batch_size = int(sw_batch_size)
        self.activation = activation

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "sigmoid":
            return torch.sigmoid(x)
        if self.activation == "softmax":
            return torch.softmax(x, dim=1)
        return x

    def _predict_plane(self, volume: torch.Tensor, plane: int, network: Callable, size: int, *args, **kwargs):
        slices = plane_slices(volume, plane)  # (N, C, a, b)
        h, w = slices.shape[-2:]
        outputs = []
        for start in range(0, slices.shape[0], self.sw_batch_size):
            batch = pad_to_square(slices[start : start + self.sw_batch_size], size)
            out = network(batch, *args, **kwargs)
            outputs.append(self._activate(unpad_square(torch.as_tensor(out), h, w)).float())
        return torch.cat(outputs).movedim(0, 1 + plane)  # back to (C_out, H, W, D)

    def __call__(self, inputs: torch.Tensor, network: Callable, *args, **kwargs) -> torch.Tensor:
        """``inputs``: ``(B, C, H, W, D)``; returns fused ``(B, C_out, H, W, D)`` (a ``MetaTensor`` with the
        input's metadata when the input is one, as MONAI's inferers)."""
        if inputs.ndim != 5:
            raise ValueError(f"OrthogonalPlaneInferer expects (B, C, H, W, D) inputs, got shape {tuple(inputs.shape)}.")
        spatial = tuple(inputs.shape[2:])
        size = square_slice_size(spatial, self.planes, self.slice_size)
        fused = []
        for volume in as_plain_tensor(inputs):
            planes = [self._predict_plane(volume, p, network, size, *args, **kwargs) for p in self.planes]
            fused.append(torch.stack(planes).mean(0))
        out = torch.stack(fused)
        if isinstance(inputs, MetaTensor):  # keep the input's metadata and crop history, so that Invertd can undo it
            out = MetaTensor(out).copy_meta_from(inputs)
        return out
