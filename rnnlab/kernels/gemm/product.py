"""The packed GEMM's products and packing, compiled from the IR tile (`ir`): a panel, a
product over blocks of K, the input projection on numba's threads, and the packing of W."""

from __future__ import annotations

from .. import _jit
from . import FAR, KC, MR, NEAR_ROWS, NR, ROWS

if _jit.AVAILABLE:
    from numba import njit, prange

    from .ir import _tile, _transposed_block

    @njit(cache=True, nogil=True)
    def _panel(A, Wp, C, c0, w_off, K, add, far):
        """C[:, c0:c0+16] (+)= A W's (K, 16) panel at w_off, for all rows of A, MR at a time."""
        B = C.shape[0]
        for i0 in range(0, B, MR):
            _tile(A, Wp, C, i0, c0, w_off, K, min(MR, B - i0), add, far)

    @njit(cache=True, nogil=True)
    def _gemm(A, Wp, C, p0, p1, add, K, k_off, far):
        """C[:, panels p0:p1] (+)= A (rows, k) W[k_off:k_off+k], W packed in panels of K rows
        (pack), in blocks of KC rows of W: a block of a panel (KC x 16) stays in L1
        while all of A's row tiles pass over it. `far`: W streams from memory (see _tile)."""
        k = A.shape[1]
        for p in range(p0, p1):
            for k0 in range(0, k, KC):
                k1 = min(k0 + KC, k)
                _panel(A[:, k0:k1], Wp, C, p * NR, (p * K + k_off + k0) * NR, k1 - k0, add or k0 > 0,
                       far)

    @njit(cache=True, nogil=True)
    def _streams(Wp, rows):
        """Whether a step's product streams Wp from memory with enough rows for its tiles to
        prefetch the next block (_tile's `far`)."""
        return Wp.size > FAR and rows >= NEAR_ROWS

    @njit(cache=True, nogil=True)
    def _share(w, n, parts):
        """Thread w's range [start, end) of n items (rows, panels, columns) split into `parts`
        near-equal contiguous shares."""
        return w * n // parts, (w + 1) * n // parts

    @njit(cache=True, nogil=True, parallel=True)
    def pack(w, scale, out):
        """out (G / 16 panels, each (K, 16) contiguous) <- w^T scale, w (G, K) as the cell
        stores it (W_ih or W_hh), C layout: 16 x 16 blocks transposed in registers
        (_transposed_block), the last K % 16 columns one by one."""
        G, K = w.shape
        K16 = K - K % NR
        for p in prange(G // NR):
            r0 = p * NR
            for k0 in range(0, K16, NR):
                _transposed_block(w, scale, out, r0, k0, (p * K + k0) * NR)
            s = scale[r0:r0 + NR]
            for k in range(K16, K):                    # one row of the panel: 16 contiguous
                row = out[(p * K + k) * NR:(p * K + k + 1) * NR]   # floats, from 16 rows of w
                for j in range(NR):
                    row[j] = w[r0 + j, k] * s[j]

    @njit(cache=True, nogil=True, parallel=True)
    def pack_rows(w, out):
        """out (N / 16 panels, each (K, 16) contiguous) <- w (K, N) as it is: W_hh for the
        backward's dA W_hh."""
        K, N = w.shape
        for p in prange(N // NR):
            for k in range(K):
                row = out[(p * K + k) * NR:(p * K + k + 1) * NR]
                src = w[k, p * NR:(p + 1) * NR]
                for j in range(NR):
                    row[j] = src[j]

    @njit(cache=True, nogil=True, parallel=True)
    def project(X, Wp, XP, nthreads):
        """XP (N, G) = X (N, D) W (Wp = pack(W_ih)): each thread its share of the rows, in
        blocks of ROWS rows; a W too large to stay cached is prefetched as it streams (_tile's
        `far`): at (6400, 1024) x (1024, 4096), 203 GFLOP/s against 190 without."""
        N = X.shape[0]
        P = XP.shape[1] // NR
        for w in prange(nthreads):
            r0, r1 = _share(w, N, nthreads)
            for i in range(r0, r1, ROWS):
                j = min(i + ROWS, r1)
                _gemm(X[i:j], Wp, XP[i:j], 0, P, False, X.shape[1], 0, _streams(Wp, j - i))

