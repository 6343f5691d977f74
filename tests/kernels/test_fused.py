"""The fused kernels against the reference step functions they replace."""

import numpy as np
import pytest

import rnnlab
from rnnlab import GRU, LSTM, backends, kernels
from rnnlab.cells.gru import GRUCellConfig
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.cells.rnn import RNNCellConfig
from rnnlab.init import init_cell
from rnnlab.kernels import _jit, lstm, rnn  # noqa: F401 (kernels.lstm, kernels.rnn below)
from rnnlab.recurrent import input_projection, scan_backward, scan_forward
from tests.helpers import backward_loop_gemms

CELLS = {
    "rnn_tanh": RNNCellConfig(5),
    "rnn_relu": RNNCellConfig(5, "relu"),
    "lstm": LSTMCellConfig(5),
    "gru_after": GRUCellConfig(5),
    "gru_before": GRUCellConfig(5, reset_after=False),
    "gru_after_nobias": GRUCellConfig(5),
    "lstm_nobias": LSTMCellConfig(5),
}


needs_numba = pytest.mark.skipif(not _jit.AVAILABLE, reason="numba not installed")
MODES = ["numpy", pytest.param("jit", marks=needs_numba), pytest.param("jit-blas", marks=needs_numba),
         pytest.param("jit-steps", marks=needs_numba)]


def run(cell, p, x, carry, lengths, reverse, dY, dcarry, mode: str, monkeypatch=None):
    """mode: "reference" (the cells' step functions), "numpy" or "jit" (the fused kernels with
    their elementwise passes in NumPy or compiled; at these small batches the LSTM's forward
    runs as one compiled loop with its own matmul, its backward as one calling NumPy's BLAS),
    "jit-blas" (the LSTM's forward too calls BLAS from its compiled loop), "jit-steps"
    (compiled passes, BLAS steps from Python)."""
    reference = mode == "reference"
    skipped = {"jit-blas": ("own",), "jit-steps": ("own", "blas")}.get(mode, ())
    level = {"reference": "reference", "numpy": "numpy"}.get(mode, "compiled")
    with rnnlab.backend(level), backends.without(*skipped):
        XP = np.zeros((x.shape[0], x.shape[1], cell.gates * cell.hidden_size), dtype=x.dtype)
        fused = kernels.forward_kernel(cell, p, XP, carry, True) is not None
        assert fused != reference                     # the reference runs the cells' own steps
        y, final, sc = scan_forward(cell, p, x, carry, lengths, reverse)
        y_inf, final_inf, _ = scan_forward(cell, p, x, carry, lengths, reverse, keep_cache=False)
        saved = (tuple(c.copy() for c in sc.caches), sc.mask)   # before a backward may reuse them
        dx, d0, g = scan_backward(cell, p, sc, dY, dcarry)
    return y, final, saved, y_inf, final_inf, dx, d0, g


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("lengths", [None, [1.0, 0.2, 0.5, 0]], ids=["dense", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("T", [6, 17])          # 17: the steps read a contiguous W_hh^T (B >= 2)
def test_fused_matches_reference(name, lengths, reverse, dtype, tol, mode, T, monkeypatch):
    cell = CELLS[name]
    rng = np.random.default_rng(3)
    B, D = 4, 3
    lengths = None if lengths is None else [round(f * T) for f in lengths]   # a share of T each
    p = init_cell(cell, D, bias="nobias" not in name, dtype=dtype, rng=rng)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    carry = tuple(rng.standard_normal((B, n)).astype(dtype) for n in cell.carry_sizes())
    dY = rng.standard_normal((T, B, cell.output_size)).astype(dtype)
    dcarry = tuple(rng.standard_normal((B, n)).astype(dtype) for n in cell.carry_sizes())
    lens = None if lengths is None else np.array(lengths)
    ref = run(cell, p, x, carry, lens, reverse, dY, dcarry, "reference")
    fast = run(cell, p, x, carry, lens, reverse, dY, dcarry, mode, monkeypatch)
    if mode != "numpy" and backends.family(cell) == "lstm":   # which compiled loops ran
        skipped = {"jit-blas": ("own",), "jit-steps": ("own", "blas")}.get(mode, ())
        with rnnlab.backend("compiled"), backends.without(*skipped):
            way = kernels.path_of(cell, T, B, dtype, True)
        assert (way.forward, way.backward) == {"jit": ("own", "blas"), "jit-blas": ("blas", "blas"),
                                               "jit-steps": ("steps", "steps")}[mode]
    assert kernels.forward_kernel(cell, p, np.zeros((T, B, cell.gates * 5), dtype), carry, True) is not None
    _assert_same(fast, ref, tol, "nobias" in name, lens, T, B)


def _assert_same(fast, ref, tol, nobias, lens, T, B):
    """run()'s results from a fused path against the reference's."""
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    for k in (0, 3):                                  # outputs, with and without caches
        close(fast[k], ref[k])
    for k in (1, 4, 6):                               # final carries, d initial carry
        for a, b in zip(fast[k], ref[k]):
            close(a, b)
    close(fast[5], ref[5])                            # dx
    for f in ("w_ih", "w_hh", "b_ih", "b_hh"):
        a, b = getattr(fast[7], f), getattr(ref[7], f)
        assert (a is None) == (b is None) == (f.startswith("b") and nobias)
        if a is not None:
            close(a, b)
    valid = np.ones((T, B), bool) if lens is None else fast[2][1][..., 0]
    for a, b in zip(fast[2][0], ref[2][0]):   # same cache layout at every valid step
        assert a.shape == b.shape
        close(a[valid], b[valid])


@needs_numba
@pytest.mark.parametrize("B,lengths", [(1, None), (1, [4]), (3, [6, 2, 0])])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)], ids=["f64", "f32"])
def test_the_lstm_backward_below_the_blas_loops_batch_runs_its_own_matmul(B, lengths, reverse, dtype,
                                                                         tol, monkeypatch):
    """Below the BLAS loop's 4 rows the backward runs as one compiled loop with its own matmul
    (lstm_backward_loop with gemm None), as the forward does, not step by step."""
    cell = CELLS["lstm"]
    rng = np.random.default_rng(5)
    T, D = 6, 3
    p = init_cell(cell, D, bias=True, dtype=dtype, rng=rng)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    carry = tuple(rng.standard_normal((B, 5)).astype(dtype) for _ in range(2))
    dY = rng.standard_normal((T, B, 5)).astype(dtype)
    dcarry = tuple(rng.standard_normal((B, 5)).astype(dtype) for _ in range(2))
    lens = None if lengths is None else np.array(lengths)
    gemms = backward_loop_gemms(monkeypatch)
    ref = run(cell, p, x, carry, lens, reverse, dY, dcarry, "reference")
    fast = run(cell, p, x, carry, lens, reverse, dY, dcarry, "jit", monkeypatch)
    assert gemms == [None]
    _assert_same(fast, ref, tol, False, lens, T, B)


