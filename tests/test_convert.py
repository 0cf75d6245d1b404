"""hyperize / materialize on MONAI networks, and export round trips of materialized models."""

import copy
import subprocess
import sys

import pytest
import torch
from monai.networks.nets import BasicUNet, DynUNet, UNet
from torch import nn

from monai_hyperconv import HyperConvNd, HyperConvTransposeNd, hyperize, materialize


def _unet(dims):
    return UNet(dims, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)


def _basic_unet(dims):
    return BasicUNet(dims, 1, 2, features=(4, 4, 8, 8, 16, 4))


def _dynunet(dims):
    return DynUNet(dims, 1, 2, kernel_size=[3, 3, 3], strides=[1, 2, 2], upsample_kernel_size=[2, 2])


NETWORKS = {"UNet": _unet, "BasicUNet": _basic_unet, "DynUNet": _dynunet}


def _convs(model, kinds=(nn.Conv1d, nn.Conv2d, nn.Conv3d)):
    return [m for m in model.modules() if type(m) in kinds]


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("dims", [2, 3])
def test_hyperize_replaces_every_spatial_conv_and_keeps_shapes(name, dims):
    model = NETWORKS[name](dims).eval()
    before = _convs(model)
    n_spatial = sum(max(c.kernel_size) > 1 for c in before)
    transposed = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvTransposeNd)]
    n_transposed = sum(max(m.kernel_size) > 1 for m in transposed)
    x = torch.randn(1, 1, *([32] * dims))
    shape = model(x).shape
    hyper = hyperize(model, hidden_channels=(8, 8, 2))
    hyper_layers = [m for m in hyper.modules() if isinstance(m, HyperConvNd)]
    hyper_transposed = [m for m in hyper_layers if isinstance(m, HyperConvTransposeNd)]
    assert len(hyper_layers) - len(hyper_transposed) == n_spatial > 0
    assert len(hyper_transposed) == n_transposed > 0  # transposed convs are converted too
    assert all(max(c.kernel_size) == 1 for c in _convs(hyper))  # only 1x1 convs stay regular
    left = [m for m in hyper.modules() if isinstance(m, nn.modules.conv._ConvTransposeNd)]
    assert len(left) == len(transposed) - n_transposed and all(max(m.kernel_size) == 1 for m in left)
    assert all(h.hidden_channels == (8, 8, 2) for h in hyper_layers)
    assert hyper(x).shape == shape


def test_hyperize_keeps_layer_settings():
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, bias=False, padding_mode="reflect").double()
    hyper = hyperize(nn.Sequential(conv))[0]
    assert (hyper.stride, hyper.padding, hyper.dilation, hyper.groups) == ((2, 2), (2, 2), (2, 2), 2)
    assert hyper.bias is None and hyper.padding_mode == "reflect"
    assert hyper.kernel().dtype == torch.float64


def test_hyperize_with_new_kernel_size_keeps_size_preserving_padding():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=0), nn.Conv2d(2, 2, 1))
    hyper = hyperize(model, kernel_size=5)
    assert hyper[0].kernel_size == (5, 5) and hyper[0].padding == "same"
    assert hyper[1].padding == (0, 0)
    assert isinstance(hyper[2], nn.Conv2d)
    assert hyper(torch.randn(1, 1, 12, 12)).shape == (1, 2, 8, 8)
    with pytest.raises(ValueError, match="padding"):
        hyperize(nn.Conv2d(1, 1, 3, padding=3), kernel_size=5)


def test_hyperize_a_bare_conv_returns_the_replacement():
    assert isinstance(hyperize(nn.Conv3d(1, 1, 3)), HyperConvNd)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("dims", [2, 3])
def test_materialize_gives_the_same_outputs_with_plain_convs(name, dims):
    hyper = hyperize(NETWORKS[name](dims)).eval()
    x = torch.randn(2, 1, *([32] * dims))
    with torch.no_grad():
        expected = hyper(x)
        plain = materialize(copy.deepcopy(hyper))
        assert not any(isinstance(m, HyperConvNd) for m in plain.modules())
        torch.testing.assert_close(plain(x), expected, rtol=1e-5, atol=1e-5)


def test_materialize_handles_strided_asymmetric_same_padding_and_fft_layers():
    model = nn.Sequential(
        hyperize(nn.Conv2d(2, 3, 4, stride=2)),  # becomes a hyper conv with padding 0 (kept)
    )
    model.append(type(model[0])(3, 3, 4, stride=2, padding="same"))
    model.append(type(model[0])(3, 3, 15, fft=True))
    model.eval()
    x = torch.randn(1, 2, 33, 33)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(materialize(copy.deepcopy(model))(x), expected, rtol=1e-4, atol=1e-5)


def test_materialized_model_traces_and_exports_to_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    hyper = hyperize(_basic_unet(2)).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        expected = hyper(x)
    plain = materialize(hyper)
    traced = torch.jit.trace(plain, x)
    traced_path = tmp_path / "model.ts"
    traced.save(str(traced_path))
    torch.testing.assert_close(torch.jit.load(str(traced_path))(x), expected, rtol=1e-5, atol=1e-5)

    onnx_path = tmp_path / "model.onnx"
    torch.onnx.export(plain, (x,), str(onnx_path), input_names=["image"], output_names=["logits"], dynamo=True)
    onnx.checker.check_model(onnx.load(str(onnx_path)))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), expected, rtol=1e-4, atol=1e-4)


def test_hyper_network_traces_directly():
    hyper = hyperize(_unet(2)).eval()
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        traced = torch.jit.trace(hyper, x)
        torch.testing.assert_close(traced(x), hyper(x))


@pytest.mark.slow
def test_bundle_ckpt_export_of_a_hyper_network(tmp_path):
    """`python -m monai.bundle ckpt_export` on a config whose network is hyperized, loading a trained checkpoint."""
    config = tmp_path / "inference.yaml"
    config.write_text(
        "imports: ['$import monai_hyperconv']\n"
        "network_def:\n"
        "  _target_: monai_hyperconv.hyperize\n"
        "  model: {_target_: monai.networks.nets.BasicUNet, spatial_dims: 2, in_channels: 1, out_channels: 2,"
        " features: [4, 4, 8, 8, 16, 4]}\n"
    )
    meta = tmp_path / "metadata.json"
    meta.write_text(
        '{"version": "0.1.0", "network_data_format": {"inputs": {"image": {"num_channels": 1,'
        ' "spatial_shape": [32, 32], "dtype": "float32"}}, "outputs": {"pred": {"num_channels": 2}}}}'
    )
    torch.manual_seed(3)
    trained = hyperize(_basic_unet(2))
    ckpt = tmp_path / "model.pt"
    torch.save(trained.state_dict(), ckpt)
    exported = tmp_path / "model.ts"
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "ckpt_export",
        "network_def",
        "--filepath",
        str(exported),
        "--ckpt_file",
        str(ckpt),
        "--meta_file",
        str(meta),
        "--config_file",
        str(config),
        "--use_trace",
        "True",
        "--input_shape",
        "[1, 1, 32, 32]",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    x = torch.randn(1, 1, 32, 32)
    trained.eval()
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(exported))(x), trained(x), rtol=1e-4, atol=1e-5)
