"""rnnlab's own packed GEMM and the LSTM inference loop on its threads (kernels._packed).

The oracle is the reference step functions in float64 (kernels switched off): the packed path
must match them at any batch (all six tile heights, batches split between threads or not),
any input width (blocks of KC rows of W and a remainder), padded rows, reversal, and one or
two threads."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rnnlab import kernels
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.init import init_cell
from rnnlab.kernels import _packed, lstm
from rnnlab.recurrent import scan_forward
from tests.helpers import python_output

needs_packed = pytest.mark.skipif(not _packed.AVAILABLE, reason="numba not installed")


@pytest.fixture
def calls(monkeypatch):
    """Counts of the packed functions' calls, so a test knows the path it checks ran."""
    seen = {"project": 0, "rows": 0, "cols": 0}

    def spy(name, fn):
        def wrapped(*args):
            seen[name] += 1
            return fn(*args)
        return wrapped
    monkeypatch.setattr(_packed, "project", spy("project", _packed.project))
    monkeypatch.setattr(_packed, "lstm_forward", spy("rows", _packed.lstm_forward))
    monkeypatch.setattr(_packed, "lstm_forward_cols", spy("cols", _packed.lstm_forward_cols))
    return seen


def _reference(cell, p, x, carry, lengths=None, reverse=False):
    """The readable steps in float64."""
    saved = kernels.ENABLED
    kernels.ENABLED = False
    try:
        p64 = type(p)(**{k: None if v is None else v.astype(np.float64) for k, v in p.items()})
        y, final, _ = scan_forward(cell, p64, x.astype(np.float64),
                                   tuple(c.astype(np.float64) for c in carry), lengths=lengths,
                                   reverse=reverse, keep_cache=False)
    finally:
        kernels.ENABLED = saved
    return y, final


def _problem(T, B, D, H, seed=0):
    rng = np.random.default_rng(seed)
    cell = LSTMCellConfig(H)
    p = init_cell(cell, D, bias=True, dtype=np.float32, rng=rng)
    p.b_ih += rng.uniform(-1, 1, p.b_ih.shape).astype(np.float32)   # biases that matter
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    carry = tuple(rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    return cell, p, x, carry


@needs_packed
@pytest.mark.parametrize("T,B,D,H", [
    (5, 1, 3, 128),        # one row: the threads split each step's units
    (4, 2, 7, 128),        # one row a thread
    (6, 13, 5, 64),        # 6 + 0 rows and 7 = 6 + 1: tiles of 6 and 1
    (3, 22, 600, 128),     # 11 rows a thread (6 + 5); 600 inputs: KC blocks and a remainder
    (3, 9, 33, 144),       # 4 and 5 rows; 9 panels a gate, split 4 / 5 in the column loop
    (2, 16, 40, 512),      # the largest H the packed loop takes; 8 rows a thread (6 + 2)
    (2, 7, 12, 256),       # 3 and 4 rows
])
def test_packed_inference_matches_the_reference_steps(T, B, D, H, calls):
    cell, p, x, carry = _problem(T, B, D, H)
    y, final, cache = scan_forward(cell, p, x, carry, keep_cache=False)
    assert cache is None and y.dtype == np.float32
    assert calls["project"] == 1 and calls["rows" if B > 1 else "cols"] == 1
    y_ref, final_ref = _reference(cell, p, x, carry)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=2e-5)
    for f, f_ref in zip(final, final_ref):
        np.testing.assert_allclose(f, f_ref, rtol=0, atol=2e-5)


@needs_packed
@pytest.mark.parametrize("B", [1, 5])
@pytest.mark.parametrize("reverse", [False, True])
def test_padded_rows_keep_their_carries(B, reverse, calls):
    """Rows past their length hold h and c (and output zeros) in both loops, forwards and
    reversed."""
    T, D, H = 7, 4, 128
    cell, p, x, carry = _problem(T, B, D, H, seed=3)
    lengths = np.array([7, 3, 1, 5, 6][:B]) if B > 1 else np.array([4])
    y, final, _ = scan_forward(cell, p, x, carry, lengths=lengths, reverse=reverse, keep_cache=False)
    assert calls["rows" if B > 1 else "cols"] == 1
    y_ref, final_ref = _reference(cell, p, x, carry, lengths=lengths, reverse=reverse)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=2e-5)
    for f, f_ref in zip(final, final_ref):
        np.testing.assert_allclose(f, f_ref, rtol=0, atol=2e-5)


@needs_packed
@pytest.mark.parametrize("B", [1, 11])
def test_one_thread_computes_what_two_compute(B, calls):
    import numba
    cell, p, x, carry = _problem(5, B, 20, 128, seed=4)
    y2, _, _ = scan_forward(cell, p, x, carry, keep_cache=False)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        y1, _, _ = scan_forward(cell, p, x, carry, keep_cache=False)
    finally:
        numba.set_num_threads(before)
    assert calls["rows" if B > 1 else "cols"] == 2
    np.testing.assert_allclose(y1, y2, rtol=0, atol=1e-6)


