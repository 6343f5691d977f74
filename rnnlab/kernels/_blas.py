"""NumPy's own BLAS, called from compiled time loops.

A compiled loop (kernels._jit) that runs every step of a kernel needs the step's GEMM without
coming back to Python; this module finds the OpenBLAS that NumPy's matmul calls (through
threadpoolctl) and hands its `cblas_?gemm` to the loop as a function pointer. The products
are the ones np.matmul computes (same library, same kernels, the same threads); only the
Python between steps goes (a few us a step: measured 0.82-1.03x the time of whole LSTM calls
at H = 64-1024, B = 4-128, most near 0.94).

Optional: without numba, threadpoolctl or an OpenBLAS under NumPy `GEMM` is empty, and on
the backends below "compiled" (rnnlab.backends) it is not used: the kernels step from Python. A
`cblas_?gemm` found is checked on a small product against np.matmul before use.
"""

from __future__ import annotations

import ctypes

import numpy as np

from . import _jit

_RowMajor, _NoTrans = 101, 111


def _openblas():
    """The OpenBLAS that NumPy loaded (a ctypes library), or None."""
    if not _jit.AVAILABLE:
        return None
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for info in threadpool_info():
        if info.get("user_api") == "blas" and info.get("internal_api") == "openblas":
            try:
                return ctypes.CDLL(info["filepath"])
            except OSError:
                return None
    return None


def _symbol(lib, base: str):
    """lib's `base` as NumPy's OpenBLAS builds name it (scipy-openblas64 prefixes `scipy_` and
    suffixes `64_` with 64-bit integers), with the integer type; (None, None) if absent."""
    for name, int_t in ((f"scipy_{base}64_", ctypes.c_int64), (f"{base}64_", ctypes.c_int64),
                        (f"scipy_{base}", ctypes.c_int), (base, ctypes.c_int)):
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn, int_t
    return None, None


def _gemm(lib, letter: str, real):
    fn, int_t = _symbol(lib, f"cblas_{letter}gemm")
    if fn is None:
        return None
    E, P = ctypes.c_int, ctypes.c_void_p
    # layout, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    fn.argtypes = [E, E, E, int_t, int_t, int_t, real, P, int_t, P, int_t, real, P, int_t]
    fn.restype = None
    return fn


def _checked(fn, dtype) -> bool:
    """Whether fn computes a (3, 5) @ (5, 4) product as np.matmul does."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5)).astype(dtype), rng.standard_normal((5, 4)).astype(dtype)
    c = np.zeros((3, 4), dtype)
    fn(_RowMajor, _NoTrans, _NoTrans, 3, 4, 5, 1.0, a.ctypes.data, 5, b.ctypes.data, 4, 0.0,
       c.ctypes.data, 4)
    return bool(np.allclose(c, a @ b, rtol=1e-5, atol=1e-5))


def _load(lib):
    if lib is None:
        return {}
    gemms = {}
    for dtype, letter, real in ((np.float32, "s", ctypes.c_float), (np.float64, "d", ctypes.c_double)):
        fn = _gemm(lib, letter, real)
        if fn is not None and _checked(fn, dtype):
            gemms[np.dtype(dtype)] = fn
    return gemms


def _thread_count(lib):
    fn, _ = _symbol(lib, "openblas_get_num_threads") if lib is not None else (None, None)
    if fn is not None:
        fn.argtypes, fn.restype = [], ctypes.c_int
    return fn


_LIB = _openblas()
GEMM = _load(_LIB)         # {dtype: cblas_?gemm}; empty where no OpenBLAS was found
_THREADS = _thread_count(_LIB)


def threads() -> int | None:
    """The threads NumPy's OpenBLAS runs a product on now (OPENBLAS_NUM_THREADS, threadpoolctl's
    threadpool_limits), or None where that is unknown (no OpenBLAS found)."""
    return None if _THREADS is None else int(_THREADS())


def gemm(dtype):
    """cblas_?gemm for dtype, or None (the kernels then step from Python)."""
    return GEMM.get(np.dtype(dtype)) if _jit.enabled() else None
