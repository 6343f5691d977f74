"""Streaming inference against the whole-sequence forward."""

import numpy as np
import pytest

import rnnlab
from rnnlab.errors import ConfigError, DTypeError, ShapeError

NETS = {
    "rnn_relu": lambda: rnnlab.RNN(3, 5, num_layers=2, nonlinearity="relu", dtype=np.float64, rng=0),
    "lstm": lambda: rnnlab.LSTM(3, 5, num_layers=3, dtype=np.float64, rng=0),
    "lstm_peephole_cifg": lambda: rnnlab.LSTM(3, 5, num_layers=2, peephole=True, cifg=True,
                                              dtype=np.float64, rng=0),
    "lstm_proj": lambda: rnnlab.LSTM(3, 5, num_layers=2, proj_size=2, dtype=np.float64, rng=0),
    "gru": lambda: rnnlab.GRU(3, 5, num_layers=2, dtype=np.float64, rng=0),
    "gru_before": lambda: rnnlab.GRU(3, 5, reset_after=False, bias=False, dtype=np.float64, rng=0),
}


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("with_hx", [False, True])
def test_stream_equals_forward(name, with_hx):
    net = NETS[name]()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 2, 3))
    hx = None
    if with_hx:
        _, hx = net(rng.standard_normal((4, 2, 3)))           # some nonzero state of the right shapes
    y, state = net(x, hx)
    s = net.stream(batch_size=2, hx=hx)
    ys = np.stack([s.step(x[t]) for t in range(7)])
    np.testing.assert_allclose(ys, y, rtol=1e-12, atol=1e-12)
    for a, b in zip(s.state if isinstance(state, tuple) else (s.state,),
                    state if isinstance(state, tuple) else (state,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    s.reset(hx)                                               # starts over
    np.testing.assert_allclose(s.step(x[0]), y[0], atol=1e-12)


def test_unbatched_steps_and_fresh_outputs():
    net = rnnlab.GRU(3, 4, rng=0)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    y, _ = net(x)
    s = net.stream()
    outs = [s.step(x[t]) for t in range(5)]
    assert outs[0].shape == (4,)
    np.testing.assert_allclose(np.stack(outs), y, rtol=1e-5, atol=1e-6)   # earlier outputs not overwritten


def test_stream_errors():
    with pytest.raises(ConfigError, match="bidirectional"):
        rnnlab.LSTM(3, 4, bidirectional=True).stream()
    s = rnnlab.LSTM(3, 4).stream(batch_size=2)
    with pytest.raises(ShapeError, match=r"x: expected shape \(2, 3\), got \(2, 4\)"):
        s.step(np.zeros((2, 4), np.float32))
    with pytest.raises(DTypeError, match="float32"):
        s.step(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="batch_size"):
        rnnlab.GRU(3, 4).stream(batch_size=0)


@pytest.mark.parametrize("B", [1, 2])
def test_a_batched_stream_reads_a_contiguous_copy_of_w_hh_transposed(B):
    """A stream runs its kernel for many steps, so from B = 2 the steps read a contiguous copy of
    W_hh^T, as a long whole-sequence call does (kernels._buffers.step_weights); B = 1 the view."""
    from rnnlab.kernels import _jit
    net = rnnlab.GRU(3, 300, rng=0)                   # H > 256: no compiled small-batch loop
    w = net.stream(batch_size=B).layers[0].kern.w
    p = net.layers[0][0]
    np.testing.assert_array_equal(w, p.w_hh.T)
    copied = B >= 2 and _jit.enabled()
    assert w.flags.c_contiguous == copied and np.shares_memory(w, p.w_hh) != copied