def test_each_backward_follows_either_forward():
    """A fused forward's cache feeds the reference backward (state-gradient hooks) and back."""
    cell = LSTMCellConfig(4)
    rng = np.random.default_rng(0)
    p = init_cell(cell, 3, bias=True, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 2, 3))
    carry = (np.zeros((2, 4)), np.zeros((2, 4)))
    dY = rng.standard_normal((5, 2, 4))
    _, _, sc = scan_forward(cell, p, x, carry, np.array([5, 3]))
    seen = []
    dx_hook, _, g_hook = scan_backward(cell, p, sc, dY, carry, on_state_grad=lambda t, d: seen.append(t))
    dx, _, g = scan_backward(cell, p, sc, dY, carry)
    assert seen == [4, 3, 2, 1, 0]
    np.testing.assert_allclose(dx_hook, dx, atol=1e-13)
    np.testing.assert_allclose(g_hook.w_hh, g.w_hh, atol=1e-13)


@needs_numba
@pytest.mark.parametrize("H,B,T,copied", [(300, 1, 20, False), (300, 2, 15, False),
                                           (300, 2, 16, True), (6, 1, 4, True)])
def test_the_lstm_steps_read_w_hh_transposed_as_a_view_or_a_contiguous_copy(H, B, T, copied):
    """A GEMV at B = 1 reads W_hh^T in place, and few steps do not repay a copy; from B = 2 over
    16 steps, and in the compiled small-batch loop (H = 6), the steps read a contiguous copy of
    W_hh^T, which OpenBLAS packs faster (kernels._buffers.step_weights). The input projections
    become the gates in place either way."""
    cell = LSTMCellConfig(H)
    p = init_cell(cell, 3, bias=True, dtype=np.float32, rng=np.random.default_rng(0))
    XP = np.zeros((T, B, 4 * H), np.float32)
    carry = (np.zeros((B, H), np.float32), np.zeros((B, H), np.float32))
    for keep in (True, False):
        XP[:] = 0                                     # the inputs: zero pre-activations
        kern = kernels.forward_kernel(cell, p, XP, carry, keep_cache=keep)
        assert kern.w.shape == (H, 4 * H) and np.array_equal(kern.w, p.w_hh.T)
        if not _jit.enabled():
            continue                                  # the NumPy step reads a scaled view
        assert np.shares_memory(kern.w, p.w_hh) != copied
        assert kern.w.flags.c_contiguous == copied
        kern.run(None, None)
        assert np.shares_memory(kern.caches()[2], XP)
        sig = np.concatenate([XP[..., :2 * H], XP[..., 3 * H:]], axis=-1)   # i, f, o: s(0)
        assert np.all(sig == 0.5) and np.all(XP[..., 2 * H:3 * H] == 0)     # g: tanh(0)


