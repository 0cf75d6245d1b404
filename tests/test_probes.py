"""Issue 24 probes that no other test module covers, on files these tests write: a settings upper bound, a resume
from another network's checkpoint, and (slow) the command-line exit status and last line of a diverged run."""

import os
import subprocess
import sys

import pytest
import torch
from ignite.engine import Engine, Events

from monai_hyperconv.handlers import ResumableCheckpointer
from monai_hyperconv.networks import PaperUNet
from monai_hyperconv.utils import check_image_size, prepare_run

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


# run locks taken by the code under test are released after each test (conftest.py)
pytestmark = pytest.mark.usefixtures("release_run_locks")


def test_image_size_4096_is_refused_with_the_figure(tmp_path):
    with pytest.raises(ValueError, match=r"image_size 4096 makes 4096 x 4096 = 16,777,216 voxels .* 2\.0 GiB"):
        check_image_size(4096)
    with pytest.raises(ValueError, match=r"image_size \[512, 512, 512\] makes 512 x 512 x 512 .* at most 4,194,304"):
        check_image_size([512, 512, 512])
    check_image_size(2048)
    check_image_size([160, 160, 160])
    net = PaperUNet(spatial_dims=3, in_channels=1, out_channels=1, channels=4, conv="regular", kernel_size=3)
    with pytest.raises(ValueError, match=r"slice_size 256 makes 256 x 256 x 256"):  # one int: every dimension
        prepare_run(tmp_path / "models", network=net, image_size=256, size_name="slice_size")
    assert not (tmp_path / "models").exists()


def _checkpointer(folder, network, resume=False):
    opt = torch.optim.SGD(network.parameters(), lr=0.1)
    trainer, validator = Engine(lambda e, b: None), Engine(lambda e, b: None)

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine):
        validator.state.iteration += 1
        validator.state.metrics = {"val_loss": 1.0}

    ckpt = ResumableCheckpointer(
        str(folder), {"network": network, "optimizer": opt}, validator=validator, resume=resume
    )
    ckpt.attach(trainer)
    return trainer


def test_resume_from_another_networks_checkpoint_ends_in_one_short_line(tmp_path, monkeypatch):
    """Another bundle's checkpoint_last.pt: torch's message listed every parameter (9,741 characters)."""
    from monai_hyperconv.handlers import checkpoint_loader
    from monai_hyperconv.utils.errors import summary_line

    monkeypatch.setattr(checkpoint_loader, "DEFAULT_CONFIG_DIR", tmp_path / "no_fragments")  # fast: nothing to match
    _checkpointer(tmp_path, PaperUNet(2, 4, 1, channels=4)).run([0], max_epochs=1)  # an MS-like 4-contrast network
    before = (tmp_path / "checkpoint_last.pt").read_bytes()
    with pytest.raises(RuntimeError) as e:
        _checkpointer(tmp_path, PaperUNet(2, 1, 1, channels=4), resume=True).run([0], max_epochs=2)
    line = summary_line(e.value)
    assert len(line) < 600, line
    assert "Cannot resume: The checkpoint" in line and "checkpoint_last.pt does not fit" in line
    assert "(4, 4, 3, 3) vs (4, 1, 3, 3)" in line and "start without --resume" in line
    assert (tmp_path / "checkpoint_last.pt").read_bytes() == before  # nothing lost


@pytest.mark.slow
@pytest.mark.parametrize("bundle", ["csmri_recon", "liver_lesion_seg"])
def test_cli_diverged_run_exits_1_naming_the_learning_rate(tmp_path, bundle):
    """``python -m monai.bundle run`` at --learning_rate 1e12: exit 1, the last line names the setting, and any
    model.pt left holds finite weights."""
    from helpers import TINY_BUNDLE_OVERRIDES

    configs = os.path.join(REPO, "bundles", bundle, "configs")
    args = {**TINY_BUNDLE_OVERRIDES[bundle], "learning_rate": "1e12", "max_epochs": 3, "network_def#channels": 4}
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", os.path.join(configs, "train.yaml")]
    cmd += ["--meta_file", os.path.join(configs, "metadata.json"), "--bundle_root", str(tmp_path / "b")]
    cmd += ["--dataset_dir", str(tmp_path / "data")]
    for k, v in args.items():
        cmd += [f"--{k}", repr(v).replace(" ", "") if isinstance(v, (dict, list)) else str(v)]
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert last.startswith("monai_hyperconv error: TrainingDivergedError:") and "learning rate 1e+12" in last, last
    model = tmp_path / "b" / "models" / "model.pt"
    if model.exists():
        state = torch.load(model, weights_only=True)
        assert all(torch.isfinite(v).all() for v in state.values())
