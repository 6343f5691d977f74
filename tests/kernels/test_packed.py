"""rnnlab's own packed GEMM and the LSTM's, GRU's and RNN's loops on its threads
(kernels._packed).

The oracle is the reference step functions in float64 (kernels switched off), whose backward
the finite-difference checks of tests/test_gradients cover: the packed path (float32 only)
must match them, forward and backward, at any batch (all six tile heights, batches split
between threads or not), any input width (blocks of KC rows of W and a remainder), padded
rows, reversal, and one or two threads."""

import contextlib
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import rnnlab
from rnnlab.cells.gru import GRUCellConfig
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.cells.rnn import RNNCellConfig
from rnnlab.init import init_cell
from rnnlab import backends, kernels
from rnnlab.kernels import _blas, _packed, _pool, rnn
from rnnlab.recurrent import scan_backward, scan_forward
from tests.helpers import python_output

needs_packed = pytest.mark.skipif(not _packed.AVAILABLE or _blas.threads() is None,
                                  reason="needs numba and NumPy's OpenBLAS found (threadpoolctl)")


class paths:
    """What a call would run now (kernels.path_of, backends.choose), in the words of a test."""

    @staticmethod
    def lstm_packed(B, H, dtype, keep_cache, streaming):
        return kernels.path_of(LSTMCellConfig(H), 50, B, dtype, keep_cache, streaming).forward == "packed"

    @staticmethod
    def lstm_packed_training(B, H, dtype):
        return kernels.path_of(LSTMCellConfig(H), 50, B, dtype, True).backward == "packed"

    @staticmethod
    def projects_packed(T, B, H, dtype, keep_cache):
        return kernels.path_of(LSTMCellConfig(H), T, B, dtype, keep_cache).projection == "packed"

    @staticmethod
    def gru_packed(B, H, dtype, reset_after, streaming):
        return kernels.path_of(GRUCellConfig(H, reset_after=reset_after), 50, B, dtype, False,
                               streaming).forward == "packed"

    @staticmethod
    def rnn_packed(B, H, dtype, streaming):
        return kernels.path_of(RNNCellConfig(H), 50, B, dtype, False, streaming).forward == "packed"


@pytest.fixture(autouse=True)
def one_blas_thread():
    """The packed path runs while NumPy's OpenBLAS runs on one thread, or while its jobs run on
    numba's threads too (_packed.usable); these tests take the first, tests/kernels/test_pool
    the second."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with rnnlab.threads.shared_pool(), threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


@contextlib.contextmanager
def _pools_apart():
    """OpenBLAS's jobs back on its own threads (kernels._pool), for the call inside."""
    was = _pool.shared()
    _pool.share(False)
    try:
        yield
    finally:
        _pool.share(was)


@pytest.fixture
def calls(monkeypatch):
    """Counts of the packed functions' calls, so a test knows the path it checks ran."""
    return _spied(monkeypatch, project="project", rows="lstm_forward", cols="lstm_forward_cols",
                  backward="lstm_backward", cols_backward="lstm_backward_cols")


def _spied(monkeypatch, **functions):
    """{name: calls so far} for each of _packed's `functions` (name=attribute), counted by
    wrapping them for the test."""
    seen = dict.fromkeys(functions, 0)

    def spy(name, fn):
        def wrapped(*args):
            seen[name] += 1
            return fn(*args)
        return wrapped
    for name, attr in functions.items():
        monkeypatch.setattr(_packed, attr, spy(name, getattr(_packed, attr)))
    return seen


def _as64(p):
    return type(p)(**{k: None if v is None else v.astype(np.float64) for k, v in p.items()})


def _reference_steps():
    """The readable step functions instead of the fused kernels, for the call inside."""
    return rnnlab.backend("reference")


def _reference(cell, p, x, carry, lengths=None, reverse=False):
    """The readable steps in float64."""
    with _reference_steps():
        y, final, _ = scan_forward(cell, _as64(p), x.astype(np.float64),
                                   tuple(c.astype(np.float64) for c in carry), lengths=lengths,
                                   reverse=reverse, keep_cache=False)
    return y, final


def _problem(T, B, D, H, seed=0, cell=None):
    rng = np.random.default_rng(seed)
    cell = LSTMCellConfig(H) if cell is None else cell
    p = init_cell(cell, D, bias=True, dtype=np.float32, rng=rng)
    p.b_ih += rng.uniform(-1, 1, p.b_ih.shape).astype(np.float32)   # biases that matter
    p.b_hh += rng.uniform(-1, 1, p.b_hh.shape).astype(np.float32)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    carry = tuple(rng.standard_normal((B, H)).astype(np.float32) for _ in cell.carry_sizes())
    return cell, p, x, carry