@pytest.mark.parametrize("B,T,copied", [(1, 40, False), (2, 15, False), (2, 16, True), (32, 50, True)])
def test_step_weights_copy_w_transposed_from_b_2_and_16_steps(B, T, copied):
    w = np.random.default_rng(0).standard_normal((3 * 40, 40))          # (G H, H) as W_hh
    wt = kernels._buffers.step_weights(w, B, T)
    copied = copied and _jit.enabled()                  # without the compiled transpose: the view
    assert np.array_equal(wt, w.T) and np.shares_memory(wt, w) != copied
    assert wt.flags.c_contiguous == copied


def test_variants_without_a_kernel_use_the_reference():
    for cell in (LSTMCellConfig(4, peephole=True), LSTMCellConfig(4, cifg=True), LSTMCellConfig(4, proj_size=2)):
        assert kernels.forward_kernel(cell, None, None, None, True) is None


@pytest.mark.parametrize("Net", [LSTM, GRU])
def test_a_used_up_cache_refuses_a_second_backward(Net):
    net = Net(3, 4, rng=0)
    x = np.ones((5, 2, 3), np.float32)
    y, _ = net(x)
    net.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="used up by an earlier backward.*run forward again"):
        net.backward(np.ones_like(y))
    net(x)
    net.backward(np.ones_like(y))                     # a new forward, a new backward


@pytest.mark.parametrize("name", ["gru_after", "gru_before"])
@pytest.mark.parametrize("mode", MODES[:2])
def test_fused_backward_after_a_reference_forward(name, mode):
    """The fused GRU backward writes its gradients over the gates only when they are the fused
    forward's (one (T, B, 3H) block); after the reference forward it keeps them and allocates."""
    cell = CELLS[name]
    rng = np.random.default_rng(5)
    T, B, D = 5, 3, 2
    p = init_cell(cell, D, bias=True, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, B, D))
    carry = tuple(rng.standard_normal((B, n)) for n in cell.carry_sizes())
    dY = rng.standard_normal((T, B, cell.output_size))
    lens = np.array([5, 2, 4])
    ref = run(cell, p, x, carry, lens, False, dY, carry, "reference")
    with rnnlab.backend("reference"):
        _, _, sc = scan_forward(cell, p, x, carry, lens)       # the reference steps' caches
    kept = tuple(c.copy() for c in sc.caches)
    with rnnlab.backend("compiled" if mode == "jit" else "numpy"):
        dx, _, g = scan_backward(cell, p, sc, dY, carry)       # the fused backward
        dx2, _, _ = scan_backward(cell, p, sc, dY, carry)      # the caches are still whole
    np.testing.assert_allclose(dx, ref[5], atol=1e-12)
    np.testing.assert_allclose(dx2, dx, atol=0)
    np.testing.assert_allclose(g.w_hh, ref[7].w_hh, atol=1e-12)
    np.testing.assert_allclose(g.b_hh, ref[7].b_hh, atol=1e-12)
    for a, b in zip(sc.caches, kept):
        np.testing.assert_array_equal(a, b)



