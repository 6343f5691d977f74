"""Probe for issue 6: rnnlab's own GEMM (kernels._packed, over a W packed once) against
OpenBLAS on one step's (B x H)(H x 4H) product. oneDNN packs its weights once; OpenBLAS
repacks them on every call.

The micro-kernel is written in LLVM IR through numba's `intrinsic` (llvmlite): a 6 x 16 tile
of C in six <16 x float> accumulators (zmm registers with AVX-512; twelve <8 x float> ones
until 2026-11-24); per k, one broadcast of A a row and one load of the packed panel,
`llvm.fma.v16f32`. It prints, for each shape, the kernel on one thread and on two (the
rows split between numba's threads, as the LSTM's packed loop splits its batch), and NumPy's
OpenBLAS on two, the last two also right after a two-thread OpenBLAS GEMM (its worker threads
then spin for ~0.1 s and take the second core).

    python benchmarks/own_gemm_probe.py

Needs numba (dependencies of rnnlab).
"""

import time

import numpy as np

from rnnlab.kernels import _packed

if not _packed.AVAILABLE:
    raise SystemExit("own_gemm_probe: needs numba (pip install numba threadpoolctl)")


def _best(fn, n, before=None, rounds=7):
    ts = []
    for _ in range(rounds):
        if before is not None:
            before()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        ts.append((time.perf_counter() - t0) / n)
    return float(np.median(ts))


def main() -> None:
    rng = np.random.default_rng(0)
    X, Wx = rng.standard_normal((6400, 256), dtype=np.float32), rng.standard_normal((256, 1024), dtype=np.float32)

    def blas_gemm():
        return X @ Wx                            # wakes OpenBLAS's two threads

    print("| B | H | 4H | own, 1 thread us | own, 2 threads us | OpenBLAS us | own 2 / OpenBLAS "
          "| right after a GEMM: own 2 us | OpenBLAS us |")
    print("|---|---|---|---|---|---|---|---|---|")
    for B, H in ((30, 64), (126, 64), (30, 256), (126, 256), (30, 1024)):
        A = rng.standard_normal((B, H), dtype=np.float32)
        W = rng.standard_normal((4 * H, H), dtype=np.float32)        # as a cell stores W_hh
        Wp, C = np.empty(W.size, np.float32), np.empty((B, 4 * H), np.float32)
        _packed.pack(W, np.ones(4 * H, np.float32), Wp)
        Wt = np.ascontiguousarray(W.T)
        for threads in (1, 2):
            _packed.project(A, Wp, C, threads)
            np.testing.assert_allclose(C, A @ Wt, rtol=1e-4, atol=1e-3)
        n = 10 if H >= 1024 else 200
        time.sleep(0.5)                          # OpenBLAS's workers asleep
        one = _best(lambda: _packed.project(A, Wp, C, 1), n)
        two = _best(lambda: _packed.project(A, Wp, C, 2), n)
        ob = _best(lambda: np.matmul(A, Wt, out=C), n)
        two_after = _best(lambda: _packed.project(A, Wp, C, 2), n, blas_gemm)
        ob_after = _best(lambda: np.matmul(A, Wt, out=C), n, blas_gemm)
        print(f"| {B} | {H} | {4 * H} | {1e6 * one:.0f} | {1e6 * two:.0f} | {1e6 * ob:.0f} | {two / ob:.2f} "
              f"| {1e6 * two_after:.0f} | {1e6 * ob_after:.0f} |")


if __name__ == "__main__":
    main()