@needs_packed
@pytest.mark.parametrize("T,B,D,H", [
    (5, 1, 3, 128),        # one row: the threads split each step's units
    (4, 2, 7, 128),        # one row a thread
    (6, 13, 5, 64),        # 6 + 0 rows and 7 = 6 + 1: tiles of 6 and 1
    (3, 22, 600, 128),     # 11 rows a thread (6 + 5); 600 inputs: KC blocks and a remainder
    (3, 9, 33, 144),       # 4 and 5 rows; 9 panels a gate, split 4 / 5 in the column loop
    (2, 16, 40, 512),      # the largest H the packed loop takes; 8 rows a thread (6 + 2)
    (8, 16, 40, 512),      # 128 rows: the projection packed too at H = 512
    (2, 7, 12, 256),       # 3 and 4 rows
    (3, 5, 9, 528),        # over 512 units: split as units (33 panels a gate, 16 / 17)
    (2, 13, 30, 1024),     # the widest; K = 1024 in two blocks; tiles of 6, 6 and 1 rows
    (2, 17, 30, 1024),     # from 16 rows the tiles prefetch W_hh's next block (_packed.FAR)
    (64, 16, 520, 1024),   # 1024 rows: the projection packed too, prefetching W_ih (8.3 MB)
])
def test_packed_inference_matches_the_reference_steps(T, B, D, H, calls):
    cell, p, x, carry = _problem(T, B, D, H)
    y, final, cache = scan_forward(cell, p, x, carry, keep_cache=False)
    assert cache is None and y.dtype == np.float32
    split = backends.units_split(B, H)
    assert calls["project"] == int(paths.projects_packed(T, B, H, np.float32, False))
    assert calls["cols" if split else "rows"] == 1
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
@pytest.mark.parametrize("N,D,G", [(1, 1, 16), (5, 3, 32), (200, 700, 48), (97, 256, 16),
                                   (40, 600, 4096)])   # W over _packed.FAR: prefetched
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
    assert _packed._streams(wp, N // 2) == (G == 4096)                # each thread's rows
    _packed.project(X, wp, out[1:-1], 2)
    expected = (X.astype(np.float64) @ W.T.astype(np.float64)) * scale
    np.testing.assert_allclose(out[1:-1], expected, rtol=1e-5, atol=1e-4 * np.sqrt(D))
    assert np.isnan(out[0]).all() and np.isnan(out[-1]).all()


@needs_packed
@pytest.mark.parametrize("G,K", [(16, 1), (16, 15), (32, 16), (48, 17), (16, 33), (64, 600)])
def test_pack_lays_w_transposed_and_scaled_into_panels(G, K):
    """pack: panel p holds (W scale)[16 p:16 p + 16, :]^T, (K, 16) contiguous, exactly (one
    product a float): 16 x 16 blocks transposed in registers and the K % 16 columns left."""
    rng = np.random.default_rng(K)
    W = rng.standard_normal((G, K)).astype(np.float32)
    scale = rng.choice([0.5, 1.0, 3.0], G).astype(np.float32)
    out = np.full(G * K + 2, np.nan, np.float32)
    _packed.pack(W, scale, out[1:-1])
    want = (W * scale[:, None]).reshape(G // 16, 16, K).transpose(0, 2, 1).ravel()
    np.testing.assert_array_equal(out[1:-1], want)
    assert np.isnan(out[0]) and np.isnan(out[-1])                      # nothing outside


@needs_packed
def test_packed_takes_w_in_any_layout():
    """packed() copies a W that is not C-contiguous (a strided view, Fortran order) first."""
    rng = np.random.default_rng(1)
    W = rng.standard_normal((32, 40)).astype(np.float32)
    want = _packed.packed(W)
    np.testing.assert_array_equal(_packed.packed(np.asfortranarray(W)), want)
    wide = np.zeros((32, 80), np.float32)
    wide[:, ::2] = W
    np.testing.assert_array_equal(_packed.packed(wide[:, ::2]), want)


@needs_packed
@pytest.mark.parametrize("G,K", [(16, 16), (32, 48), (64, 256), (48, 1024)])
def test_dots_adds_sixteen_scaled_rows_of_w_times_h(G, K):
    """_dots: a[r0:r0+16] += s (W h) over those rows, W read in place (each row's 16 lanes
    summed across in 4 stages), against float64; nothing else of a is written."""
    from numba import njit

    @njit
    def rows(W, h, s, a):
        for r in range(0, W.shape[0], 16):
            _packed._dots(W, h, s, a[1:-1], r)

    rng = np.random.default_rng(K)
    W = rng.standard_normal((G, K)).astype(np.float32)
    h, s = rng.standard_normal(K).astype(np.float32), rng.choice([0.5, 1.0, 3.0], G).astype(np.float32)
    a = np.full(G + 2, np.nan, np.float32)
    a[1:-1] = rng.standard_normal(G)
    want = a[1:-1].astype(np.float64) + s * (W.astype(np.float64) @ h)
    rows(W, h, s, a)
    np.testing.assert_allclose(a[1:-1], want, rtol=0, atol=4e-7 * np.sqrt(K) * np.abs(want).max())
    assert np.isnan(a[0]) and np.isnan(a[-1])


@needs_packed
@pytest.mark.parametrize("B,H", [(1, 128), (1, 528), (1, 1024), (2, 256)])
def test_the_batch_of_one_forward_reads_w_hh_in_place(B, H, monkeypatch):
    """At B = 1 below H = 1024 (lstm.in_place) the units-split forward reads W_hh (4H, H) as
    the cell stores it (_dots); elsewhere packed. Both against the reference steps."""
    seen = []
    cols, rows = _packed.lstm_forward_cols, _packed.lstm_forward

    def spy(loop):
        def wrapped(XP, W, *rest):
            seen.append(W.ndim)
            return loop(XP, W, *rest)
        return wrapped
    monkeypatch.setattr(_packed, "lstm_forward_cols", spy(cols))
    monkeypatch.setattr(_packed, "lstm_forward", spy(rows))
    cell, p, x, carry = _problem(4, B, 9, H)
    y, final, _ = scan_forward(cell, p, x, carry, keep_cache=False)
    assert seen == [2 if backends.in_place(B, H) else 1]
    y_ref, final_ref = _reference(cell, p, x, carry)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=2e-5)
    for f, f_ref in zip(final, final_ref):
        np.testing.assert_allclose(f, f_ref, rtol=0, atol=2e-5)


@needs_packed
def test_threads_meeting_at_the_spin_barrier_see_each_others_writes():
    """_meet: after each meeting every thread reads what the others wrote before it, 2000
    times over (without the barrier the reads race ahead of the writes)."""
    import numba
    from numba import njit, prange
    n = numba.get_num_threads()
    if n < 2 or not _packed.meets(n):
        pytest.skip("needs two or more of numba's threads on the shared pool (_packed.meets)")

    @njit(parallel=True)
    def rounds(seen, T, nthreads):
        sync = np.zeros(2 * _packed._LINE, dtype=np.int64)
        board = np.zeros((2, nthreads), dtype=np.int64)
        for w in prange(nthreads):
            for t in range(T):
                board[t % 2, w] = t + 1                        # this round's mark
                _packed._meet(sync, nthreads)
                for v in range(nthreads):                      # everyone's mark, this round
                    seen[w, t] += board[t % 2, v] == t + 1
                _packed._meet(sync, nthreads)                  # all read before the next writes

    T = 2000
    seen = np.zeros((n, T), dtype=np.int64)
    rounds(seen, T, n)
    assert (seen == n).all()


@needs_packed
def test_which_calls_take_the_packed_loop():
    f32 = np.float32
    assert paths.lstm_packed(32, 256, f32, keep_cache=False, streaming=False)
    assert paths.lstm_packed(1, 128, f32, keep_cache=False, streaming=False)
    assert paths.lstm_packed(32, 256, f32, keep_cache=True, streaming=False)       # training
    assert paths.lstm_packed_training(2, 64, f32)
    assert paths.lstm_packed(1, 128, f32, keep_cache=True, streaming=False)        # units split
    assert paths.lstm_packed_training(1, 128, f32)
    assert not paths.lstm_packed(1, 64, f32, keep_cache=True, streaming=False)     # B = 1, small
    assert not paths.lstm_packed_training(1, 64, f32)
    assert not paths.lstm_packed_training(32, 256, np.float64)
    assert paths.lstm_packed_training(32, 1024, f32)                                     # wide
    assert paths.lstm_packed(128, 1024, f32, keep_cache=False, streaming=False)
    assert paths.lstm_packed(1, 528, f32, keep_cache=True, streaming=False)
    assert backends.units_split(1, 256) and backends.units_split(128, 528) and not backends.units_split(128, 512)
    assert backends.in_place(1, 128) and backends.in_place(1, 1008)                        # W_hh as it is
    assert not backends.in_place(1, 1024) and not backends.in_place(2, 256)
    assert paths.projects_packed(1, 1, 256, f32, keep_cache=False)
    assert paths.projects_packed(4, 32, 512, f32, keep_cache=False)                 # 128 rows
    assert not paths.projects_packed(50, 1, 512, f32, keep_cache=False)             # OpenBLAS's
    assert paths.projects_packed(32, 32, 1024, f32, keep_cache=False)               # 1024 rows
    assert not paths.projects_packed(31, 32, 1024, f32, keep_cache=False)           # OpenBLAS's
    assert not paths.projects_packed(200, 1, 1024, f32, keep_cache=False)
    assert not paths.lstm_packed_training(32, 1040, f32)
    assert paths.lstm_packed(32, 1000, f32, keep_cache=False, streaming=False)      # padded to 1008
    assert not paths.lstm_packed(32, 1024, np.float64, keep_cache=True, streaming=False)
    assert not paths.lstm_packed(32, 256, f32, keep_cache=False, streaming=True)   # Stream
    assert not paths.lstm_packed(32, 256, np.float64, keep_cache=False, streaming=False)
    assert paths.lstm_packed(32, 100, f32, keep_cache=False, streaming=False)       # padded to 112
    assert not paths.lstm_packed(32, 1024, f32, keep_cache=False, streaming=True)
    assert not paths.lstm_packed(4, 64, f32, keep_cache=False, streaming=False)    # tiny
    assert not paths.lstm_packed(128, 32, f32, keep_cache=False, streaming=False)  # H < 64
    assert not paths.lstm_packed_training(128, 48, f32)


@needs_packed
def test_nothing_takes_it_while_openblas_runs_its_own_two_threads(calls):
    """Two thread pools on two cores slow each other (see _packed.usable): with the pools apart
    and OpenBLAS on two threads, inference and training run the BLAS loops and compute the
    same."""
    import threadpoolctl
    problem = _gradient_problem(4, 6, 5, 128)
    one = _training(*problem)
    with threadpoolctl.threadpool_limits(2, user_api="blas"), _pools_apart():
        assert _blas.threads() == 2 and not _packed.usable()
        assert not paths.lstm_packed(32, 256, np.float32, keep_cache=False, streaming=False)
        assert not paths.lstm_packed_training(32, 256, np.float32)
        assert not paths.lstm_packed_training(32, 1024, np.float32)                   # `wide` too
        two = _training(*problem)
    assert calls == {"project": 1, "rows": 1, "cols": 0, "backward": 1,   # the first call's
                     "cols_backward": 0}
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * (1 + np.abs(b).max()))


