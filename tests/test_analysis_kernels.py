"""Kernel analysis: the Laplacian smoothness measure, checkpoint loading, the CLI outputs and recapitulation."""

import os

import matplotlib.image
import pytest
import torch
from torch import nn

from monai_hyperconv import HyperConv2d, HyperConvNd, hyperize
from monai_hyperconv.analysis import (
    analyze_kernels,
    analyze_recapitulation,
    build_bundle_network,
    conv_kernels,
    extract_state_dict,
    fit_kernel_net,
    kernel_laplacian,
    layer_smoothness,
    load_bundle_network,
    mean_abs_laplacian,
    recapitulate,
)
from monai_hyperconv.analysis.__main__ import run_analysis_cli as analysis_main
from monai_hyperconv.analysis.reports import read_csv
from monai_hyperconv.layers.kernel_net import CoordinateKernelNet, kernel_grid

pytestmark = pytest.mark.usefixtures("one_thread")


def _checkerboard(size, dims):
    index = torch.stack(torch.meshgrid(*[torch.arange(size)] * dims, indexing="ij")).sum(0)
    return (index.remainder(2) * 2 - 1).double()


# -- the measure ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_constant_and_linear_kernels_score_exactly_zero(dims):
    constant = torch.full((3, *[5] * dims), 0.7, dtype=torch.float64)
    assert torch.equal(mean_abs_laplacian(constant, dims), torch.zeros(3, dtype=torch.float64))
    ramp = torch.stack(torch.meshgrid(*[torch.arange(5.0)] * dims, indexing="ij")).sum(0).double()
    assert float(mean_abs_laplacian(ramp[None] * 3 - 2, dims)) == 0.0


@pytest.mark.parametrize("dims, expected", [(1, 4.0), (2, 8.0), (3, 12.0)])
def test_checkerboard_scores_2_per_neighbour(dims, expected):
    # every interior tap has 2*dims neighbours of the opposite sign: |sum| = 4*dims for a +-1 checkerboard
    board = _checkerboard(5, dims)[None]
    assert float(mean_abs_laplacian(board, dims)) == pytest.approx(expected)
    assert float(mean_abs_laplacian(board, dims, relative=True)) == pytest.approx(expected)
    # a smooth bump of the same amplitude is far smoother
    coords = torch.stack(torch.meshgrid(*[torch.arange(5.0) - 2] * dims, indexing="ij"))
    bump = torch.exp(-(coords**2).sum(0) / 8).double()[None]
    assert float(mean_abs_laplacian(bump, dims)) < 0.2 * expected / 4


def test_laplacian_stencil_on_a_delta():
    delta3 = torch.zeros(1, 3, 3, dtype=torch.float64)
    delta3[0, 1, 1] = 1
    assert kernel_laplacian(delta3, 2).tolist() == [[[-4.0]]]
    delta5 = torch.zeros(1, 5, 5, dtype=torch.float64)
    delta5[0, 2, 2] = 1
    lap = kernel_laplacian(delta5, 2)[0]
    assert lap.tolist() == [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]
    assert float(mean_abs_laplacian(delta5, 2)) == pytest.approx(8 / 9)


def test_short_axes_are_left_out_and_1x1_has_no_laplacian():
    k = torch.tensor([[[1.0], [3.0], [2.0]]])  # 3x1: only the long axis is differenced
    assert kernel_laplacian(k, 2).tolist() == [[[-3.0]]]
    with pytest.raises(ValueError, match="no second derivative"):
        kernel_laplacian(torch.ones(2, 1, 1), 2)
    with pytest.raises(ValueError, match="spatial axes"):
        kernel_laplacian(torch.ones(5, 5), 2)


def test_layer_smoothness_covers_regular_hyper_and_transposed_and_skips_1x1():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        HyperConv2d(4, 4, 5),
        nn.ConvTranspose2d(4, 2, 3),
        nn.Conv2d(2, 2, 1),
    )
    rows = layer_smoothness(model)
    assert [(r["layer"], r["kind"], r["kernel_size"]) for r in rows] == [
        ("0", "regular", "3x3"),
        ("1", "hyper", "5x5"),
        ("2", "transposed", "3x3"),
    ]
    assert rows[1]["n_kernels"] == 16
    hyper_kernels = model[1].kernel().detach().reshape(16, 5, 5).double()
    assert rows[1]["mean_abs_laplacian"] == pytest.approx(float(mean_abs_laplacian(hyper_kernels, 2).mean()))


