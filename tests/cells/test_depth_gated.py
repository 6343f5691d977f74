"""Depth-Gated LSTM: finite differences for the stacked step and the network, and the depth link."""

import numpy as np
import pytest

import rnnlab
from rnnlab.cells.depth_gated import DepthGatedLSTMCellConfig
from rnnlab.errors import ConfigError, ShapeError
from tests.helpers import gradcheck_network, gradcheck_step


@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize("B", [1, 3])
def test_step_gradcheck(L, B):
    gradcheck_step(DepthGatedLSTMCellConfig(3, L), B)


@pytest.mark.parametrize("extra", [{}, {"zoneout": 0.3, "input_dropout": 0.2, "recurrent_dropout": 0.2}],
                         ids=["plain", "regularised"])
def test_network_gradcheck_bidirectional_lengths(extra):
    rng = np.random.default_rng(0)
    make = lambda: rnnlab.DepthGatedLSTM(2, 3, num_layers=3, bidirectional=True, dtype=np.float64,  # noqa: E731
                                         rng=1, **extra)
    hx = (rng.standard_normal((6, 3, 3)), rng.standard_normal((6, 3, 3)))
    gradcheck_network(make, rng.standard_normal((5, 3, 2)), hx, [5, 2, 4], dropout_seed=3 if extra else None)


def test_depth_gate_equations_on_one_step():
    """Layer 2's cell is d * c^1 + f * c_prev + i * g, with d from the paper's equation."""
    net = rnnlab.DepthGatedLSTM(2, 4, num_layers=2, dtype=np.float64, rng=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 2))
    h0, c0 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    _, (h1, c1) = net(x, (h0, c0))
    sd = net.state_dict()
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    a1 = x[0] @ sd["weight_ih_l0"].T + sd["bias_ih_l0"] + h0[0] @ sd["weight_hh_l0"][0].T + sd["bias_hh_l0"][0]
    i, f, g, o = s(a1[:, :4]), s(a1[:, 4:8]), np.tanh(a1[:, 8:12]), s(a1[:, 12:])
    c_low = f * c0[0] + i * g
    h_low = o * np.tanh(c_low)
    a2 = h_low @ sd["weight_up_l0"][0].T + sd["bias_up_l0"][0]
    a2[:, :16] += h0[1] @ sd["weight_hh_l0"][1].T + sd["bias_hh_l0"][1]
    w = sd["weight_depth_l0"][0]
    d = s(a2[:, 16:] + w[:4] * c0[1] + w[4:] * c_low)
    i, f, g, o = s(a2[:, :4]), s(a2[:, 4:8]), np.tanh(a2[:, 8:12]), s(a2[:, 12:16])
    c_top = d * c_low + f * c0[1] + i * g
    np.testing.assert_allclose(c1[0], c_low, rtol=1e-12)
    np.testing.assert_allclose(c1[1], c_top, rtol=1e-12)
    np.testing.assert_allclose(h1[1], o * np.tanh(c_top), rtol=1e-12)


def test_depth_gated_errors():
    with pytest.raises(ConfigError, match="at least 2 layers"):
        rnnlab.DepthGatedLSTM(2, 3, num_layers=1)
    net = rnnlab.DepthGatedLSTM(2, 3)
    with pytest.raises(ShapeError, match=r"h_0: expected \(2, batch, 3\)"):
        net(np.zeros((4, 1, 2), np.float32), (np.zeros((3, 1, 3), np.float32),) * 2)
    with pytest.raises(ConfigError, match="stream"):
        net.stream()


def test_export_refused(tmp_path):
    pytest.importorskip("onnx")
    from rnnlab.interop.onnx_io import export_network
    with pytest.raises(ConfigError, match="DepthGatedLSTM"):
        export_network(rnnlab.DepthGatedLSTM(2, 3), tmp_path / "d.onnx")