@needs_packed
def test_float64_calls_and_training_at_batch_one_below_128_units_do_not_take_it(calls):
    cell, p, x, carry = _problem(3, 8, 5, 128)
    p64 = _as64(p)
    x64, carry64 = x.astype(np.float64), tuple(c.astype(np.float64) for c in carry)
    scan_forward(cell, p64, x64, carry64, keep_cache=False)
    _, _, sc = scan_forward(cell, p64, x64, carry64, keep_cache=True)
    scan_backward(cell, p64, sc, np.ones((3, 8, 128)), carry64)
    cell, p, x, carry = _problem(3, 1, 5, 64)
    _, _, sc = scan_forward(cell, p, x, carry, keep_cache=True)
    scan_backward(cell, p, sc, np.ones((3, 1, 64), np.float32), carry)
    assert calls == {"project": 0, "rows": 0, "cols": 0, "backward": 0, "cols_backward": 0}


def _training(cell, p, x, carry, dY, dcarry, lengths=None, reverse=False):
    """Outputs, final carry, dx, d initial carry and parameter grads of one forward and
    backward."""
    y, final, sc = scan_forward(cell, p, x, carry, lengths=lengths, reverse=reverse, keep_cache=True)
    final = [f.copy() for f in final]                  # before the backward may reuse them
    dx, dc, grads = scan_backward(cell, p, sc, dY, dcarry)
    return [y, *final, dx, *dc, *(g for _, g in grads.items())]