@pytest.mark.parametrize("name", ["rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("chunk_rows,K", [(3, 1), (12, 3), (16, 4)], ids=["1-step", "3-step", "4-step"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("mode", MODES)
def test_rnn_backward_adds_its_gradients_chunk_by_chunk(name, chunk_rows, K, reverse, mode, monkeypatch):
    """The RNN's backward keeps one chunk of gate gradients and adds each chunk's dW, db and dx
    as it goes: with 1, 3 and 4 steps a chunk (T = 7: a short last chunk) it matches the
    reference steps, padded rows included."""
    monkeypatch.setattr(kernels.rnn.Backward, "CHUNK_ROWS", chunk_rows)
    cell = CELLS[name]
    rng = np.random.default_rng(7)
    T, B, D = 7, 4, 3
    p = init_cell(cell, D, bias=True, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, B, D))
    carry = (rng.standard_normal((B, 5)),)
    dY = rng.standard_normal((T, B, 5))
    lens = np.array([7, 1, 4, 0])
    ref = run(cell, p, x, carry, lens, reverse, dY, carry, "reference")
    fast = run(cell, p, x, carry, lens, reverse, dY, carry, mode, monkeypatch)
    kern = kernels.backward_kernel(cell, p, (dY, dY), carry, x)
    assert kern.K == K and kern.DA.shape == (K, B, 5)                        # one chunk held
    np.testing.assert_allclose(fast[5], ref[5], rtol=1e-12, atol=1e-12)      # dx
    np.testing.assert_allclose(fast[6][0], ref[6][0], rtol=1e-12, atol=1e-12)  # d initial h
    for f in ("w_ih", "w_hh", "b_ih", "b_hh"):
        np.testing.assert_allclose(getattr(fast[7], f), getattr(ref[7], f), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru_after", "gru_before", "lstm_nobias"])
@pytest.mark.parametrize("T,B,D", [(6, 4, 3), (2, 1, 9)], ids=["scale-on-w", "scale-on-xp"])
def test_input_projection_folds_scale_and_biases(name, T, B, D):
    """One GEMM and one bias pass give (x W_ih^T + b_ih + input_bias) * scale, with the scale
    on W_ih (T B >= D) or on XP, and no scale for the reference steps; left to the fused kernel,
    the bias comes back scaled and XP holds the rest."""
    cell = CELLS[name]
    rng = np.random.default_rng(5)
    p = init_cell(cell, D, bias="nobias" not in name, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, B, D))
    plain = x @ p.w_ih.T
    for b in (p.b_ih, cell.input_bias(p)):
        plain = plain if b is None else plain + b
    scale = kernels.input_scale(cell, np.float64)
    assert (scale != 1).any() == (not name.startswith("rnn"))
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
    XP, left = input_projection(cell, p, x, scale)
    close(XP, plain * scale)
    assert left is None
    XP, left = input_projection(cell, p, x, None)
    close(XP, plain)
    assert left is None
    XP, left = input_projection(cell, p, x, scale, leave_bias=True)
    close(XP, x @ p.w_ih.T * scale)                   # no bias in XP
    if "nobias" in name:
        assert left is None
    else:
        close(left, (plain - x @ p.w_ih.T)[0, 0] * scale)


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru_after", "gru_before"])
@pytest.mark.parametrize("level", ["numpy", pytest.param("compiled", marks=needs_numba),
                                   pytest.param("packed", marks=needs_numba)])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_inference_in_chunks_matches_one_pass(name, level, reverse):
    """Inference projects its input a chunk of steps at a time (scan_forward's chunk_bytes):
    the outputs and final carry equal one pass's, with lengths, reversal and a ragged last chunk."""
    cell = CELLS[name]
    rng = np.random.default_rng(5)
    T, B, D = 23, 16, 3
    p = init_cell(cell, D, bias=True, dtype=np.float32, rng=rng)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    carry = tuple(rng.standard_normal((B, n)).astype(np.float32) for n in cell.carry_sizes())
    lens = rng.integers(0, T + 1, B)
    step = B * cell.gates * cell.hidden_size * 4                  # one step's projections, bytes
    with rnnlab.threads.shared_pool(), rnnlab.backend(level):
        whole = scan_forward(cell, p, x, carry, lens, reverse, keep_cache=False)
        for k in (1, 5, 22):                                      # steps a chunk
            y, final, cache = scan_forward(cell, p, x, carry, lens, reverse, keep_cache=False,
                                           chunk_bytes=k * step)
            assert cache is None
            np.testing.assert_allclose(y, whole[0], rtol=1e-6, atol=1e-6)
            for a, b in zip(final, whole[1]):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
                assert not np.may_share_memory(a, y)              # the caller may write either


def test_inference_in_chunks_bounds_the_projections():
    """Peak memory of a long inference call: its output plus one chunk, not T steps' projections."""
    import tracemalloc
    net = LSTM(32, 32, rng=0)
    x = np.random.default_rng(0).standard_normal((4000, 8, 32)).astype(np.float32)
    net.forward(x[:2], keep_cache=False)
    whole = 4000 * 8 * 4 * 32 * 4                                   # all steps' projections
    for chunk in (whole // 8, whole * 2):
        net.release_memory()
        tracemalloc.start()
        scan_forward(net.cell, net.layers[0][0], x, (np.zeros((8, 32), np.float32),) * 2,
                     keep_cache=False, chunk_bytes=chunk)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out = 4000 * 8 * 32 * 4
        assert peak < out + min(chunk, whole) + out // 2, (chunk, peak)
