"""Layer-normalised LSTM and GRU: finite differences, and PyTorch autograd on the same equations."""

import numpy as np
import pytest

import rnnlab
from rnnlab.cells.layernorm import LayerNormGRUCellConfig, LayerNormLSTMCellConfig
from rnnlab.errors import ConfigError
from tests.helpers import gradcheck_network, gradcheck_step


@pytest.mark.parametrize("cell", [LayerNormLSTMCellConfig(4), LayerNormGRUCellConfig(4)], ids=["lstm", "gru"])
@pytest.mark.parametrize("B", [1, 3])
def test_step_gradcheck(cell, B):
    gradcheck_step(cell, B)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_network_gradcheck_stacked_bidirectional_lengths(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 2))
    make = lambda: getattr(rnnlab, kind)(2, 3, num_layers=2, bidirectional=True, layer_norm=True,  # noqa: E731
                                         dtype=np.float64, rng=1)
    n = 2 * 2
    hx = rng.standard_normal((n, 3, 3))
    gradcheck_network(make, x, (hx, rng.standard_normal((n, 3, 3))) if kind == "LSTM" else hx, lengths=[5, 2, 4])


def _torch_reference(kind, net, x, hx):
    """The haste equations written with torch ops; autograd gives the oracle gradients."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    sd = {k: torch.tensor(v, requires_grad=True) for k, v in net.state_dict().items()}
    H = net.hidden_size
    xt = torch.tensor(x, requires_grad=True)
    gw, gb = sd["layer_norm_weight_l0"], sd["layer_norm_bias_l0"]
    Wx = xt @ sd["weight_ih_l0"].T
    outs = []
    if kind == "LSTM":
        h, c = (torch.tensor(a[0]) for a in hx)
        for t in range(x.shape[0]):
            a = (F.layer_norm(Wx[t], (4 * H,), gw[:4 * H], None, 1e-5)
                 + F.layer_norm(h @ sd["weight_hh_l0"].T, (4 * H,), gw[4 * H:8 * H], None, 1e-5) + gb[:4 * H])
            i, f, g, o = a.sigmoid()[:, :H], a.sigmoid()[:, H:2 * H], a[:, 2 * H:3 * H].tanh(), a.sigmoid()[:, 3 * H:]
            c = f * c + i * g
            h = o * F.layer_norm(c, (H,), gw[8 * H:], gb[4 * H:], 1e-5).tanh()
            outs.append(h)
    else:
        h = torch.tensor(hx[0][0])
        for t in range(x.shape[0]):
            vx = F.layer_norm(Wx[t], (3 * H,), gw[:3 * H], gb[:3 * H], 1e-5)
            vh = F.layer_norm(h @ sd["weight_hh_l0"].T, (3 * H,), gw[3 * H:], gb[3 * H:], 1e-5)
            r, z = (vx[:, :H] + vh[:, :H]).sigmoid(), (vx[:, H:2 * H] + vh[:, H:2 * H]).sigmoid()
            n = (vx[:, 2 * H:] + r * vh[:, 2 * H:]).tanh()
            h = (1 - z) * n + z * h
            outs.append(h)
    y = torch.stack(outs)
    return y, xt, sd


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_matches_torch_autograd_on_the_haste_equations(kind):
    rng = np.random.default_rng(2)
    net = getattr(rnnlab, kind)(3, 5, layer_norm=True, dtype=np.float64, rng=0)
    for _, a in net.named_parameters():
        a += 0.3 * rng.standard_normal(a.shape)          # gains and biases away from 1 and 0
    x = rng.standard_normal((6, 2, 3))
    hx = (rng.standard_normal((1, 2, 5)), rng.standard_normal((1, 2, 5)))
    y, _ = net(x, hx if kind == "LSTM" else hx[0])
    dy = rng.standard_normal(y.shape)
    dx, _ = net.backward(dy)
    yt, xt, sd = _torch_reference(kind, net, x, hx)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    import torch
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for k, v in sd.items():
        np.testing.assert_allclose(net.grads[k], v.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def test_layer_norm_options_and_errors(tmp_path):
    assert rnnlab.LSTM(3, 4, layer_norm=True, forget_bias=1.0).state_dict()["layer_norm_bias_l0"][4:8].tolist() == [1.0] * 4
    with pytest.raises(ConfigError, match="layer_norm: cannot be combined with peephole"):
        rnnlab.LSTM(3, 4, layer_norm=True, peephole=True)
    with pytest.raises(ConfigError, match="layer_norm: cannot be combined with reset_before"):
        rnnlab.GRU(3, 4, layer_norm=True, reset_after=False)
    with pytest.raises(ConfigError, match="bias=True"):
        rnnlab.GRU(3, 4, layer_norm=True, bias=False)
    pytest.importorskip("onnx")
    from rnnlab.interop.onnx_io import export_network
    with pytest.raises(ConfigError, match="no ONNX operator"):
        export_network(rnnlab.LSTM(3, 4, layer_norm=True), tmp_path / "m.onnx")
    s = rnnlab.GRU(3, 4, layer_norm=True, rng=0)              # streaming runs the reference step
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    st = s.stream()
    np.testing.assert_allclose(np.stack([st.step(v) for v in x]), s(x)[0], rtol=1e-5, atol=1e-6)