def _training_reference(cell, p, x, carry, dY, dcarry, lengths=None, reverse=False):
    with _reference_steps():
        return _training(cell, _as64(p), x.astype(np.float64), tuple(c.astype(np.float64) for c in carry),
                         dY.astype(np.float64), tuple(d.astype(np.float64) for d in dcarry),
                         lengths=lengths, reverse=reverse)


def _assert_close_to(got, want):
    """float32 against float64, to a tolerance that scales with each array's size."""
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=0, atol=2e-5 * (1 + np.abs(w).max()))


def _gradient_problem(T, B, D, H, seed=0, cell=None):
    cell, p, x, carry = _problem(T, B, D, H, seed, cell)
    rng = np.random.default_rng(seed + 100)
    dY = rng.standard_normal((T, B, H)).astype(np.float32)
    dcarry = tuple(rng.standard_normal((B, H)).astype(np.float32) for _ in carry)
    return cell, p, x, carry, dY, dcarry


@needs_packed
@pytest.mark.parametrize("T,B,D,H", [
    (4, 2, 7, 128),        # one row a thread
    (6, 13, 5, 64),        # 6 + 0 rows and 7 = 6 + 1: tiles of 6 and 1
    (3, 22, 600, 128),     # 11 rows a thread; 600 inputs: KC blocks of W_ih
    (3, 9, 33, 144),       # 4 and 5 rows; dA W_hh over K = 576, one block and a remainder
    (2, 16, 40, 512),      # K = 2048 in four blocks
    (8, 16, 40, 512),      # 128 rows: the projection packed too at H = 512
    (5, 1, 3, 128),        # one row: the threads split each step's units, both ways
    (4, 1, 600, 144),      # 9 panels, split 4 / 5; K = 576
    (1, 1, 40, 512),       # one step: no share of the gradients waits for the next
    (3, 7, 9, 528),        # over 512 units: split as units at any batch
    (2, 3, 20, 1024),      # the widest; da W_hh over K = 4096 in 8 blocks
    (2, 16, 20, 1024),     # tiles of 6, 6 and 4 rows, prefetching W's next block
])
def test_packed_training_matches_the_reference_gradients(T, B, D, H, calls):
    problem = _gradient_problem(T, B, D, H)
    got = _training(*problem)
    rows = int(not backends.units_split(B, H))
    projects = paths.projects_packed(T, B, H, np.float32, True)
    assert calls == {"project": int(projects), "rows": rows, "cols": 1 - rows, "backward": rows,
                     "cols_backward": 1 - rows}
    _assert_close_to(got, _training_reference(*problem))


