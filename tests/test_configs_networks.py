"""configs/networks/*.yaml: each defines only network_def, builds through MONAI's ConfigParser merged on top of a
bundle config, runs a 64×64 batch, takes the Table 2/4 overrides, and matches the paper's parameter counts and
receptive fields within 5%."""

from __future__ import annotations

import pytest
import torch
import yaml
from monai.bundle import ConfigParser

from monai_hyperconv.layers import HyperConvNd
from monai_hyperconv.networks import receptive_field
from monai_hyperconv.networks.summary import (
    DEFAULT_CONFIG_DIR,
    PAPER_FIGURES,
    network_from_fragment,
    summary_rows,
    summary_table,
)

FRAGMENTS = sorted(DEFAULT_CONFIG_DIR.glob("*.yaml"))
REQUIRED = {
    "unet_3x3", "unet_5x5", "dilated_unet_3x3", "nonlocal_unet_3x3", "hyper_unet_5x5", "nonlocal_hyper_unet_5x5",
    "flat_dilated_cnn", "flat_hyper_cnn", "hyperseg", "mb_unet_3x3", "mb_unet_5x5", "dilated_mb_unet_3x3",
    "nonlocal_mb_unet_3x3", "hyper_mb_unet_5x5", "nonlocal_hyper_mb_unet_5x5",
}  # fmt: skip

BUNDLE = """
spatial_dims: 2
in_channels: {in_channels}
out_channels: 3
image_size: [64, 64]
network_def:
  _target_: torch.nn.Identity
network: "$@network_def.to('cpu')"
"""


pytestmark = pytest.mark.usefixtures("one_thread_no_onednn")


def _small(fragment: dict) -> dict:
    """Overrides that shrink a fragment's network to a few channels (the shapes, not the counts, are under test)."""
    target = fragment["network_def"]["_target_"]
    if target.endswith("CNN"):
        return {"network_def#channels": [2, 2, 4, 4, 4, 2, 2]}
    return {"network_def#channels": 2 if "NonLocal" not in target else 4}


def test_required_fragments_exist():
    assert REQUIRED <= {f.stem for f in FRAGMENTS}


@pytest.mark.parametrize("path", FRAGMENTS, ids=[f.stem for f in FRAGMENTS])
def test_fragment_builds_in_a_bundle_and_runs(path, tmp_path):
    fragment = yaml.safe_load(path.read_text())
    assert set(fragment) == {"network_def"}, f"{path.name} must define only network_def"
    net_def = fragment["network_def"]
    assert net_def["_target_"].startswith("monai_hyperconv.networks."), "use full dotted targets"
    assert {net_def[k] for k in ("spatial_dims", "in_channels", "out_channels")} == {
        "@spatial_dims", "@in_channels", "@out_channels"
    }  # fmt: skip
    in_channels = 4 if "mb_" in path.stem else 1  # the MS bundle's four contrasts feed the multi-branch nets
    bundle = tmp_path / "train.yaml"
    bundle.write_text(BUNDLE.format(in_channels=in_channels))
    parser = ConfigParser()
    parser.read_config([str(bundle), str(path)])  # as --config_file "['train.yaml', '<fragment>']"
    channels = _small(fragment)
    if "non_local" in net_def:
        channels = {"network_def#channels": 4}  # group norm of the attention needs a few channels
    for key, value in channels.items():
        parser[key] = value
    net = parser.get_parsed_content("network")
    assert type(net).__name__ == net_def["_target_"].rsplit(".", 1)[1]
    y = net(torch.randn(2, in_channels, 64, 64))
    assert y.shape == (2, 3, 64, 64) and torch.isfinite(y).all()


def test_hyper_fragment_takes_table_overrides():
    path = DEFAULT_CONFIG_DIR / "hyper_unet_5x5.yaml"
    overrides = {"network_def#kernel_size": 7, "network_def#hidden_channels": [16, 16, 8], "network_def#channels": 2}
    net = network_from_fragment(path, overrides=overrides)
    hyper = [m for m in net.modules() if isinstance(m, HyperConvNd)]
    assert len(hyper) == 17 and all(m.kernel_size == (7, 7) and m.hidden_channels == (16, 16, 8) for m in hyper)
    assert receptive_field(net) == 188
    for name in ("hyper_mb_unet_5x5", "flat_hyper_cnn"):
        net = network_from_fragment(DEFAULT_CONFIG_DIR / f"{name}.yaml", in_channels=2, overrides={
            "network_def#hidden_channels": [16, 16, 2], "network_def#channels": 2 if "mb" in name else [2] * 7,
        })  # fmt: skip
        assert {m.hidden_channels for m in net.modules() if isinstance(m, HyperConvNd)} == {(16, 16, 2)}


def test_parameter_counts_and_receptive_fields_match_the_paper():
    figures = [f for f in PAPER_FIGURES if f[3] is not None]  # Table 1 and the Table 2/4 grid
    rows = summary_rows(figures=figures)
    assert len(rows) == 18
    for row in rows:
        assert abs(row["difference"]) < 0.05, f"{row['model']}: {row['parameters']} vs {row['paper_parameters_m']}M"
        assert row["receptive_field"] == row["paper_receptive_field"], row["model"]
    by_model = {r["model"]: r["parameters"] for r in rows}
    # Hyper-UNet parameters depend on N_L only, never on the kernel size
    for n in (2, 4, 8):
        assert len({by_model[f"hyper_unet_5x5 (k={k}, N_L={n})"] for k in (3, 5, 7)}) == 1
    table = summary_table(rows)
    assert table.splitlines()[0].startswith("| model |") and len(table.splitlines()) == 20
    assert "| unet_3x3 | 1 | 2.143M | 2.1M | +2.1% | 68 px | 68 px |" in table


def test_fragment_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        network_from_fragment(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("net: 1\n")
    with pytest.raises(KeyError, match="bad.yaml.*network_def"):
        network_from_fragment(bad)


@pytest.mark.slow
def test_summary_command_runs_without_the_runpy_warning():
    """Importing the package must not import the module ``python -m`` then runs (runpy warns of that)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-W", "error::RuntimeWarning", "-m", "monai_hyperconv.networks.summary"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| hyper_unet_5x5 | 1 |" in proc.stdout
