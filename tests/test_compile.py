"""torch.compile of hyper-convolutions: whole graphs (no break in the layer), no recompile per layer, and outputs that
follow parameter updates (the kernel cache is bypassed inside compiled graphs). The ``aot_eager`` backend traces
forward and backward like inductor does, without its C++ code generation, so these tests stay fast."""

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

from monai_hyperconv import HyperConv2d, HyperConv3d
from monai_hyperconv.networks import PaperUNet


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("fft", [False, True])
@pytest.mark.parametrize("grad", [False, True])
def test_layer_compiles_to_one_graph(fft, grad):
    layer = HyperConv2d(3, 4, 9, fft=fft)
    x = torch.randn(2, 3, 16, 16)
    with torch.set_grad_enabled(grad):
        explanation = torch._dynamo.explain(layer)(x)
    assert explanation.graph_count == 1 and explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.slow
def test_hyper_unet_trains_and_evaluates_with_one_graph_per_mode():
    """17 hyper layers of different shapes: one graph for training, one recompile for eval, none per layer."""
    torch.manual_seed(0)
    net = PaperUNet(2, 1, 2, channels=2, conv="hyper", kernel_size=9)
    next(m for m in net.modules() if isinstance(m, HyperConv2d)).fft = True  # both paths in one network
    x, target = torch.randn(2, 1, 32, 32), torch.randint(0, 2, (2, 32, 32))
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(net, backend=counter, fullgraph=True)  # fullgraph: any graph break raises
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(2):
        net.train()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(compiled(x), target).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), net(x), rtol=1e-4, atol=1e-4)
    assert counter.frame_count == 2  # train and eval, each compiled once


@pytest.mark.parametrize(
    "layer_type,fft,size",
    [(HyperConv2d, False, (12, 12)), (HyperConv2d, True, (12, 12)), (HyperConv3d, True, (6, 7, 5))],
)
def test_compiled_eval_follows_parameter_updates(layer_type, fft, size):
    """Eager eval caches the kernel (spectrum); compiled eval must not serve a stale one after an optimizer step."""
    layer = layer_type(3, 3, 5, fft=fft).eval()
    x = torch.randn(2, 3, *size)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    with torch.no_grad():
        before = compiled(x)
        torch.testing.assert_close(before, layer(x), rtol=1e-5, atol=1e-5)
    layer(x).square().sum().backward()  # grad enabled: the gradient reaches the kernel network
    optimizer.step()
    with torch.no_grad():
        after, eager = compiled(x), layer(x)
    assert (after - before).abs().max() > 1e-3  # the update is visible
    torch.testing.assert_close(after, eager, rtol=1e-5, atol=1e-5)
