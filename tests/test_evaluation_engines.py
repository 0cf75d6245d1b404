"""The evaluation outputs built on MONAI's SupervisedEvaluator: noise sweeps, the CS-MRI report, the example panel.

Each is checked against the same numbers computed by hand (a plain loop over the batches with the metric), so a
wrong wiring of the evaluator (noise not applied, post-processing skipped, metrics not reset per level, per-image
values out of order) fails.
"""

import os

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.metrics import DiceMetric, PSNRMetric, SSIMMetric
from monai.utils import ImageMetaKey

from monai_hyperconv.apps.csmri import CSMRITestReport, NoiseExamples, read_test_report
from monai_hyperconv.handlers import NoiseSweep, run_noise_sweep
from monai_hyperconv.handlers.noise_sweep import NoisyBatch
from monai_hyperconv.transforms.kspace import PoissonUndersample
from monai_hyperconv.transforms.noise import make_test_noise

pytestmark = pytest.mark.usefixtures("one_thread")


def _threshold_net():
    net = torch.nn.Module()
    net.forward = lambda x: x - 0.5
    return net


def _segmentation_loader():
    torch.manual_seed(0)
    label = (torch.rand(5, 1, 24, 24) > 0.6).float()
    items = [{"image": 0.2 + 0.6 * label[i], "label": label[i]} for i in range(5)]
    return DataLoader(Dataset(items), batch_size=2)  # batches of 2, 2, 1: the metric must accumulate over all


def _hand_sweep(net, loader, noises, post_pred, seed=0):
    rows = []
    for kind, levels in noises.items():
        for level in levels:
            noise, metric = make_test_noise(kind, level, seed), DiceMetric()
            for batch in loader:
                metric(y_pred=post_pred(net(noise(batch["image"]))), y=batch["label"])
            rows.append((kind, level, float(metric.aggregate().mean())))
    return rows


def test_sweep_evaluator_matches_a_hand_loop():
    loader, net = _segmentation_loader(), _threshold_net()
    noises = {"salt_pepper": [0.0, 0.2], "gaussian": [0.0, 0.3], "speckle": [1.0]}
    post = lambda x: (x > 0).float()
    rows = run_noise_sweep(net, loader, noises, DiceMetric(), post_pred=post)
    expected = _hand_sweep(net, loader, noises, post)
    assert [r[:2] for r in rows] == [r[:2] for r in expected]
    assert [r[2] for r in rows] == pytest.approx([r[2] for r in expected], abs=1e-6)
    assert rows[0][2] == pytest.approx(1.0) and rows[1][2] < 0.95  # the noise reached the inputs
    # a plain list of batches works too (no DataLoader: the evaluator is told its length)
    assert run_noise_sweep(net, list(loader), noises, DiceMetric(), post_pred=post) == rows


def test_noisy_batch_adds_noise_to_the_chosen_key():
    batch = {"image": torch.zeros(2, 1, 4, 4), "label": torch.ones(2, 1, 4, 4)}
    inputs, targets = NoisyBatch(lambda x: x + 3, image_key="label")(batch, torch.device("cpu"))
    assert torch.equal(inputs, torch.full((2, 1, 4, 4), 4.0)) and torch.equal(targets, batch["label"])


def test_disabled_sweep_writes_nothing_and_bad_flag_is_named(tmp_path):
    loader = _segmentation_loader()
    sweep = NoiseSweep(_threshold_net(), loader, {"gaussian": [0.0]}, DiceMetric(), str(tmp_path), enabled="false")
    assert sweep.run() == [] and os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="run_noise_sweep"):
        NoiseSweep(_threshold_net(), loader, {"gaussian": [0.0]}, DiceMetric(), str(tmp_path), enabled="maybe")


def _mri_loader(n=5, size=32):
    rng = np.random.default_rng(1)
    items = []
    for i in range(n):
        meta = {ImageMetaKey.FILENAME_OR_OBJ: f"/data/sub{i}/t1.nii.gz", ImageMetaKey.PATCH_INDEX: 10 + i}
        label = MetaTensor(rng.uniform(0, 1, (1, size, size)).astype(np.float32), meta=meta)
        items.append({"image": PoissonUndersample()(label), "label": label})
    return DataLoader(Dataset(items), batch_size=2), items


def test_csmri_report_matches_per_image_metrics_by_hand(tmp_path):
    loader, items = _mri_loader()
    net = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    torch.nn.init.constant_(net.weight, 1 / 9)
    report = CSMRITestReport(net, loader, str(tmp_path), model_name="smooth", root_dir="/data")
    rows = report.run()
    psnr, ssim = PSNRMetric(max_val=1.0, reduction="none"), SSIMMetric(2, data_range=1.0, reduction="none")
    with torch.no_grad():
        for row, item in zip(rows, items):
            x, y = item["image"][None].as_tensor(), item["label"][None].as_tensor()
            pred = net(x)
            expected = [float(m(y_pred=p, y=y).reshape(-1)[0]) for p in (pred, x) for m in (psnr, ssim)]
            assert list(row[2:]) == pytest.approx(expected, rel=1e-5)
    assert [r[1] for r in rows] == [f"sub{i}/t1.nii.gz_z{10 + i}" for i in range(5)]  # names follow the images
    stored = read_test_report(report.csv_path)
    assert [r["image"] for r in stored] == [r[1] for r in rows]
    assert [r["psnr"] for r in stored] == pytest.approx([r[2] for r in rows], abs=1e-5)
    assert os.path.getsize(report.png_path) > 0


def test_noise_examples_panel_and_disabled(tmp_path):
    _, items = _mri_loader(2)
    panel = NoiseExamples(torch.nn.Identity(), items, [0.0, 0.1], str(tmp_path), model_name="identity")
    assert panel.run() == os.path.join(str(tmp_path), "noise_examples_identity.png")
    assert os.path.getsize(panel.png_path) > 1000
    off = NoiseExamples(torch.nn.Identity(), items, [0.0], str(tmp_path / "off"), enabled=False)
    assert off.run() is None and not os.path.exists(tmp_path / "off")
