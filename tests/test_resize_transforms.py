"""SmoothInverseResized: MONAI's area downsampling forward, a linear (not block-copying) inverse."""

import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, Resized

from monai_hyperconv.transforms import SmoothInverseResized


def _round_trip(transform_class, image):
    forward = Compose([transform_class(keys="image", spatial_size=(16, 16, -1), mode="area")])
    out = forward({"image": image})
    data = {"image": out["image"], "pred": out["image"].clone()}
    return out["image"], Invertd(keys="pred", transform=forward, orig_keys="image", nearest_interp=False)(data)["pred"]


def test_forward_is_monai_area_resize_and_inverse_interpolates():
    ramp = torch.linspace(0, 1, 64).view(1, 64, 1, 1).expand(1, 64, 64, 3)
    image = MetaTensor(ramp.clone())
    small_monai, back_monai = _round_trip(Resized, image)
    small, back = _round_trip(SmoothInverseResized, MetaTensor(ramp.clone()))
    torch.testing.assert_close(small, small_monai, rtol=0, atol=0)  # the network sees exactly the same input
    assert back.shape == image.shape == back_monai.shape
    column = back[0, :, 0, 0]
    assert len(torch.unique(back_monai[0, :, 0, 0])) == 16  # area upsampling: 4-pixel blocks
    assert len(torch.unique(column)) > 50 and bool((column[1:] >= column[:-1] - 1e-6).all())  # a smooth ramp
    # closer to the original ramp than the blocks are (except at the borders, where linear extrapolation clamps)
    inner = slice(4, 60)
    assert (back[0, inner] - ramp[0, inner]).abs().max() < (back_monai[0, inner] - ramp[0, inner]).abs().max()
