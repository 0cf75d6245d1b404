"""Test-time noise of the paper's robustness experiments: salt-and-pepper, Gaussian and speckle.

MONAI has ``RandGaussianNoise`` (additive) but no salt-and-pepper or speckle transform; these follow its design:
a ``RandomizableTransform`` drawing its noise in ``randomize`` from ``self.R`` (seeded by ``set_random_state``),
with a dictionary version sharing one draw across keys. :func:`make_test_noise` builds any of the three at a given
level with a fixed seed, as the robustness sweep needs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, RandGaussianNoise, RandomizableTransform
from monai.utils import convert_to_tensor

__all__ = [
    "TEST_NOISE_KINDS",
    "RandSaltPepperNoise",
    "RandSaltPepperNoised",
    "RandSpeckleNoise",
    "RandSpeckleNoised",
    "make_test_noise",
]


class RandSaltPepperNoise(RandomizableTransform):
    """Replace a random fraction ``amount`` of the voxels, half by ``salt`` (bright) and half by ``pepper`` (dark).

    Args:
        prob: probability of applying the transform.
        amount: expected fraction of voxels replaced (the noise level), in [0, 1].
        salt_vs_pepper: fraction of the replaced voxels set to ``salt``.
        salt: bright value; None uses the image maximum.
        pepper: dark value; None uses the image minimum.
    """

    backend = RandGaussianNoise.backend

    def __init__(
        self,
        prob: float = 0.1,
        amount: float = 0.05,
        salt_vs_pepper: float = 0.5,
        salt: float | None = None,
        pepper: float | None = None,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if not 0.0 <= amount <= 1.0 or not 0.0 <= salt_vs_pepper <= 1.0:
            raise ValueError(f"amount and salt_vs_pepper must lie in [0, 1], got {amount} and {salt_vs_pepper}.")
        self.amount = amount
        self.salt_vs_pepper = salt_vs_pepper
        self.salt = salt
        self.pepper = pepper
        self._replace: np.ndarray | None = None
        self._is_salt: np.ndarray | None = None

    def randomize(self, img: NdarrayOrTensor) -> None:
        super().randomize(None)
        if not self._do_transform:
            return
        self._replace = self.R.random_sample(img.shape) < self.amount
        self._is_salt = self.R.random_sample(img.shape) < self.salt_vs_pepper

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if randomize:
            self.randomize(img)
        if not self._do_transform:
            return img
        if self._replace is None or self._is_salt is None:
            raise RuntimeError("please call the `randomize()` function first.")
        salt = img.max() if self.salt is None else torch.as_tensor(self.salt, dtype=img.dtype)
        pepper = img.min() if self.pepper is None else torch.as_tensor(self.pepper, dtype=img.dtype)
        replace = torch.as_tensor(self._replace, device=img.device)
        is_salt = torch.as_tensor(self._is_salt, device=img.device)
        noisy = torch.where(is_salt, salt.to(img.device), pepper.to(img.device)).to(img.dtype)
        return torch.where(replace, noisy, img)


class RandSpeckleNoise(RandomizableTransform):
    """Multiplicative (speckle) noise: ``img + img * n`` with ``n ~ N(mean, std^2)`` per voxel.

    This is ``skimage.util.random_noise(mode="speckle")`` without its clipping (clip afterwards when needed).

    Args:
        prob: probability of applying the transform.
        mean: mean of ``n``.
        std: standard deviation of ``n`` (the noise level).
        dtype: output dtype.
    """

    backend = RandGaussianNoise.backend

    def __init__(self, prob: float = 0.1, mean: float = 0.0, std: float = 0.1, dtype=np.float32) -> None:
        RandomizableTransform.__init__(self, prob)
        if std < 0:
            raise ValueError(f"std must be >= 0, got {std}.")
        self.mean = mean
        self.std = std
        self.dtype = dtype
        self.noise: np.ndarray | None = None

    def randomize(self, img: NdarrayOrTensor) -> None:
        super().randomize(None)
        if not self._do_transform:
            return
        self.noise = self.R.normal(self.mean, self.std, size=img.shape).astype(self.dtype)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if randomize:
            self.randomize(img)
        if not self._do_transform:
            return img
        if self.noise is None:
            raise RuntimeError("please call the `randomize()` function first.")
        noise = torch.as_tensor(self.noise, device=img.device)
        img = img.to(noise.dtype)
        return img + img * noise


class _SharedDrawd(RandomizableTransform, MapTransform):
    """Dictionary wrapper: one draw of ``self.transform`` (from the first key) applied to every key."""

    def __init__(self, keys: KeysCollection, prob: float, transform: RandomizableTransform, allow_missing_keys: bool):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.transform = transform

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict:
        d = dict(data)
        self.randomize(None)
        first_key = self.first_key(d)
        if not self._do_transform or first_key == ():
            for key in self.key_iterator(d):
                d[key] = convert_to_tensor(d[key], track_meta=get_track_meta())
            return d
        self.transform.randomize(d[first_key])
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], randomize=False)
        return d


class RandSaltPepperNoised(_SharedDrawd):
    """Dictionary version of :class:`RandSaltPepperNoise`; all keys share one draw (same shapes expected)."""

    backend = RandSaltPepperNoise.backend

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        amount: float = 0.05,
        salt_vs_pepper: float = 0.5,
        salt: float | None = None,
        pepper: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, RandSaltPepperNoise(1.0, amount, salt_vs_pepper, salt, pepper), allow_missing_keys)


class RandSpeckleNoised(_SharedDrawd):
    """Dictionary version of :class:`RandSpeckleNoise`; all keys share one draw (same shapes expected)."""

    backend = RandSpeckleNoise.backend

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        mean: float = 0.0,
        std: float = 0.1,
        dtype=np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, prob, RandSpeckleNoise(1.0, mean, std, dtype), allow_missing_keys)


#: noise kind -> (transform class, name of its level argument); Gaussian reuses MONAI's ``RandGaussianNoise``.
TEST_NOISE_KINDS = {
    "salt_pepper": (RandSaltPepperNoise, "amount"),
    "gaussian": (RandGaussianNoise, "std"),
    "speckle": (RandSpeckleNoise, "std"),
}


def make_test_noise(kind: str, level: float, seed: int = 0) -> RandomizableTransform:
    """An always-applied noise transform of the robustness sweep, seeded.

    Args:
        kind: ``"salt_pepper"`` (level = fraction of voxels replaced), ``"gaussian"`` (level = standard deviation
            of additive noise, fixed, not sampled) or ``"speckle"`` (level = standard deviation of the
            multiplicative noise).
        level: the noise level; 0 gives the identity.
        seed: random seed of the transform.
    """
    if kind not in TEST_NOISE_KINDS:
        raise ValueError(f"Unknown noise kind {kind!r}; expected one of {sorted(TEST_NOISE_KINDS)}.")
    cls, level_arg = TEST_NOISE_KINDS[kind]
    kwargs = {"prob": 1.0, level_arg: float(level)}
    if cls is RandGaussianNoise:
        kwargs["sample_std"] = False
    transform = cls(**kwargs)
    transform.set_random_state(seed)
    return transform
