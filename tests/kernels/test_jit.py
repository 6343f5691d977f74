"""The compiled gate math (optional, numba) against the NumPy passes it replaces."""


import numpy as np
import pytest

from rnnlab.cells.gru import GRUCellConfig
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.cells.rnn import RNNCellConfig
from rnnlab.init import init_cell
from rnnlab.kernels import _jit
from tests.helpers import python_output
from tests.kernels.test_fused import run

pytestmark = pytest.mark.skipif(not _jit.AVAILABLE, reason="numba not installed (a dependency of rnnlab)")


def compiled_tanh(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)[None]                      # (1, N): h W^T = 0, so out = tanh(x)
    _jit.rnn_tanh_forward(out, x[None], np.zeros_like(x))
    return out[0]


def test_float32_tanh_is_within_a_few_ulp_and_passes_nan_and_inf():
    x = np.concatenate([np.linspace(-12, 12, 200_001), np.geomspace(1e-30, 1e-3, 1000)]).astype(np.float32)
    x = np.concatenate([x, -x[-1000:]])
    y = compiled_tanh(x)
    exact = np.tanh(x.astype(np.float64))
    assert np.abs(y - exact).max() < 4e-7                          # ~3 ulp near +-1
    small = np.abs(x) < 1e-3
    np.testing.assert_allclose(y[small], exact[small], rtol=2e-7)  # relative near 0
    assert np.abs(y).max() <= 1
    special = compiled_tanh(np.array([np.nan, np.inf, -np.inf, 0.0], np.float32))
    assert np.isnan(special[0]) and special[1] == 1 and special[2] == -1 and special[3] == 0


def test_float64_tanh_is_libm():
    x = np.linspace(-20, 20, 10_001)
    np.testing.assert_allclose(compiled_tanh(x), np.tanh(x), rtol=0, atol=2e-16)


def test_compiled_relu_is_numpys_maximum_nan_and_signed_zeros_included():
    z = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 3.5, -2.0]], np.float32)
    out = np.zeros_like(z)                            # h W^T = 0: out = relu(z)
    _jit.rnn_relu_forward(out, z, np.zeros(z.shape[1], np.float32))
    np.testing.assert_array_equal(out, np.maximum(z + 0, 0))
    dh = np.array([[1.5, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, np.nan, np.inf]], np.float32)
    da = np.empty_like(dh)
    _jit.rnn_relu_backward(out, dh, da)               # relu' read from the outputs
    with np.errstate(invalid="ignore"):               # inf 0 is NaN in both
        np.testing.assert_array_equal(da, dh * (out > 0))


CELLS = {"rnn_tanh": RNNCellConfig(37), "rnn_relu": RNNCellConfig(37, "relu"), "lstm": LSTMCellConfig(37), "gru_after": GRUCellConfig(37),
         "gru_before": GRUCellConfig(37, reset_after=False)}


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 3e-6)], ids=["f64", "f32"])
def test_compiled_matches_numpy_passes_at_widths_off_the_vector_size(name, dtype, tol):
    """H = 37 leaves a tail after every vector of 8; lengths exercise the held rows."""
    cell = CELLS[name]
    rng = np.random.default_rng(5)
    T, B, D = 7, 3, 11
    p = init_cell(cell, D, bias=True, dtype=dtype, rng=rng)
    x = (2 * rng.standard_normal((T, B, D))).astype(dtype)
    carry = tuple(rng.standard_normal((B, n)).astype(dtype) for n in cell.carry_sizes())
    dY = rng.standard_normal((T, B, cell.output_size)).astype(dtype)
    dcarry = tuple(rng.standard_normal((B, n)).astype(dtype) for n in cell.carry_sizes())
    lens = np.array([7, 2, 5])
    ref = run(cell, p, x, carry, lens, False, dY, dcarry, "numpy")
    jit = run(cell, p, x, carry, lens, False, dY, dcarry, "jit")
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    close(jit[0], ref[0])
    close(jit[3], ref[3])
    close(jit[5], ref[5])
    for a, b in zip(jit[6], ref[6]):
        close(a, b)
    for f in ("w_ih", "w_hh", "b_ih", "b_hh"):
        close(getattr(jit[7], f), getattr(ref[7], f))


def test_rnnlab_backend_numpy_turns_the_compiled_path_off():
    code = "import rnnlab.kernels._jit as j; print(j.AVAILABLE, j.enabled())"
    assert python_output(code, RNNLAB_BACKEND="numpy") == ["True", "False"]


@pytest.mark.parametrize("shape", [(1, 1), (5, 16), (16, 5), (33, 7), (48, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_copies_a_transpose_exactly(shape, dtype):
    a = np.random.default_rng(1).standard_normal((shape[0] + 2, shape[1])).astype(dtype)
    rows = a[1:-1]                                    # a block of rows, as GRU's W_hh[:2H]
    t = _jit.transposed(rows)
    assert t.dtype == dtype and t.flags.c_contiguous and t.shape == shape[::-1]
    np.testing.assert_array_equal(t, rows.T)
