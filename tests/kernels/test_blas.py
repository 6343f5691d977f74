"""NumPy's BLAS as the compiled loops call it (kernels._blas)."""


import contextlib

import numpy as np
import pytest

import rnnlab
from rnnlab import kernels
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.kernels import _blas, _jit
from tests.helpers import backward_loop_gemms, python_output

needs_blas = pytest.mark.skipif(not _jit.AVAILABLE, reason="numba not installed")


@needs_blas
def test_numpys_openblas_is_found_for_both_dtypes():
    """With numba and threadpoolctl installed (the test extra) the loops must not fall back
    silently: both products are there."""
    pytest.importorskip("threadpoolctl")
    assert set(_blas.GEMM) == {np.dtype(np.float32), np.dtype(np.float64)}


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_gemm_computes_what_matmul_computes(dtype):
    fn = _blas.gemm(dtype)
    assert fn is not None
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 33)).astype(dtype), rng.standard_normal((33, 12)).astype(dtype)
    c = np.full((7, 12), np.nan, dtype)
    fn(101, 111, 111, 7, 12, 33, 1.0, a.ctypes.data, 33, b.ctypes.data, 12, 0.0, c.ctypes.data, 12)
    np.testing.assert_allclose(c, a @ b, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
    bt = np.ascontiguousarray(b.T)                            # (12, 33): the transposed read
    fn(101, 111, 112, 7, 12, 33, 1.0, a.ctypes.data, 33, bt.ctypes.data, 33, 0.0, c.ctypes.data, 12)
    np.testing.assert_allclose(c, a @ b, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)


def test_a_gemm_that_gets_the_product_wrong_is_not_used():
    assert not _blas._checked(lambda *args: None, np.float32)   # leaves C zero


@needs_blas
def test_the_blas_loop_runs_from_four_rows_and_not_when_switched_off(monkeypatch):
    cell = LSTMCellConfig(512)                                # above the own-matmul loop's H

    def forward(B):
        return kernels.path_of(cell, 10, B, np.float32, False).forward
    with rnnlab.backend("compiled"):
        assert forward(1) == "steps" and forward(2) == "steps" and forward(4) == "blas"
    with rnnlab.backend("numpy"):                             # the NumPy passes: no loop
        assert forward(4) == "steps"
    monkeypatch.setattr(_blas, "GEMM", {})                    # as where no OpenBLAS was found
    with rnnlab.backend("compiled"):
        assert forward(4) == "steps"


def test_the_environment_variable_turns_the_loops_off():
    code = "from rnnlab.kernels import _blas; print(len(_blas.GEMM) > 0, _blas.gemm('float32'))"
    assert python_output(code, RNNLAB_BACKEND="numpy") == ["True", "None"]


@needs_blas
@pytest.mark.parametrize("T", [6, 17])              # W_hh^T read as W_hh.T, or copied
def test_a_strided_w_hh_gives_what_a_contiguous_one_gives(T, monkeypatch):
    """The BLAS loop passes W_hh's memory to the GEMM as it lies; a W_hh that is a strided view
    (every other column of a wider array) must still give the contiguous one's results."""
    from rnnlab.cells.lstm import LSTMCellConfig
    from rnnlab.init import init_cell
    from rnnlab.recurrent import scan_forward
    cell = LSTMCellConfig(5)
    rng = np.random.default_rng(0)
    p = init_cell(cell, 3, bias=True, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, 4, 3))
    carry = (np.zeros((4, 5)), np.zeros((4, 5)))
    with rnnlab.backends.without("own"):            # not the own-matmul loop
        y, _, _ = scan_forward(cell, p, x, carry, keep_cache=False)
        wide = np.zeros((20, 10))
        wide[:, ::2] = p.w_hh
        p.w_hh = wide[:, ::2]                       # (20, 5), neither C nor F contiguous
        y_strided, _, _ = scan_forward(cell, p, x, carry, keep_cache=False)
    np.testing.assert_allclose(y_strided, y, rtol=1e-13, atol=1e-13)


@needs_blas
@pytest.mark.parametrize("B,blas", [(5, True), (3, False)], ids=["blas", "own-matmul"])
def test_the_compiled_loops_gradients_match_finite_differences(B, blas, monkeypatch):
    """float64 central differences of a loss through the compiled forward and backward loops
    (padded rows): dx, d initial carry and dW_hh. B = 5: the BLAS loops; B = 3, below the BLAS
    loop's batch: the loops with their own matmul (lstm_forward_loop, lstm_backward_loop with
    gemm None)."""
    from rnnlab.cells.lstm import LSTMCellConfig
    from rnnlab.init import init_cell
    from rnnlab.recurrent import scan_backward, scan_forward
    gemms = backward_loop_gemms(monkeypatch)
    cell = LSTMCellConfig(4)
    rng = np.random.default_rng(1)
    T, D = 5, 3
    p = init_cell(cell, D, bias=True, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, B, D))
    h0, c0 = rng.standard_normal((B, 4)), rng.standard_normal((B, 4))
    lengths = np.array([5, 3, 5, 1, 4][:B])
    G = rng.standard_normal((T, B, 4))

    def loss():
        y, (h, c), _ = scan_forward(cell, p, x, (h0, c0), lengths, keep_cache=False)
        return float((y * G).sum() + h.sum() + 2 * c.sum())

    with rnnlab.backends.without("own") if blas else contextlib.nullcontext():   # forward too
        way = kernels.path_of(cell, T, B, np.float64, True)
        assert (way.forward, way.backward) == (("blas", "blas") if blas else ("own", "own"))
        _, _, sc = scan_forward(cell, p, x, (h0, c0), lengths)
        dx, (dh0, dc0), g = scan_backward(cell, p, sc, G, (np.ones((B, 4)), np.full((B, 4), 2.0)))
    assert len(gemms) == 1 and (gemms[0] is not None) == blas

    def numeric(a):
        out = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            keep = a[i]
            a[i] = keep + 1e-6
            up = loss()
            a[i] = keep - 1e-6
            out[i] = (up - loss()) / 2e-6
            a[i] = keep
        return out
    for analytic, a in ((dx, x), (dh0, h0), (dc0, c0), (g.w_hh, p.w_hh)):
        np.testing.assert_allclose(analytic, numeric(a), rtol=1e-6, atol=1e-8)
