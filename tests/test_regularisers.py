"""Zoneout and variational (per-sequence) dropout inside the time loop."""

import numpy as np
import pytest

import rnnlab
from rnnlab.errors import ConfigError
from tests.helpers import gradcheck_network

F64 = dict(dtype=np.float64, rng=1)
CASES = {
    "lstm_all": lambda: rnnlab.LSTM(2, 3, num_layers=2, bidirectional=True, zoneout=(0.3, 0.5),
                                    input_dropout=0.3, recurrent_dropout=0.4, **F64),
    "lstm_ln_zoneout_recdrop": lambda: rnnlab.LSTM(2, 3, layer_norm=True, zoneout=0.4, recurrent_dropout=0.3, **F64),
    "gru_zoneout_indrop": lambda: rnnlab.GRU(2, 3, num_layers=2, zoneout=0.4, input_dropout=0.3, **F64),
    "gru_all": lambda: rnnlab.GRU(2, 3, bidirectional=True, zoneout=0.3, input_dropout=0.2,
                                  recurrent_dropout=0.4, **F64),
    "gru_before_recdrop": lambda: rnnlab.GRU(2, 3, reset_after=False, recurrent_dropout=0.4, **F64),
    "gru_ln_recdrop": lambda: rnnlab.GRU(2, 3, layer_norm=True, recurrent_dropout=0.4, zoneout=0.2, **F64),
    "rnn_all": lambda: rnnlab.RNN(2, 3, bidirectional=True, zoneout=0.3, input_dropout=0.2,
                                  recurrent_dropout=0.3, **F64),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("lengths", [None, [5, 2, 4]], ids=["dense", "lengths"])
def test_gradcheck_with_masks_fixed_by_the_seed(name, lengths):
    rng = np.random.default_rng(0)
    net = CASES[name]()
    x = rng.standard_normal((5, 3, 2))
    shape = (net.num_layers * net.num_directions, 3, 3)
    hx = (rng.standard_normal(shape), rng.standard_normal(shape)) if name.startswith("lstm") else rng.standard_normal(shape)
    gradcheck_network(CASES[name], x, hx, lengths, dropout_seed=11)


def test_evaluation_gradcheck_uses_the_expectation():
    net = rnnlab.GRU(2, 3, zoneout=0.4, **F64).eval()
    gradcheck_network(lambda: net, np.random.default_rng(0).standard_normal((4, 2, 2)), lengths=[4, 2])


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_zoneout_keeps_old_units_in_training_and_blends_in_evaluation(kind):
    rng = np.random.default_rng(0)
    p = 0.3
    zoned = getattr(rnnlab, kind)(4, 50, zoneout=p, dtype=np.float64, rng=0)
    plain = getattr(rnnlab, kind)(4, 50, dtype=np.float64, rng=0)
    x = rng.standard_normal((1, 40, 4))
    h0 = rng.standard_normal((1, 40, 50))
    hx = (h0, np.zeros_like(h0)) if kind == "LSTM" else h0
    y_plain, _ = plain(x, hx)
    y_train, _ = zoned(x, hx)
    kept = np.isclose(y_train[0], h0[0], rtol=0, atol=0)
    new = np.isclose(y_train[0], y_plain[0], rtol=1e-13, atol=0)   # (compiled and NumPy tanh: 1 ulp)
    assert np.all(kept | new)                                        # each unit: old or new
    assert abs(kept.mean() - p) < 0.03                               # about p of them kept
    y_eval, _ = zoned.eval()(x, hx)
    np.testing.assert_allclose(y_eval, p * h0 + (1 - p) * y_plain, rtol=1e-12)
    s = zoned.stream(batch_size=40, hx=hx)                           # streaming: the expectation too
    np.testing.assert_allclose(s.step(x[0]), y_eval[0], rtol=1e-12)


def test_variational_masks_are_one_per_sequence():
    """RNN with W_hh = 0 and constant input: each output depends only on the input mask; one
    mask per sequence gives the same output at every step and different ones across rows."""
    net = rnnlab.RNN(40, 1, input_dropout=0.5, dtype=np.float64, rng=3)
    sd = net.state_dict()
    sd["weight_hh_l0"][:] = 0
    sd["weight_ih_l0"][:] = 1 / 40
    sd["bias_ih_l0"][:] = sd["bias_hh_l0"][:] = 0
    net.load_state_dict(sd)
    y, _ = net(np.ones((6, 8, 40)))
    np.testing.assert_allclose(y, np.broadcast_to(y[:1], y.shape))  # same at every step
    assert len(np.unique(np.round(y[0, :, 0], 12))) > 1              # different per sequence
    y_eval, _ = net.eval()(np.ones((6, 8, 40)))
    np.testing.assert_allclose(y_eval, np.tanh(1.0))                 # no dropout in evaluation


def test_regulariser_errors(tmp_path):
    with pytest.raises(ConfigError, match="zoneout: expected a probability or 2"):
        rnnlab.LSTM(3, 4, zoneout=(0.1, 0.2, 0.3))
    with pytest.raises(ConfigError, match=r"input_dropout: expected a float in \[0, 1\), got 1"):
        rnnlab.RNN(3, 4, input_dropout=1)
    pytest.importorskip("onnx")
    from rnnlab.interop.onnx_io import export_network
    with pytest.raises(ConfigError, match="zoneout"):
        export_network(rnnlab.LSTM(3, 4, zoneout=0.1), tmp_path / "z.onnx")


def test_gru_recurrent_dropout_masks_only_the_matmul_reads():
    """Gal's GRU: with the update gate forced to 1 (h' = h), a dropped h must still pass on
    whole through z * h; only what the matmuls read is masked."""
    net = rnnlab.GRU(2, 30, recurrent_dropout=0.5, dtype=np.float64, rng=0)
    sd = net.state_dict()
    sd["bias_ih_l0"][30:60] = 50.0                                   # z = 1
    net.load_state_dict(sd)
    h0 = np.random.default_rng(0).standard_normal((1, 4, 30))
    _, h = net(np.zeros((3, 4, 2)), h0)
    np.testing.assert_allclose(h, h0, atol=1e-12)