@needs_packed
@pytest.mark.parametrize("B,splits,spin", [(1, 2, False), (1, 2, True), (3, 2, True), (4, 3, False),
                                           (5, 1, False)])
def test_the_units_split_backward_computes_what_the_rows_split_one_does(B, splits, spin):
    """lstm_backward_cols at any batch, its units split 1-3 ways (a parallel region a step, on
    numba's threads however many; or one region whose threads meet at the spin barrier, where
    _packed.meets), against lstm_backward (which the tests above hold to the reference): the
    gate gradients in A, dh and dc, with held rows."""
    if spin and not _packed.meets(splits):
        pytest.skip(f"the spin barrier needs {splits} of numba's threads on the shared pool")
    T, H = 6, 144
    rng = np.random.default_rng(B)
    A = rng.uniform(0.05, 0.95, (T, B, 4 * H)).astype(np.float32)      # activated gates
    A[:, :, 2 * H:3 * H] = rng.uniform(-0.9, 0.9, (T, B, H))
    TCS, CS, dY = (rng.standard_normal((T, B, H)).astype(np.float32) for _ in range(3))
    TCS = np.tanh(TCS)
    w = rng.standard_normal((4 * H, H)).astype(np.float32) * 0.1
    dh, dc = (rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    held = rng.random((T, B)) < 0.3
    wp = _packed.packed_rows(w)
    got, want = [A.copy(), dh.copy(), dc.copy()], [A.copy(), dh.copy(), dc.copy()]
    _packed.lstm_backward_cols(got[0], TCS, CS, wp, dY, got[1], got[2], held, splits, spin)
    _packed.lstm_backward(want[0], TCS, CS, wp, dY, want[1], want[2], held, 2)
    for g, w_ in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w_, rtol=0, atol=1e-5 * (1 + np.abs(w_).max()))


@needs_packed
@pytest.mark.parametrize("B", [1, 5])
@pytest.mark.parametrize("reverse", [False, True])
def test_padded_rows_pass_their_carry_gradients_on(B, reverse, calls):
    """Backwards, a row past its length feeds nothing into the step and passes dh, dc on."""
    _padded_training_matches_the_reference([7, 3, 1, 5, 6] if B > 1 else [4], reverse, 128)
    assert calls["backward" if B > 1 else "cols_backward"] == 1


@needs_packed
@pytest.mark.parametrize("spin", [True, False])
@pytest.mark.parametrize("lengths,H", [([4], 128), ([7, 2, 5], 528)])
def test_the_units_split_loops_meet_at_a_spin_barrier_or_a_region_a_step(spin, lengths, H,
                                                                         monkeypatch, calls):
    """The units-split loops (B = 1, H > 512) with their threads meeting at the spin barrier
    (one parallel region, where _packed.meets) and a region a step: the same gradients as the
    reference steps, padded rows held."""
    import numba
    meets = _packed.meets(numba.get_num_threads())
    if spin and not meets:
        pytest.skip("the spin barrier needs numba's threads on the shared pool")
    seen = []

    def decided(nthreads):                                     # the way this case meets
        seen.append(spin and meets)
        return seen[-1]
    monkeypatch.setattr(_packed, "meets", decided)
    _padded_training_matches_the_reference(lengths, False, H)
    assert calls["cols"] == calls["cols_backward"] == 1 and seen == [spin, spin]


