"""Finite-difference checks of whole networks, float64: every path through the time loop."""

import numpy as np
import pytest

import rnnlab
from rnnlab import backends
from tests.helpers import gradcheck_network

# float64 finite differences on every backend whose loops take float64 (the packed loops are
# float32: tests/kernels/test_packed holds them to the float64 reference's gradients)
LEVELS = [b for b in ("reference", "numpy", "compiled") if b != "compiled" or backends.numba_installed()]

D, H = 3, 4
CONFIGS = {
    "rnn-tanh": (rnnlab.RNN, dict()),
    "rnn-relu": (rnnlab.RNN, dict(nonlinearity="relu")),
    "lstm": (rnnlab.LSTM, dict()),
    "lstm-peephole": (rnnlab.LSTM, dict(peephole=True)),
    "lstm-cifg": (rnnlab.LSTM, dict(cifg=True)),
    "lstm-proj": (rnnlab.LSTM, dict(proj_size=2)),
    "lstm-all": (rnnlab.LSTM, dict(proj_size=3, peephole=True, cifg=True)),
    "gru-after": (rnnlab.GRU, dict()),
    "gru-before": (rnnlab.GRU, dict(reset_after=False)),
}


def state_for(m, B, rng, batched=True):
    LD = m.num_layers * m.num_directions
    shape = (LD, B) if batched else (LD,)
    sizes = m.cell.carry_sizes()
    states = tuple(rng.standard_normal(shape + (s,)) for s in sizes)
    return states if len(states) == 2 else states[0]


def run_check(name, B, T, lengths=None, num_layers=1, bidirectional=False, with_state=True,
              batch_first=False, **extra):
    cls, options = CONFIGS[name]
    make = lambda: cls(D, H, num_layers=num_layers, bidirectional=bidirectional,  # noqa: E731
                       batch_first=batch_first, dtype=np.float64, rng=7, **options, **extra)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, D) if batch_first else (T, B, D))
    hx = state_for(make(), B, rng) if with_state else None
    gradcheck_network(make, x, hx, lengths, dropout_seed=11 if extra.get("dropout") else None)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("B", [1, 3, 5])           # 5: the compiled LSTM's BLAS loops
def test_single_layer(name, B, level):
    with rnnlab.backend(level):
        run_check(name, B, T=4)


@pytest.mark.parametrize("name", CONFIGS)
def test_one_step(name):
    run_check(name, B=3, T=1)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", CONFIGS)
def test_lengths_bidirectional_stacked(name, level):
    """Every mechanism at once: lengths (one full, one of 1, one of 0), reverse, 2 layers."""
    with rnnlab.backend(level):
        run_check(name, B=4, T=5, lengths=np.array([5, 1, 3, 0]), num_layers=2, bidirectional=True)


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm-all", "gru-before"])
def test_lengths_forward_only(name):
    run_check(name, B=3, T=4, lengths=[2, 4, 3])


@pytest.mark.parametrize("name", ["lstm", "gru-after"])
def test_reverse_only_via_bidirectional_batch1(name):
    run_check(name, B=1, T=3, lengths=[2], bidirectional=True)


@pytest.mark.parametrize("name", ["lstm-proj", "gru-after", "rnn-relu"])
def test_deep_with_dropout_mask_fixed_by_seed(name):
    run_check(name, B=2, T=3, num_layers=3, bidirectional=True, dropout=0.3)


def test_batch_first_without_initial_state():
    run_check("lstm-peephole", B=2, T=3, batch_first=True, with_state=False)


def test_unbatched_input():
    m = rnnlab.GRU(D, H, num_layers=2, dtype=np.float64, rng=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, D))
    h0 = rng.standard_normal((2, H))
    gradcheck_network(lambda: m, x, h0)
    y, h = m(x, h0)
    yb, hb = m(x[:, None], h0[:, None])
    np.testing.assert_array_equal(y, yb[:, 0])
    np.testing.assert_array_equal(h, hb[:, 0])


# --- behaviour, not only gradients -------------------------------------------------------------