def test_fresh_hyper_kernels_are_smoother_than_fresh_regular_kernels():
    # the kernel network's MLP is continuous in the coordinates; i.i.d. regular init is not
    regular = nn.Conv2d(16, 16, 5)
    hyper = hyperize(nn.Sequential(nn.Conv2d(16, 16, 5)))[0]
    r, h = layer_smoothness(regular)[0], layer_smoothness(hyper)[0]
    assert h["mean_abs_laplacian_rel"] < r["mean_abs_laplacian_rel"]


# -- checkpoint loading ----------------------------------------------------------------------------------------
UNET = (
    "monai.networks.nets.BasicUNet(spatial_dims=@spatial_dims, in_channels=1, out_channels=2, features=[2,2,4,4,8,2])"
)
TWO_CONVS = "torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))"


def _write_config(tmp_path, dims, hyper, net=UNET):
    """A bundle-like base config and a network fragment that swaps network_def, as the bundles use them."""
    network_def = f"$monai_hyperconv.hyperize({net}, kernel_size=5)" if hyper else f"${net}"
    base = tmp_path / "train.yaml"
    base.write_text(
        "imports: ['$import monai', '$import monai_hyperconv']\n"
        "spatial_dims: 2\n"
        "network_def: '$monai.networks.nets.BasicUNet(spatial_dims=@spatial_dims, in_channels=1, out_channels=2)'\n"
    )
    fragment = tmp_path / f"net_{'hyper' if hyper else 'regular'}.yaml"
    fragment.write_text(f"network_def: '{network_def}'\n")
    return [str(base), str(fragment)], {"spatial_dims": dims}


@pytest.mark.parametrize("dims, hyper", [(2, True), (2, False), (3, True), (3, False)])
def test_load_bundle_network_restores_trained_weights(tmp_path, dims, hyper):
    configs, override = _write_config(tmp_path, dims, hyper)
    trained = build_bundle_network(configs, **override)
    assert any(isinstance(m, HyperConvNd) for m in trained.modules()) == hyper
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p))  # "training": weights differ from any fresh init
    ckpt = tmp_path / "model.pt"
    torch.save(trained.state_dict(), ckpt)
    loaded = load_bundle_network(configs, ckpt, **override)
    for (name, a), b in zip(trained.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert not loaded.training
    # the kernels the analysis sees are the trained ones
    before = {c.name: c.weight for c in conv_kernels(trained)}
    after = {c.name: c.weight for c in conv_kernels(loaded)}
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k]) for k in before)


