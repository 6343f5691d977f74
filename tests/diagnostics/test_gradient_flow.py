import numpy as np
import pytest

import rnnlab
from rnnlab.diagnostics import gate_activations, gradient_flow, network_gradient_flow, saturation, top_units
from rnnlab.testing import numeric_grad


@pytest.mark.parametrize("kind,kw", [("RNN", {}), ("LSTM", {}), ("GRU", {"reset_after": False})])
def test_state_gradients_equal_finite_differences(kind, kw):
    """||dL/dh_k|| recorded by the hook == the norm of dL/d(delta added to h_k), numerically."""
    from rnnlab.recurrent import scan_forward
    T, B, D, H = 6, 2, 3, 4
    net = getattr(rnnlab, kind)(D, H, dtype=np.float64, rng=0, **kw)
    x = np.random.default_rng(0).standard_normal((T, B, D))
    flow = network_gradient_flow(net, x, seed=1)
    p, sizes = net.layers[0][0], net.cell.carry_sizes()
    u = np.random.default_rng(1).standard_normal((B, H))       # the same unit vectors as seed=1
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    for k in range(T):
        delta = np.zeros((B, sizes[0]))

        def loss():
            carry = tuple(np.zeros((B, s)) for s in sizes)
            _, carry, _ = scan_forward(net.cell, p, x[:k + 1], carry)
            carry = (carry[0] + delta,) + carry[1:]              # h_k moved by delta
            last = scan_forward(net.cell, p, x[k + 1:], carry)[0][-1] if k + 1 < T else carry[0]
            return float((last * u).sum())

        g = numeric_grad(loss, delta)
        np.testing.assert_allclose(flow.h_norm[0, k], np.linalg.norm(g, axis=-1).mean(), rtol=1e-6)
    assert (flow.c_norm is not None) == (kind == "LSTM")


def test_stacked_bidirectional_rows_in_input_time():
    net = rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    flow = network_gradient_flow(net, x, lengths=[6, 4])
    assert flow.h_norm.shape == flow.c_norm.shape == (4, 6)
    assert (flow.h_norm[:3, :4] > 0).all()                    # layer 0 both ways, layer 1 forward
    # layer 1 reverse: the loss reads only the output at each row's last valid step, which is
    # that direction's first step, so no later (earlier-in-time) state of it affects the loss
    assert np.flatnonzero(flow.h_norm[3]).tolist() == [3, 5]


def test_decay_rate_of_a_contracting_rnn():
    net = rnnlab.RNN(2, 16, dtype=np.float64, rng=0)
    net.layers[0][0].w_hh *= 0.3                                   # strongly contracting
    x = np.random.default_rng(0).standard_normal((40, 4, 2))
    d = network_gradient_flow(net, x).decay()
    assert d["per_step_factor"] < 0.5 and d["orders_per_50_steps"] > 10


def test_gradient_flow_of_a_model_batch_and_gates():
    from rnnlab.data import Vocab
    from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig
    m = LanguageModel(Vocab(list("abcd")), LanguageModelConfig("char", 3, RecurrentConfig("lstm", 5)), rng=0)
    rng = np.random.default_rng(0)
    batch = (rng.integers(0, 4, (7, 2)), rng.integers(0, 4, (7, 2)))
    flow = gradient_flow(m, batch)
    assert flow.h_norm.shape == (1, 7) and flow.c_norm.shape == (1, 7)
    acts = gate_activations(m.rnn)["l0"]
    assert set(acts) == {"input", "forget", "candidate", "output", "cell", "hidden"}
    assert acts["forget"].shape == (7, 2, 5)
    sat = saturation(acts, m.rnn.cell.sigmoid_gates)
    assert 0 <= sat["forget"]["near_1"] <= 1


def test_gate_activations_are_the_real_gates():
    net = rnnlab.GRU(2, 3, dtype=np.float64, rng=0, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((4, 1, 2))
    out, _ = net(x, lengths=[3])
    acts = gate_activations(net)
    np.testing.assert_allclose(acts["l0"]["hidden"][:3, 0], out[:3, 0, :3])
    np.testing.assert_allclose(acts["l0_reverse"]["hidden"][:3, 0], out[:3, 0, 3:])


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gate_activations_after_backward_say_the_gates_are_gone(kind):
    """The fused backward turns the saved gates into their gradients: reading them after it
    is an error, not gradients passed off as gates, and what was read before stays as it was;
    a new forward call has them again."""
    net = getattr(rnnlab, kind)(2, 3, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 2))
    out, _ = net(x)
    held = gate_activations(net)["l0"]
    before = {k: v.copy() for k, v in held.items()}
    net.backward(np.ones_like(out))
    for k, v in held.items():                          # copies: backward does not touch them
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(RuntimeError, match="before backward"):
        gate_activations(net)
    net(x)
    for k, v in gate_activations(net)["l0"].items():
        np.testing.assert_array_equal(v, before[k])


def test_top_units_finds_the_correlated_unit():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(200)
    acts = rng.standard_normal((200, 6))
    acts[:, 4] = -2 * signal + 0.1 * rng.standard_normal(200)
    (unit, r), *_ = top_units(acts, signal, 3)
    assert unit == 4 and r < -0.99
