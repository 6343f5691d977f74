"""H padded to a multiple of 16 for the packed loops (kernels/_pad.py): outputs, states and
every gradient equal the float64 reference's at H that the loops do not take as it is."""

import numpy as np
import pytest

import rnnlab
from rnnlab import GRU, LSTM, RNN
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.init import init_cell
from rnnlab.kernels import _jit, _pad

needs_numba = pytest.mark.skipif(not _jit.AVAILABLE, reason="numba not installed")


@needs_numba
@pytest.mark.parametrize("kind,H", [(LSTM, 72), (LSTM, 100), (GRU, 72), (RNN, 90)])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_packed_call_matches_the_reference(kind, H, bidirectional):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 6, 20))
    lens = np.array([9, 3, 7, 1, 9, 5])
    ours = kind(20, H, num_layers=2, bidirectional=bidirectional, rng=1)
    ref = kind(20, H, num_layers=2, bidirectional=bidirectional, rng=1, dtype=np.float64, backend="reference")
    ref.load_state_dict({k: v.astype(np.float64) for k, v in ours.state_dict().items()})
    h0 = rng.standard_normal((2 * (1 + bidirectional), 6, H))
    hx = (h0, h0 * 0.5) if kind is LSTM else h0
    cast = (lambda s: tuple(a.astype(np.float32) for a in s)) if kind is LSTM else (lambda s: s.astype(np.float32))
    with rnnlab.threads.shared_pool():
        plan = ours.plan(x.astype(np.float32), training=True)
        assert plan.pad == -(-H // 16) * 16 and plan.forward == plan.backward == "packed", plan
        inf, s_inf = ours.forward(x.astype(np.float32), cast(hx), lengths=lens, keep_cache=False)
        y, s = ours(x.astype(np.float32), cast(hx), lengths=lens)
        g = rng.standard_normal(y.shape)
        dx, dh = ours.backward(g.astype(np.float32))
    y0, s0 = ref(x, hx, lengths=lens)
    dx0, dh0 = ref.backward(g)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    close(y, y0), close(inf, y0), close(dx, dx0)
    for a, b, c in zip(*(t if isinstance(t, tuple) else (t,) for t in (s, s_inf, s0))):
        assert a.shape == c.shape
        close(a, c), close(b, c)
    for a, b in zip(*(t if isinstance(t, tuple) else (t,) for t in (dh, dh0))):
        close(a, b)
    for k, a in ours.grads.items():
        assert a.shape == ref.grads[k].shape, k
        close(a, ref.grads[k])


def test_pad_and_unpad_round_trip():
    cell = LSTMCellConfig(5)
    p = init_cell(cell, 3, bias=True, dtype=np.float64, rng=np.random.default_rng(0))
    q = _pad.pad_params(cell, p, 16)
    assert q.w_ih.shape == (64, 3) and q.w_hh.shape == (64, 16) and q.b_hh.shape == (64,)
    assert (q.w_hh.reshape(4, 16, 16)[:, 5:] == 0).all() and (q.w_hh[:, 5:] == 0).all()
    back = _pad.unpad_grads(cell, q)
    for f in ("w_ih", "w_hh", "b_ih", "b_hh"):
        np.testing.assert_array_equal(getattr(back, f), getattr(p, f))