@needs_packed
@pytest.mark.parametrize("N,D,G", [(1, 1, 16), (5, 3, 32), (200, 700, 48), (97, 256, 16)])
def test_the_packed_projection_is_the_product(N, D, G):
    """project(X, pack(W)) = X W^T scaled, for every row remainder and K in and beyond one
    block; nothing outside the output is written."""
    rng = np.random.default_rng(N)
    X = rng.standard_normal((N, D)).astype(np.float32)
    W = rng.standard_normal((G, D)).astype(np.float32)
    scale = rng.choice([0.5, 1.0], G).astype(np.float32)
    wp = np.empty(G * D, np.float32)
    _packed.pack(W, scale, wp)
    out = np.full((N + 2, G), np.nan, np.float32)
    _packed.project(X, wp, out[1:-1], 2)
    expected = (X.astype(np.float64) @ W.T.astype(np.float64)) * scale
    np.testing.assert_allclose(out[1:-1], expected, rtol=1e-5, atol=1e-4 * np.sqrt(D))
    assert np.isnan(out[0]).all() and np.isnan(out[-1]).all()


@needs_packed
def test_which_calls_take_the_packed_loop():
    f32 = np.float32
    assert lstm.packed_loop(32, 256, f32, keep_cache=False, streaming=False)
    assert lstm.packed_loop(1, 128, f32, keep_cache=False, streaming=False)
    assert not lstm.packed_loop(32, 256, f32, keep_cache=True, streaming=False)   # training
    assert not lstm.packed_loop(32, 256, f32, keep_cache=False, streaming=True)   # Stream
    assert not lstm.packed_loop(32, 256, np.float64, keep_cache=False, streaming=False)
    assert not lstm.packed_loop(32, 100, f32, keep_cache=False, streaming=False)  # H % 16
    assert not lstm.packed_loop(32, 1024, f32, keep_cache=False, streaming=False)
    assert not lstm.packed_loop(4, 64, f32, keep_cache=False, streaming=False)    # tiny


@needs_packed
def test_training_and_float64_calls_do_not_take_it(calls):
    cell, p, x, carry = _problem(3, 8, 5, 128)
    scan_forward(cell, p, x, carry, keep_cache=True)
    p64 = type(p)(**{k: None if v is None else v.astype(np.float64) for k, v in p.items()})
    scan_forward(cell, p64, x.astype(np.float64), tuple(c.astype(np.float64) for c in carry),
                 keep_cache=False)
    assert calls == {"project": 0, "rows": 0, "cols": 0}


def test_the_environment_variable_turns_it_off():
    code = "from rnnlab.kernels import _packed; print(_packed.AVAILABLE, _packed.ENABLED)"
    assert python_output(code, RNNLAB_PACKED="0") == ["False", "False"]


@needs_packed
def test_a_deep_bidirectional_torch_lstm_runs_the_same_on_the_packed_path(calls):
    """torch.nn.LSTM as the oracle: two layers, both directions, variable lengths, inference."""
    torch = pytest.importorskip("torch")
    from rnnlab.interop.torch_state import network_from_state
    torch.manual_seed(0)
    tm = torch.nn.LSTM(20, 128, num_layers=2, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((9, 3, 20)).astype(np.float32)
    lengths = np.array([9, 4, 7])
    net = network_from_state(tm.state_dict(), dtype=np.float32)
    y, (h, c) = net.forward(x, lengths=lengths, keep_cache=False)
    assert calls["project"] == 4 and calls["rows"] == 4     # 2 layers x 2 directions
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths),
                                                         enforce_sorted=False)
        out, (th, tc) = tm(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=9)
    np.testing.assert_allclose(y, out.numpy(), rtol=0, atol=2e-6)
    np.testing.assert_allclose(h, th.numpy(), rtol=0, atol=2e-6)
    np.testing.assert_allclose(c, tc.numpy(), rtol=0, atol=4e-6)


@needs_packed
def test_a_float64_initial_state_with_float32_weights_leaves_the_loop_to_blas(calls):
    """The packed kernel reads float32 only; a carry of another dtype must not reach it (the
    projection still may) and the call computes what it computes without the packed path."""
    cell, p, x, carry = _problem(4, 3, 8, 128)
    carry64 = tuple(c.astype(np.float64) for c in carry)
    y, _, _ = scan_forward(cell, p, x, carry64, keep_cache=False)
    assert calls["rows"] == 0 and calls["cols"] == 0
    y_ref, _ = _reference(cell, p, x, carry)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=2e-5)


@needs_packed
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_after_the_packed_path_ran_still_runs_inference():
    """GNU OpenMP terminates a forked child that starts threads its parent had started; the
    child must fall back to the BLAS loop and compute the same outputs."""
    code = """
import os, numpy as np
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.init import init_cell
from rnnlab.kernels import _packed
from rnnlab.recurrent import scan_forward
cell = LSTMCellConfig(128); rng = np.random.default_rng(0)
p = init_cell(cell, 8, bias=True, dtype=np.float32, rng=rng)
x = rng.standard_normal((4, 3, 8)).astype(np.float32)
carry = (np.zeros((3, 128), np.float32), np.zeros((3, 128), np.float32))
y, _, _ = scan_forward(cell, p, x, carry, keep_cache=False)
assert _packed.usable()
pid = os.fork()
if pid == 0:
    y2, _, _ = scan_forward(cell, p, x, carry, keep_cache=False)
    os._exit(0 if (not _packed.usable() and np.allclose(y, y2, atol=1e-5)) else 3)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"], out.stdout + out.stderr