@pytest.mark.parametrize("name", CONFIGS)
def test_padded_steps_hold_state_and_output_zeros(name):
    """Row b with length L gives the same outputs and final state as running x[:L, b] alone;
    padding content does not matter."""
    cls, options = CONFIGS[name]
    m = cls(D, H, bidirectional=True, num_layers=2, dtype=np.float64, rng=1, **options)
    rng = np.random.default_rng(0)
    T, lengths = 6, np.array([6, 2, 4])
    x = rng.standard_normal((T, 3, D))
    y, st = m(x, lengths=lengths)
    x[T - 1, 1:] = 1e3                                  # change padding only
    y2, st2 = m(x, lengths=lengths)
    np.testing.assert_array_equal(y, y2)
    for b, L in enumerate(lengths):
        yb, stb = m(x[:L, b:b + 1])
        np.testing.assert_allclose(y[:L, b:b + 1], yb, rtol=1e-12, atol=1e-14)
        assert (y[L:, b] == 0).all()
        for s, sb in zip(st if isinstance(st, tuple) else (st,),
                         stb if isinstance(stb, tuple) else (stb,)):
            np.testing.assert_allclose(s[:, b:b + 1], sb, rtol=1e-12, atol=1e-14)


def test_zero_length_row_returns_initial_state_and_zeros():
    m = rnnlab.LSTM(D, H, dtype=np.float64, rng=0)
    rng = np.random.default_rng(0)
    h0, c0 = rng.standard_normal((1, 2, H)), rng.standard_normal((1, 2, H))
    y, (h, c) = m(rng.standard_normal((3, 2, D)), (h0, c0), lengths=[3, 0])
    assert (y[:, 1] == 0).all()
    np.testing.assert_array_equal(h[:, 1], h0[:, 1])
    np.testing.assert_array_equal(c[:, 1], c0[:, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", CONFIGS)
def test_dtype_is_kept_everywhere(name, dtype):
    cls, options = CONFIGS[name]
    m = cls(D, H, num_layers=2, bidirectional=True, dtype=dtype, rng=0, **options)
    x = np.random.default_rng(0).standard_normal((4, 2, D)).astype(dtype)
    y, st = m(x, lengths=[4, 2])
    dx, dst = m.backward(np.ones_like(y))
    arrays = [y, dx, *(st if isinstance(st, tuple) else (st,)), *m.grads.values(), *m.parameters()]
    assert all(a.dtype == dtype for a in arrays)


def test_float32_agrees_with_float64():
    m64 = rnnlab.LSTM(D, 16, num_layers=2, dtype=np.float64, rng=0)
    m32 = rnnlab.LSTM(D, 16, num_layers=2, dtype=np.float32, rng=0)
    m32.load_state_dict(m64.state_dict())
    x = np.random.default_rng(0).standard_normal((20, 4, D))
    y64, _ = m64(x)
    y32, _ = m32(x.astype(np.float32))
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)


def test_dropout_only_in_training_mode():
    m = rnnlab.GRU(D, H, num_layers=2, dropout=0.5, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 2, D))
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(a, b)
    m.train()
    c, _ = m(x)
    assert not np.allclose(a, c)


def test_backward_needs_a_forward_call():
    m = rnnlab.RNN(D, H)
    with pytest.raises(RuntimeError, match="forward"):
        m.backward(np.zeros((1, 1, H), np.float32))


@pytest.mark.parametrize("name", ["rnn-tanh", "rnn-relu"])
def test_rnn_backward_in_several_chunks(name, monkeypatch):
    """The fused RNN backward adds its gradients chunk by chunk: with 2 steps a chunk (T = 5,
    the last chunk short), in both directions, with lengths and batch_first."""
    from rnnlab.kernels import rnn
    monkeypatch.setattr(rnn.Backward, "CHUNK_ROWS", 6)             # B = 3: 2 steps a chunk
    run_check(name, B=3, T=5, lengths=np.array([5, 2, 4]), num_layers=2, bidirectional=True,
              batch_first=True)
