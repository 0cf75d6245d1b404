"""The cost model behind ``fft="auto"`` (monai_hyperconv.layers.path_cost) and the order of the path-choice rules."""

from __future__ import annotations

import math

import pytest
import torch

from monai_hyperconv import HyperConv2d
from monai_hyperconv.layers import path_choice, path_cost
from monai_hyperconv.layers.fft_conv import basis_fft_plan
from monai_hyperconv.layers.path_cost import PathCost, fft_is_cheaper, path_features, predicted_seconds


def test_work_counts_of_one_call():
    plan = basis_fft_plan((16, 16), ((2, 2), (2, 2)), (5, 5))
    direct, fft = path_features(2, 3, 4, 1, (5, 5), 5, plan)
    outputs = 2 * 4 * 16 * 16
    assert direct == (outputs * 3 * 25, 2 * 3 * 16 * 16 * 25, outputs, 1.0)
    points = math.prod(plan.n_fft)
    freqs = plan.n_fft[0] * (plan.n_fft[1] // 2 + 1)
    assert plan.n_fft == (18, 18)  # 16 + 2: zero padding is free of wrap-around at n + before
    assert fft == (2 * 7 * points * math.log2(points), 2 * 4 * 3 * 5 * freqs, 2 * 3 * 5 * freqs, 1.0)


def test_groups_divide_the_multiply_adds():
    plan = basis_fft_plan((16, 16), ((1, 1), (1, 1)), (3, 3))
    (dense, *_), (_, dense_mix, *_) = path_features(1, 4, 4, 1, (3, 3), 5, plan)
    (grouped, *_), (_, grouped_mix, *_) = path_features(1, 4, 4, 2, (3, 3), 5, plan)
    assert grouped * 2 == dense and grouped_mix * 2 == dense_mix


@pytest.fixture
def model(monkeypatch):
    """A made-up cost model for CPU 2D: direct costs its multiply-adds only, the FFT path a constant 1e-3 s."""
    table = {"cpu": {p: {2: PathCost((1e-9, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1e-3))} for p in ("train", "eval")}}
    monkeypatch.setattr(path_cost, "PATH_COST_MODEL", table)
    return table


def test_the_model_decides_from_the_shape_not_only_the_kernel(model):
    layer = HyperConv2d(4, 4, 7)  # 49 taps: 4 * 4 * 49 = 784 multiply-adds per output pixel
    small, large = torch.randn(1, 4, 16, 16), torch.randn(4, 4, 64, 64)  # 0.2 ms and 12.8 ms of direct work
    assert layer._chooses_fft(small) is False
    assert layer._chooses_fft(large) is True
    direct, fft = predicted_seconds(model["cpu"]["train"][2], path_features(4, 4, 4, 1, (7, 7), 5, _plan(layer, large)))
    assert direct == pytest.approx(4 * 4 * 4 * 64 * 64 * 49 * 1e-9) and fft == pytest.approx(1e-3)


def _plan(layer, x):
    return basis_fft_plan(x.shape[2:], layer.padding_pairs, layer.kernel_size)


def test_no_model_for_the_device_or_dims_means_thresholds(model, monkeypatch):
    from monai_hyperconv.layers.fft_conv import FFT_MIN_KERNEL_SIZE

    features_2d = path_features(1, 1, 1, 1, (3, 3), 5, basis_fft_plan((8, 8), ((1, 1),) * 2, (3, 3)))
    features_3d = path_features(1, 1, 1, 1, (3,) * 3, 5, basis_fft_plan((8,) * 3, ((1, 1),) * 3, (3,) * 3))
    assert fft_is_cheaper("cuda", 2, True, features_2d) is None and fft_is_cheaper("cpu", 3, True, features_3d) is None
    monkeypatch.setattr(path_cost, "PATH_COST_MODEL", {})
    threshold = FFT_MIN_KERNEL_SIZE["cpu"]["train"][2]
    x = torch.randn(4, 4, 64, 64)
    assert HyperConv2d(4, 4, threshold - 2)._chooses_fft(x) is False
    assert HyperConv2d(4, 4, threshold)._chooses_fft(x) is True


def test_a_measured_choice_overrides_the_model(model, monkeypatch):
    monkeypatch.setattr(path_choice, "benchmark", True)
    monkeypatch.setattr(path_choice, "_time_path", lambda layer, x, fft, training: 2.0 if fft else 1.0)
    path_choice.clear_choices()
    try:
        assert HyperConv2d(4, 4, 7)._chooses_fft(torch.randn(4, 4, 64, 64)) is False  # the model would pick FFT
    finally:
        path_choice.clear_choices()


def test_strided_and_too_large_kernels_run_direct(model):
    x = torch.randn(4, 4, 64, 64)
    assert HyperConv2d(4, 4, 7, stride=2)._chooses_fft(x) is False
    valid = HyperConv2d(4, 4, 9, padding="valid")
    assert path_choice.modelled_choice(valid, torch.randn(1, 4, 5, 5), True) is None  # no plan: torch raises
    with pytest.raises(RuntimeError):
        valid(torch.randn(1, 4, 5, 5))


def test_non_zero_padding_modes_are_modelled_on_the_padded_input(model):
    layer = HyperConv2d(4, 4, 7, padding_mode="reflect")
    x = torch.randn(4, 4, 64, 64)
    assert layer._chooses_fft(x) is True
    chosen = layer(x)
    layer.fft = False
    torch.testing.assert_close(chosen, layer(x), rtol=1e-4, atol=1e-4)


def _calibration_module():
    import importlib
    import os
    import sys

    benchmarks = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        return importlib.import_module("path_cost_calibration")
    finally:
        sys.path.remove(benchmarks)


def test_calibration_fit_recovers_known_coefficients_and_keeps_them_non_negative():
    import numpy as np

    fit = _calibration_module().nonnegative_fit
    rng = np.random.default_rng(0)
    features = rng.uniform(1, 1e6, size=(40, 3))
    features[:, 2] = 1.0
    truth = np.array([2e-9, 5e-10, 1e-4])
    np.testing.assert_allclose(fit(features, features @ truth), truth, rtol=1e-6)
    # a term that only hurts the fit (its least-squares coefficient is negative) is dropped, not made negative
    seconds = features[:, :1] @ truth[:1] + 1e-4 - 1e-12 * features[:, 1]
    assert (fit(features, seconds) >= 0).all()


def test_calibration_refits_saved_measurements(tmp_path):
    calibration = _calibration_module()
    rows = []
    for k in (3, 9, 31):
        for pass_ in ("train", "eval"):
            row = {"dims": 2, "pass": pass_, "shape": [2, 4, 4, 32, k], "direct": 1e-4 * k * k, "fft": 2e-3}
            rows.append(calibration.with_features(row))
    model = calibration.fit(rows)
    cost = model["train"][2]
    assert all(c >= 0 for c in cost.direct + cost.fft)
    direct, fft = predicted_seconds(cost, rows[-2]["features"])  # k = 31, train: direct 0.096 s against 2 ms
    assert direct > fft