def _padded_training_matches_the_reference(lengths, reverse, H, cell=None):
    """One training call (T = 7, D = 4, a batch row per length) against the reference steps."""
    problem = _gradient_problem(7, len(lengths), 4, H, seed=5, cell=cell)
    lengths = np.array(lengths)
    got = _training(*problem, lengths=lengths, reverse=reverse)
    _assert_close_to(got, _training_reference(*problem, lengths=lengths, reverse=reverse))


@needs_packed
@pytest.mark.parametrize("B", [1, 11])
def test_one_thread_computes_the_gradients_two_compute(B, calls):
    import numba
    problem = _gradient_problem(5, B, 20, 128, seed=6)
    two = _training(*problem)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = _training(*problem)
    finally:
        numba.set_num_threads(before)
    assert calls["backward" if B > 1 else "cols_backward"] == 2
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * (1 + np.abs(b).max()))


def test_the_backend_below_packed_turns_it_off():
    code = ("from rnnlab.kernels import _packed; import rnnlab\nwith rnnlab.threads.shared_pool():\n"
            "    print(_packed.usable())\n    with rnnlab.backend('packed'): print(_packed.usable())")
    assert python_output(code, RNNLAB_BACKEND="compiled", OPENBLAS_NUM_THREADS="1") == ["False", "True"]


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
import os, numpy as np, rnnlab
POOL = rnnlab.threads.shared_pool(); POOL.__enter__()
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.init import init_cell
from rnnlab.kernels import _packed
from rnnlab.recurrent import scan_backward, scan_forward
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
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"], out.stdout + out.stderr


@needs_packed
@pytest.mark.parametrize("H,lengths", [(64, [9, 4, 7, 1, 8]),    # rows split
                                       (128, [6])])              # one row: units split
def test_a_deep_bidirectional_torch_lstm_trains_the_same_on_the_packed_path(H, lengths, calls):
    """torch.nn.LSTM's autograd as the oracle for the training path: two layers, both
    directions, variable lengths; dx, the initial states' and every parameter's gradient."""
    torch = pytest.importorskip("torch")
    import rnnlab
    torch.manual_seed(1)
    tm = torch.nn.LSTM(20, H, num_layers=2, bidirectional=True)
    net = rnnlab.LSTM(20, H, num_layers=2, bidirectional=True, dtype=np.float32, rng=0)
    net.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(2)
    T, B = 9, len(lengths)
    x = rng.standard_normal((T, B, 20)).astype(np.float32)
    hx = tuple(rng.standard_normal((4, B, H)).astype(np.float32) for _ in range(2))
    lengths = np.array(lengths)
    xt = torch.tensor(x, requires_grad=True)
    hxt = tuple(torch.tensor(h, requires_grad=True) for h in hx)
    out_t, st_t = tm(torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False), hxt)
    out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, total_length=T)
    out, st = net(x, hx, lengths=lengths)
    g_out = rng.standard_normal(out.shape).astype(np.float32)
    g_st = tuple(rng.standard_normal(s.shape).astype(np.float32) for s in st)
    ((out_t * torch.tensor(g_out)).sum() + sum((s * torch.tensor(g)).sum() for s, g in zip(st_t, g_st))).backward()
    dx, dhx = net.backward(g_out, g_st)
    loops = ("rows", "backward") if B > 1 else ("cols", "cols_backward")
    assert calls[loops[0]] == 4 and calls[loops[1]] == 4     # 2 layers x 2 directions

    def close(ours, theirs):
        theirs = theirs.detach().numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
    close(out, out_t)
    close(dx, xt.grad)
    for a, b in zip(dhx, hxt):
        close(a, b.grad)
    for k, p in tm.named_parameters():
        close(net.grads[k], p.grad)


@pytest.fixture
def gru_calls(monkeypatch):
    """Counts of the GRU's packed loops' calls."""
    return _spied(monkeypatch, forward="gru_forward", backward="gru_backward")


