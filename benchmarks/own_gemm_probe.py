"""Probe for issue 6: can a GEMM of rnnlab's own, over a W_hh packed once, beat OpenBLAS on
one step's (B x H)(H x 4H) product? (oneDNN packs its weights once; OpenBLAS repacks them on
every call.)

The micro-kernel is written in LLVM IR through numba's `intrinsic` (llvmlite): a 6 x 16 tile
of C held in twelve <8 x float> accumulators, one broadcast of A and two loads of the packed
panel per k, `llvm.fma.v8f32`. Written as plain numba loops, LLVM compiled the same kernel to
scalar FMAs (6-10 GFLOP/s, see the README); in IR it runs near one core's peak. It prints, for
each shape, the kernel on one thread and on two (numba prange over the 16-column panels), and
NumPy's OpenBLAS on two, the last two also right after a two-thread OpenBLAS GEMM (its worker
threads then spin for ~0.1 s and take the second core).

    python benchmarks/own_gemm_probe.py

Needs numba (rnnlab[jit]). A probe, not a kernel rnnlab uses: M must be a multiple of 6 and
N of 16, float32 only, no remainder handling.
"""

import time

import numpy as np

try:
    from llvmlite import ir
    from numba import njit, prange, types
    from numba.core import cgutils
    from numba.extending import intrinsic
except ImportError:
    raise SystemExit("own_gemm_probe: needs numba (pip install 'rnnlab[jit]')") from None

MR, NR = 6, 16                                   # the tile: rows of A, columns of a panel
I64 = ir.IntType(64)


@intrinsic
def _tile(typingctx, A, Bp, C, i0, j0, K):
    """C[i0:i0+6, j0:j0+16] = A[i0:i0+6, :K] @ the (K, 16) panel of Bp at flat offset j0 K."""
    sig = types.void(A, Bp, C, i0, j0, K)

    def codegen(context, builder, signature, args):
        a, b, c = (context.make_array(t)(context, builder, v) for t, v in zip(signature.args[:3], args[:3]))
        i0v, j0v, kv = args[3:]
        lda = builder.sdiv(builder.extract_value(a.strides, 0), ir.Constant(I64, 4))   # in floats
        ldc = builder.sdiv(builder.extract_value(c.strides, 0), ir.Constant(I64, 4))
        v8 = ir.VectorType(ir.FloatType(), 8)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v8, [v8] * 3), "llvm.fma.v8f32")
        zero, undef = ir.Constant(v8, [0.0] * 8), ir.Constant(v8, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), 8), [0] * 8)
        entry = builder.block
        loop, done = builder.append_basic_block("tile_k"), builder.append_basic_block("tile_store")
        builder.branch(loop)
        builder.position_at_end(loop)
        k = builder.phi(I64)
        k.add_incoming(ir.Constant(I64, 0), entry)
        acc = [builder.phi(v8) for _ in range(2 * MR)]               # 6 rows x 2 halves of 8
        for p in acc:
            p.add_incoming(zero, entry)
        off = builder.add(builder.mul(j0v, kv), builder.mul(k, ir.Constant(I64, NR)))
        halves = [builder.load(builder.bitcast(builder.gep(b.data, [builder.add(off, ir.Constant(I64, h))]),
                                               v8.as_pointer()), align=4) for h in (0, 8)]
        new = []
        for i in range(MR):                                          # a[i, k] times both halves
            row = builder.add(i0v, ir.Constant(I64, i))
            ai = builder.load(builder.gep(a.data, [builder.add(builder.mul(row, lda), k)]))
            av = builder.shuffle_vector(builder.insert_element(undef, ai, ir.Constant(ir.IntType(32), 0)),
                                        undef, splat)
            new += [builder.call(fma, [av, halves[h], acc[2 * i + h]]) for h in (0, 1)]
        nxt = builder.add(k, ir.Constant(I64, 1))
        for p, v in zip(acc, new):
            p.add_incoming(v, builder.block)
        k.add_incoming(nxt, builder.block)
        builder.cbranch(builder.icmp_signed("<", nxt, kv), loop, done)
        builder.position_at_end(done)
        for i in range(MR):
            base = builder.add(builder.mul(builder.add(i0v, ir.Constant(I64, i)), ldc), j0v)
            for h in (0, 1):
                ptr = builder.bitcast(builder.gep(c.data, [builder.add(base, ir.Constant(I64, 8 * h))]),
                                      v8.as_pointer())
                builder.store(new[2 * i + h], ptr, align=4)
        return context.get_dummy_value()
    return sig, codegen


@njit
def pack(W):
    """W (K, N) -> N/16 panels, each (K, 16) contiguous, one after another."""
    K, N = W.shape
    out = np.empty(K * N, np.float32)
    for p in range(N // NR):
        for k in range(K):
            for j in range(NR):
                out[(p * K + k) * NR + j] = W[k, p * NR + j]
    return out


@njit
def gemm1(A, Bp, C, K, N):
    for p in range(N // NR):
        for i0 in range(0, A.shape[0], MR):
            _tile(A, Bp, C, i0, p * NR, K)


@njit(parallel=True)
def gemm2(A, Bp, C, K, N):
    P = N // NR
    for t in prange(2):                          # each thread half of the panels
        for p in range(t * P // 2, (t + 1) * P // 2):
            for i0 in range(0, A.shape[0], MR):
                _tile(A, Bp, C, i0, p * NR, K)


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
        W = rng.standard_normal((H, 4 * H), dtype=np.float32)
        Bp, C, N = pack(W), np.empty((B, 4 * H), np.float32), 4 * H
        for g in (gemm1, gemm2):
            g(A, Bp, C, H, N)
            np.testing.assert_allclose(C, A @ W, rtol=1e-4, atol=1e-3)
        n = 10 if H >= 1024 else 200
        time.sleep(0.5)                          # OpenBLAS's workers asleep
        one = _best(lambda: gemm1(A, Bp, C, H, N), n)
        two = _best(lambda: gemm2(A, Bp, C, H, N), n)
        ob = _best(lambda: np.matmul(A, W, out=C), n)
        two_after = _best(lambda: gemm2(A, Bp, C, H, N), n, blas_gemm)
        ob_after = _best(lambda: np.matmul(A, W, out=C), n, blas_gemm)
        print(f"| {B} | {H} | {N} | {1e6 * one:.0f} | {1e6 * two:.0f} | {1e6 * ob:.0f} | {two / ob:.2f} "
              f"| {1e6 * two_after:.0f} | {1e6 * ob_after:.0f} |")


if __name__ == "__main__":
    main()