def test_checkpoint_formats_and_bad_checkpoints(tmp_path):
    configs, override = _write_config(tmp_path, 2, True)
    net = build_bundle_network(configs, **override)
    state = net.state_dict()
    ddp_state = {f"module.{k}": v for k, v in state.items()}
    wrapped = {"network": ddp_state, "optimizer": {"state": {}}, "trainer": {"epoch": 3}}
    assert extract_state_dict(wrapped).keys() == state.keys()
    path = tmp_path / "last.pt"
    torch.save(wrapped, path)
    load_bundle_network(configs, path, **override)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_bundle_network(configs, tmp_path / "missing.pt", **override)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_bundle_network([configs[0], str(tmp_path / "nope.yaml")], path)
    torch.save({"optimizer": {}}, tmp_path / "opt.pt")
    with pytest.raises(KeyError, match="opt.pt"):
        load_bundle_network(configs, tmp_path / "opt.pt", **override)
    regular, _ = _write_config(tmp_path, 2, False)
    with pytest.raises(RuntimeError, match="last.pt.*does not match"):
        load_bundle_network(regular, path, **override)  # hyper weights into the regular network
    (tmp_path / "garbled.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="garbled.pt"):
        load_bundle_network(configs, tmp_path / "garbled.pt", **override)


# -- the kernels command ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims, hyper", [(2, True), (3, False)])
def test_analyze_kernels_writes_smoothness_csv_and_grid_png(tmp_path, dims, hyper):
    configs, override = _write_config(tmp_path, dims, hyper)
    net = build_bundle_network(configs, **override)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    out = analyze_kernels(configs, str(tmp_path / "model.pt"), str(tmp_path / "out"), **override)
    rows = read_csv(out["csv"])
    expected = layer_smoothness(net)
    assert [r["layer"] for r in rows] == [r["layer"] for r in expected]
    assert {r["kind"] for r in rows} == {"hyper" if hyper else "regular"}
    for got, want in zip(rows, expected):
        assert float(got["mean_abs_laplacian"]) == pytest.approx(want["mean_abs_laplacian"])
    image = matplotlib.image.imread(out["png"])
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300


def test_cli_parses_a_config_list_and_overrides(tmp_path):
    configs, _ = _write_config(tmp_path, 2, False, net=TWO_CONVS)
    torch.save(build_bundle_network(configs).state_dict(), tmp_path / "model.pt")
    ckpt, out = str(tmp_path / "model.pt"), str(tmp_path / "cli")
    common = ["--config_file", str(configs), "--checkpoint", ckpt, "--output_dir", out]
    analysis_main(["kernels", *common, "--n_kernels", "4", "--spatial_dims", "2"])
    assert [r["layer"] for r in read_csv(tmp_path / "cli" / "kernels_smoothness.csv")] == ["0", "2"]
    assert os.path.isfile(tmp_path / "cli" / "kernels_grid.png")
    analysis_main(["recap", *common, "--n_ls", "[3,5]", "--steps", "5"])
    assert {r["n_l"] for r in read_csv(tmp_path / "cli" / "recapitulation.csv")} == {"3", "5"}


# -- recapitulation ---------------------------------------------------------------------------------------------
def test_fit_kernel_net_reduces_the_loss_and_recovers_a_hyper_kernel():
    grid = kernel_grid((5, 5))
    torch.manual_seed(1)
    source = CoordinateKernelNet(2, 8 * 4, (16, 16, 4))
    source.reset_parameters(grid, target_std=0.1)
    with torch.no_grad():
        target = source(grid).reshape(8, 4, 5, 5)
    fit = fit_kernel_net(target, (16, 16, 8), steps=300, learning_rate=1e-2)
    assert fit.fitted.shape == target.shape
    assert fit.final_loss < 0.05 * fit.losses[0]
    assert fit.final_loss / float(target.pow(2).mean()) < 0.05
    # more steps never end worse than the first steps' loss trend suggests: the loss fell overall
    assert min(fit.losses[-10:]) < min(fit.losses[:10])


def test_recapitulate_fits_each_regular_layer_for_each_n_l():
    model = nn.Sequential(nn.Conv2d(2, 4, 5), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 1, 1))
    model.append(hyperize(nn.Sequential(nn.Conv2d(1, 1, 3)))[0])  # hyper layers are not recapitulated
    rows, fits = recapitulate(model, n_ls=(2, 24), steps=100, keep_fits=True)
    assert [(r["layer"], r["n_l"]) for r in rows] == [("0", 2), ("0", 24), ("2", 2), ("2", 24)]
    for r in rows:
        assert r["final_loss"] < r["initial_loss"]
        assert 0 <= r["relative_error"]
    # 24 features span the 25 taps of a 5x5 kernel; 2 features (+ constant) cannot
    err = {(r["layer"], r["n_l"]): r["relative_error"] for r in rows}
    assert err[("0", 24)] < err[("0", 2)]
    assert fits[("0", 24)].fitted.shape == model[0].weight.shape


def test_analyze_recapitulation_writes_csv_and_png(tmp_path):
    configs, _ = _write_config(tmp_path, 2, False, net=TWO_CONVS)
    torch.save(build_bundle_network(configs).state_dict(), tmp_path / "model.pt")
    out = analyze_recapitulation(configs, str(tmp_path / "model.pt"), str(tmp_path / "out"), n_ls="8,24", steps=20)
    rows = read_csv(out["csv"])
    assert {int(r["n_l"]) for r in rows} == {8, 24}
    assert len(rows) == 2 * len(layer_smoothness(build_bundle_network(configs)))
    assert matplotlib.image.imread(out["png"]).shape[1] > 300
    assert matplotlib.image.imread(out["kernels_png"]).shape[0] > 300  # 2 layers x (learned, 8, 24) rows
