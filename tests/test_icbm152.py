"""ICBM152 template loading (installed nilearn files) and the seeded smooth random fields."""

import numpy as np
import pytest

from monai_hyperconv.apps.icbm152 import (
    icbm152_path,
    load_icbm152,
    random_bias_field,
    random_deform,
    random_displacement_field,
    random_smooth_field,
    warp,
)


def test_template_matches_nilearn_loaders():
    datasets = pytest.importorskip("nilearn.datasets")
    tpl = load_icbm152(1)
    assert tpl.shape == (197, 233, 189)
    ref = datasets.load_mni152_template(resolution=1)
    np.testing.assert_allclose(tpl.t1, ref.get_fdata(), atol=1e-6)
    np.testing.assert_allclose(tpl.affine, ref.affine)
    # GM / WM equal nilearn's maps inside the brain (outside, this loader zeroes them)
    gm_ref = datasets.load_mni152_gm_template(resolution=1).get_fdata()
    inside = tpl.brain_mask > 0
    np.testing.assert_allclose(tpl.gm[inside], gm_ref[inside], atol=1e-6)


def test_tissue_maps_are_probabilities_of_the_brain():
    tpl = load_icbm152(1)
    total = tpl.gm + tpl.wm + tpl.csf
    assert total.max() <= 1 + 1e-6 and min(tpl.gm.min(), tpl.wm.min(), tpl.csf.min()) >= 0
    outside = tpl.brain_mask == 0
    assert total[outside].max() == 0
    # inside the skull-stripped brain the three classes account for every voxel
    np.testing.assert_allclose(total[~outside], 1.0, atol=1e-6)
    # T1 contrast: WM brighter than GM brighter than CSF
    t1 = tpl.t1
    assert t1[tpl.wm > 0.9].mean() > t1[tpl.gm > 0.9].mean() > t1[tpl.csf > 0.9].mean()
    with pytest.raises(ValueError):
        tpl.t1[0, 0, 0] = 1.0  # cached arrays are read-only


def test_downsampled_template_keeps_world_positions():
    full, half = load_icbm152(1), load_icbm152(2)
    assert half.shape == (98, 116, 94) and half.voxel_size == (2.0, 2.0, 2.0)
    np.testing.assert_allclose(half.wm[10, 20, 30], full.wm[20:22, 40:42, 60:62].mean(), atol=1e-6)
    # voxel (10, 20, 30) of the 2 mm grid is the centre of the 1 mm voxels 20..21, 40..41, 60..61
    centre_2mm = half.affine @ [10, 20, 30, 1]
    centre_1mm = full.affine @ [20.5, 40.5, 60.5, 1]
    np.testing.assert_allclose(centre_2mm, centre_1mm)
    with pytest.raises(ValueError):
        load_icbm152(1.5)


def test_path_errors_name_the_map():
    assert icbm152_path("wm").name.endswith("wm_tal_nlin_sym_09a_converted.nii.gz")
    with pytest.raises(KeyError, match="csf"):
        icbm152_path("csf")


@pytest.mark.parametrize("shape", [(40, 48), (20, 24, 22)])
def test_fields_are_seeded_bounded_and_smooth(shape):
    a = random_displacement_field(shape, seed=3, max_displacement=2.5, control_spacing=8)
    b = random_displacement_field(shape, seed=3, max_displacement=2.5, control_spacing=8)
    c = random_displacement_field(shape, seed=4, max_displacement=2.5, control_spacing=8)
    assert a.shape == (len(shape), *shape) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(np.abs(a).max(), 2.5, rtol=1e-5)
    # smooth: neighbouring voxels move by a small fraction of the peak, unlike white noise
    for axis in range(1, a.ndim):
        assert np.abs(np.diff(a, axis=axis)).max() < 0.5 * 2.5
    noise = np.random.default_rng(0).standard_normal(shape)
    field = random_smooth_field(shape, seed=0, control_spacing=8)[0]
    assert np.abs(np.diff(field, axis=0)).mean() < 0.25 * np.abs(np.diff(noise, axis=0)).mean()


def test_warp_identity_shift_and_labels():
    rng = np.random.default_rng(0)
    image = rng.random((2, 12, 14, 10)).astype(np.float32)
    zero = np.zeros((3, 12, 14, 10), np.float32)
    np.testing.assert_allclose(warp(image, zero), image, atol=1e-5)
    # a constant displacement of +1 voxel along axis 1 samples the next voxel: out[:, i] = in[:, i + 1]
    shift = zero.copy()
    shift[1] = 1.0
    out = warp(image, shift)
    np.testing.assert_allclose(out[:, :, :-1], image[:, :, 1:], atol=1e-5)
    assert np.all(out[:, :, -1] == 0)  # zeros from outside the grid
    labels = rng.integers(0, 3, (12, 14, 10)).astype(np.float32)
    moved = warp(labels, random_displacement_field(labels.shape, 1, 2.0, 6), mode="nearest")
    assert set(np.unique(moved)) <= {0.0, 1.0, 2.0}
    with pytest.raises(ValueError, match="grid"):
        warp(image, np.zeros((3, 12, 14, 9), np.float32))


def test_random_deform_applies_one_field_to_all():
    tpl = load_icbm152(2)
    t1, wm = np.array(tpl.t1), np.array(tpl.wm)
    out = random_deform([t1, wm, t1], seed=7, max_displacement=3.0, modes=["bilinear", "bilinear", "nearest"])
    np.testing.assert_array_equal(random_deform([t1], seed=7, max_displacement=3.0)[0], out[0])
    assert not np.allclose(out[0], t1)
    assert 0 <= out[1].min() and out[1].max() <= 1 + 1e-6  # probabilities stay probabilities
    # a deformation moves the anatomy but keeps its volume roughly (small smooth displacements)
    assert abs(out[1].sum() / wm.sum() - 1) < 0.05


def test_bias_field_range_and_seed():
    field = random_bias_field((30, 34, 28), seed=5, strength=0.3)
    assert field.shape == (30, 34, 28)
    assert np.exp(-0.3) - 1e-5 <= field.min() and field.max() <= np.exp(0.3) + 1e-5
    np.testing.assert_allclose(np.abs(np.log(field)).max(), 0.3, rtol=1e-4)
    np.testing.assert_array_equal(field, random_bias_field((30, 34, 28), seed=5, strength=0.3))
    np.testing.assert_array_equal(random_bias_field((8, 8), seed=1, strength=0.0), np.ones((8, 8), np.float32))