@needs_packed
@pytest.mark.parametrize("T,B,D,H", [
    (4, 2, 7, 128),        # one row a thread
    (6, 13, 5, 64),        # 6 + 0 rows and 7 = 6 + 1: tiles of 6 and 1
    (3, 22, 600, 128),     # 11 rows a thread (6 + 5); dhp W_hh over K = 384
    (3, 9, 33, 176),       # 4 and 5 rows; K = 528: one KC block and a remainder
    (2, 16, 40, 512),      # K = 1536 in three blocks
    (2, 5, 12, 528),       # over 512: the rows split still (2 and 3 rows)
    (2, 34, 20, 1024),     # the widest (W_hh 12 MB): 17 rows a thread, prefetching W_hh
])
def test_packed_gru_matches_the_reference_steps(T, B, D, H, gru_calls):
    """The reset-after GRU's packed loops against the readable steps in float64: inference,
    then a training forward and backward (outputs, dx, dh0 and every parameter's gradient)."""
    problem = _gradient_problem(T, B, D, H, cell=GRUCellConfig(H))
    cell, p, x, carry = problem[:4]
    assert _packed._streams(np.empty(3 * H * H, np.float32), B // 2) == (H == 1024)  # prefetched
    y, final, _ = scan_forward(cell, p, x, carry, keep_cache=False)
    assert gru_calls == {"forward": 1, "backward": 0}
    y_ref, final_ref = _reference(cell, p, x, carry)
    _assert_close_to([y, *final], [y_ref, *final_ref])
    got = _training(*problem)
    assert gru_calls == {"forward": 2, "backward": 1}
    _assert_close_to(got, _training_reference(*problem))


@needs_packed
@pytest.mark.parametrize("reverse", [False, True])
def test_packed_gru_rows_past_their_length_hold_and_pass_their_gradient_on(reverse, gru_calls):
    _padded_training_matches_the_reference([7, 3, 1, 5, 6], reverse, 128, GRUCellConfig(128))
    assert gru_calls == {"forward": 1, "backward": 1}


@needs_packed
def test_which_gru_calls_take_the_packed_loop(gru_calls):
    f32 = np.float32
    assert paths.gru_packed(2, 64, f32, reset_after=True, streaming=False)
    assert paths.gru_packed(128, 512, f32, reset_after=True, streaming=False)
    assert not paths.gru_packed(1, 256, f32, reset_after=True, streaming=False)      # B = 1
    assert not paths.gru_packed(32, 256, f32, reset_after=False, streaming=False)    # the paper's
    assert not paths.gru_packed(32, 256, f32, reset_after=True, streaming=True)      # Stream
    assert not paths.gru_packed(32, 256, np.float64, reset_after=True, streaming=False)
    assert paths.gru_packed(32, 100, f32, reset_after=True, streaming=False)         # padded to 112
    assert paths.gru_packed(32, 1024, f32, reset_after=True, streaming=False)
    assert not paths.gru_packed(32, 1040, f32, reset_after=True, streaming=False)     # H > 1024
    assert not paths.gru_packed(128, 32, f32, reset_after=True, streaming=False)     # H < 64
    problem = _gradient_problem(3, 4, 5, 64, cell=GRUCellConfig(64, reset_after=False))
    got = _training(*problem)                                   # reset-before: the steps
    assert gru_calls == {"forward": 0, "backward": 0}
    _assert_close_to(got, _training_reference(*problem))


def _trains_as_torch(kind: str, calls: dict, **options) -> None:
    """torch.nn.<kind>'s autograd as the oracle: two layers, both directions, variable lengths;
    outputs, dx, the initial state's and every parameter's gradient, each of the 4 layer
    directions on the packed loops (`calls`)."""
    torch = pytest.importorskip("torch")
    import rnnlab
    torch.manual_seed(3)
    tm = getattr(torch.nn, kind)(20, 64, num_layers=2, bidirectional=True, **options)
    net = getattr(rnnlab, kind)(20, 64, num_layers=2, bidirectional=True, dtype=np.float32, rng=0,
                                **options)
    net.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(4)
    T, B = 9, 5
    x = rng.standard_normal((T, B, 20)).astype(np.float32)
    h0 = rng.standard_normal((4, B, 64)).astype(np.float32)
    lengths = np.array([9, 4, 7, 1, 8])
    xt, h0t = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    out_t, hn_t = tm(torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False), h0t)
    out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, total_length=T)
    out, hn = net(x, h0, lengths=lengths)
    g_out = rng.standard_normal(out.shape).astype(np.float32)
    g_hn = rng.standard_normal(hn.shape).astype(np.float32)
    ((out_t * torch.tensor(g_out)).sum() + (hn_t * torch.tensor(g_hn)).sum()).backward()
    dx, dh0 = net.backward(g_out, g_hn)
    assert calls == {"forward": 4, "backward": 4}           # 2 layers x 2 directions

    def close(ours, theirs):
        theirs = theirs.detach().numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
    close(out, out_t)
    close(hn, hn_t)
    close(dx, xt.grad)
    close(dh0, h0t.grad)
    for k, p in tm.named_parameters():
        close(net.grads[k], p.grad)


@needs_packed
def test_a_deep_bidirectional_torch_gru_trains_the_same_on_the_packed_path(gru_calls):
    _trains_as_torch("GRU", gru_calls)


@pytest.fixture
def rnn_calls(monkeypatch):
    """Counts of the RNN's packed loops' calls (the backward: one a chunk of steps)."""
    return _spied(monkeypatch, forward="rnn_forward", backward="rnn_backward")


@needs_packed
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("T,B,D,H,chunks", [
    (4, 2, 7, 128, 1),     # one row a thread
    (6, 13, 5, 64, 1),     # 6 + 0 rows and 7 = 6 + 1: tiles of 6 and 1
    (3, 22, 600, 128, 1),  # 11 rows a thread (6 + 5)
    (3, 9, 33, 176, 1),    # 4 and 5 rows; 11 panels
    (70, 40, 3, 64, 2),    # T B = 2800 rows: two chunks of 35 steps
    (2, 16, 40, 512, 1),   # K = 512, one block
    (2, 7, 20, 1024, 1),   # the widest: K = 1024 in two blocks, 3 and 4 rows
])
def test_packed_rnn_matches_the_reference_steps(nonlinearity, T, B, D, H, chunks, rnn_calls):
    """The RNN's packed loops against the readable steps in float64: inference, then a
    training forward and backward (outputs, dx, dh0 and every parameter's gradient), the
    backward one loop a chunk of steps."""
    cell = RNNCellConfig(H, nonlinearity)
    problem = _gradient_problem(T, B, D, H, cell=cell)
    _, p, x, carry = problem[:4]
    y, final, _ = scan_forward(cell, p, x, carry, keep_cache=False)
    assert rnn_calls == {"forward": 1, "backward": 0}
    y_ref, final_ref = _reference(cell, p, x, carry)
    _assert_close_to([y, *final], [y_ref, *final_ref])
    got = _training(*problem)
    assert rnn_calls == {"forward": 2, "backward": chunks}
    _assert_close_to(got, _training_reference(*problem))


@needs_packed
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("reverse", [False, True])
def test_packed_rnn_rows_past_their_length_hold_and_pass_their_gradient_on(nonlinearity, reverse,
                                                                          rnn_calls, monkeypatch):
    """Padded rows across chunks of 2 steps (the last chunk of 1)."""
    monkeypatch.setattr(rnn.Backward, "CHUNK_ROWS", 10)
    _padded_training_matches_the_reference([7, 3, 1, 5, 6], reverse, 64,
                                           RNNCellConfig(64, nonlinearity))
    assert rnn_calls == {"forward": 1, "backward": 4}


@needs_packed
def test_which_rnn_calls_take_the_packed_loop(rnn_calls):
    f32 = np.float32
    assert paths.rnn_packed(2, 64, f32, streaming=False)
    assert paths.rnn_packed(128, 512, f32, streaming=False)
    assert not paths.rnn_packed(1, 256, f32, streaming=False)          # B = 1
    assert not paths.rnn_packed(32, 256, f32, streaming=True)          # Stream
    assert not paths.rnn_packed(32, 256, np.float64, streaming=False)
    assert paths.rnn_packed(32, 100, f32, streaming=False)             # padded to 112
    assert paths.rnn_packed(32, 1024, f32, streaming=False)
    assert not paths.rnn_packed(32, 1040, f32, streaming=False)        # H > 1024
    assert not paths.rnn_packed(128, 48, f32, streaming=False)         # H < 64
    problem = _gradient_problem(3, 1, 5, 64, cell=RNNCellConfig(64))
    got = _training(*problem)                                   # B = 1: the steps
    assert rnn_calls == {"forward": 0, "backward": 0}
    _assert_close_to(got, _training_reference(*problem))


@needs_packed
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_a_deep_bidirectional_torch_rnn_trains_the_same_on_the_packed_path(nonlinearity, rnn_calls):
    _trains_as_torch("RNN", rnn_calls, nonlinearity=nonlinearity)


@needs_packed
def test_the_packed_kernels_compile_and_agree_on_a_cpu_without_avx(tmp_path):
    """The IR is written for <16 x float> vectors and LLVM lowers it to whatever the CPU has:
    compiled for a generic x86-64 (SSE2, no AVX) or another machine, the packed loops must
    still compute the reference's numbers (forced here with NUMBA_CPU_NAME=generic)."""
    code = """
import numpy as np, rnnlab
rng = np.random.default_rng(0)
x = rng.standard_normal((7, 8, 64)).astype(np.float32)
out = {}
for level in ("reference", "packed"):
    with rnnlab.threads.shared_pool():
        net = rnnlab.LSTM(64, 64, rng=0, backend=level)
        plan = net.plan(x)
        y, _ = net(x)
        dx, _ = net.backward(np.ones_like(y))
        out[level] = (y, dx, net.grads["weight_hh_l0"])
print(plan.forward.startswith("packed"),
      all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(out["packed"], out["reference"])))
"""
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp_path), OPENBLAS_NUM_THREADS="1")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        env.pop("NUMBA_CPU_NAME")                       # elsewhere: the host's own CPU is the test
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["True", "True"]
