"""The LSTM's, GRU's and RNN's loops on rnnlab's own packed GEMM (`rnnlab.kernels.gemm`: the
LLVM-IR micro-kernel, packing and the spin barrier, with their invariants), with threads of
its own.

oneDNN packs an LSTM's weights once and runs each step's product and gate math on its own
threads; NumPy's OpenBLAS repacks W_hh on every call. Here W_ih and W_hh (their sigmoid rows
halved) are packed once a call into 16-column panels (`pack`: 16 x 16 blocks transposed in
registers, 0.7 ms at 16 MB, 2.5-4x as fast as a loop of scalar copies); the input projection
(`project`) and every step's h W_hh^T run on this kernel, on numba's threads. It runs while
OpenBLAS runs its own parallel jobs on numba's threads too (_pool), or on one thread
(`usable`): two pools on two cores slow each other.

- `lstm_forward`: each thread runs all T steps over its own rows of the batch (a row's
  carries depend on that row alone), its gate math right behind its products, so the threads
  never wait for each other: one parallel region for the whole loop.
- `lstm_forward_cols`, for a batch of one and for H > 512: the threads split each step's
  hidden units (whole panels of each gate) and meet at the end of every step; each streams
  half of W_hh a step, where a rows split streams all of it (16 MB at H = 1024). They meet
  at a spin barrier inside one parallel region (`_meet`, where `meets`): a region a step cost
  1.4-1.6 us of launch and join with numba's OpenMP layer, and whole B = 1 calls at H = 128-256
  ran 0.85-0.91x as long with the barrier (inference and training). At B = 1 below H = 1024
  its products read W_hh unpacked, as dot products of 16 of its rows at a time with h (`_dots`:
  a load of W a FMA, and nothing packed a call; backends.in_place).
- `lstm_backward`: the training backward's loop, rows split as in `lstm_forward`, each step's
  da W_hh on W_hh packed as it is (`pack_rows`); the weight gradients and dx stay on OpenBLAS.
  `lstm_backward_cols`, where `lstm_forward_cols` runs: the units of da W_hh split; each
  thread computes the step's gate gradients whole (a few % of the step's work).
- `gru_forward`, `gru_backward`: the reset-after GRU's loops, rows split the same way (to
  H = 1024, W_hh prefetched where it streams); its input projection stays on OpenBLAS.
- `rnn_forward`, `rnn_backward`: the Elman RNN's (tanh or ReLU), the same way; the backward
  runs over one chunk of steps at a time (rnn.Backward adds each chunk's weight gradients).

The micro-kernel is written in LLVM IR through numba's `intrinsic` (llvmlite): plain numba
loops compiled it to scalar FMAs (6-10 GFLOP/s); in IR it runs near one core's
peak (benchmarks/own_gemm_probe.py). A tile is m <= 6 rows of A by one 16-column panel, one
<16 x float> accumulator a row (`llvm.fma.v16f32`: one zmm register with AVX-512, two ymm
without); the k loop runs over ceil(4 / m) accumulator sets, so that at least 4 FMA chains
hide the FMAs' latency.
- Against two <8 x float> halves a row (one broadcast of A feeding two FMAs), the products
  ran 1.06-1.20x as fast: 200-218 GFLOP/s at (B, 256) x (256, 1024), where the two cores'
  FMAs peak at 232 (OpenBLAS's 2048^3 reads 204-207). Half the instructions a k.
- Two sets at 3 rows instead of one: 1.02-1.17x as fast at 6-30 rows. Tiles of 8 and 12 rows
  measured no faster.
- Where a step's W streams from memory (the LSTM's at H = 1024), tiles of 3 or more rows
  prefetch the panel's next block into L2 as they run.

Float32 only: needs numba (a dependency of rnnlab) and runs on the "packed" backend (the
highest, what "auto" picks with numba; rnnlab.backends).
"""

from __future__ import annotations

import numpy as np

from .. import backends
from . import _blas, _jit, _pool
from .gemm import FAR, KC, LINE as _LINE, MR, NEAR_ROWS, NR, ROWS  # noqa: F401 (the loops' and tests' names)

AVAILABLE = _jit.AVAILABLE


def usable() -> bool:
    """Whether the packed loops may run now (backends.Machine.packed): inside `rnnlab.threads.shared_pool()` (the packed
    loops start numba's threads, which the user opts into), while NumPy's OpenBLAS runs its
    parallel jobs on numba's threads too (_pool.in_use, from the first call there that asks)
    or runs on one thread (OPENBLAS_NUM_THREADS=1, threadpoolctl's threadpool_limits).

    Two thread pools on two cores fight: after a product OpenBLAS's workers keep spinning (for
    ~2^28 cycles), and numba's after a parallel region, so each slows the other. An LSTM
    (H = 256, B = 32, T = 50) with a Dense head over its outputs, inference, interleaved: packed
    26-30 ms + head 3.4-5.6 ms against the BLAS loop's 16.5-21.7 + 1.3, with the pools apart.

    Not in a child forked after its parent started numba's threads (GNU OpenMP, numba's usual
    layer, terminates such a child: "fork() called from a process already using GNU OpenMP,
    this is unsafe"); the child takes the BLAS path."""
    return (AVAILABLE and backends.allows("packed") and _pool.opted() and not _pool.forked()
            and (_pool.in_use() or _blas.threads() == 1))


def packed(w: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """(w scale)^T in 16-column panels (`pack`), w (G, K) as the cell stores it (W_ih or
    W_hh), scale (G,) or None for ones."""
    out = np.empty(w.size, dtype=np.float32)
    pack(np.ascontiguousarray(w, dtype=np.float32),
         np.ones(w.shape[0], np.float32) if scale is None else scale.astype(np.float32), out)
    return out


def packed_rows(w: np.ndarray) -> np.ndarray:
    """w (K, N) as it is in 16-column panels (`pack_rows`): W_hh for the backward's dA W_hh."""
    out = np.empty(w.size, dtype=np.float32)
    pack_rows(np.ascontiguousarray(w), out)
    return out


def meets(nthreads: int) -> bool:
    """Whether a packed loop over nthreads may run as one parallel region whose threads meet
    at a spin barrier (_meet) rather than a region a step: with OpenBLAS's jobs on numba's
    threads (_pool.shared: the OpenMP layer, teams of the size asked for) and nthreads the
    team's size, each of its iterations runs on its own thread."""
    import numba
    return nthreads == numba.get_num_threads() and _pool.in_use()


def threads() -> int:
    """The threads a packed loop runs on: numba's (NUMBA_NUM_THREADS, numba.set_num_threads)."""
    return _pool.launch()


if AVAILABLE:
    from numba import njit, prange

    from .gemm.ir import _dots, _meet  # noqa: F401
    from .gemm.product import _gemm, _panel, _share, _streams, pack, pack_rows, project  # noqa: F401

    @njit(cache=True, nogil=True, parallel=True)
    def lstm_forward(XP, Wp, bias, scale, HS, CS, TC, held, nthreads):
        """A whole LSTM forward over input projections XP (T, B, 4H) (from `project`, scaled):
        each step adds h W_hh^T into XP[t] (Wp = pack(W_hh)) and activates the gates there, in
        place. Each thread runs all T steps over its own rows (a row's carries depend on that
        row alone): the threads never wait for each other. bias (4H,) scaled; HS (T+1, B, H)
        the h carries, HS[0] the initial one; CS (T+1, B, H) or a ring (2, B, H) of c
        carries; TC (T or 1, B, H) tanh(c); rows with held[t, b] keep their carries."""
        T, B, G = XP.shape
        H = HS.shape[2]
        n = CS.shape[0]
        keep = TC.shape[0] == T
        for w in prange(nthreads):
            b0, b1 = _share(w, B, nthreads)
            for t in range(T):
                a = XP[t, b0:b1]                               # (rows, 4H)
                c, c_new = CS[t % n, b0:b1], CS[(t + 1) % n, b0:b1]
                h, h_new = HS[t, b0:b1], HS[t + 1, b0:b1]
                _gemm(h, Wp, a, 0, G // NR, True, H, 0, False)  # a += h W_hh^T
                _jit.lstm_gates(a, None, bias, scale, c, c_new, h_new, TC[t if keep else 0, b0:b1],
                                0, H)
                _jit.hold(held, t, b0, h_new, h)
                _jit.hold(held, t, b0, c_new, c)

    @njit(cache=True, nogil=True)
    def _forward_cols_step(XP, Wp, bias, scale, HS, CS, TC, held, t, p0, p1, far):
        """One thread's share of lstm_forward_cols's step t: panels p0:p1 of each gate, their
        products on Wp packed, or on W_hh (4H, H) itself, row by row (_dots)."""
        H = HS.shape[2]
        P = H // NR                                            # panels of one gate
        n = CS.shape[0]
        a = XP[t]
        c, c_new = CS[t % n], CS[(t + 1) % n]
        if Wp.ndim == 2:                                       # a constant: one branch compiles
            for q in range(4):
                for r in range(q * H + p0 * NR, q * H + p1 * NR, NR):
                    for b in range(a.shape[0]):               # 16 rows of W, in L1 after b = 0
                        _dots(Wp, HS[t, b], scale, a[b], r)
        else:
            for q in range(4):
                _gemm(HS[t], Wp, a, q * P + p0, q * P + p1, True, H, 0, far)
        u0, u1 = p0 * NR, p1 * NR
        _jit.lstm_gates(a, None, bias, scale, c, c_new, HS[t + 1],
                        TC[t if TC.shape[0] == XP.shape[0] else 0], u0, u1)
        _jit.hold(held, t, 0, HS[t + 1, :, u0:u1], HS[t, :, u0:u1])
        _jit.hold(held, t, 0, c_new[:, u0:u1], c[:, u0:u1])

    @njit(cache=True, nogil=True, parallel=True)
    def lstm_forward_cols(XP, Wp, bias, scale, HS, CS, TC, held, nthreads, spin):
        """lstm_forward for a batch too small to split: the threads split each step's hidden
        units instead (whole panels of each gate), and meet at the end of every step. With
        `spin` (`meets`), one parallel region for all steps, the threads meeting at `_meet`;
        without, a region a step."""
        T = XP.shape[0]
        P = HS.shape[2] // NR
        far = _streams(Wp, XP.shape[1])
        if spin:
            sync = np.zeros(2 * _LINE, dtype=np.int64)
            for w in prange(nthreads):
                p0, p1 = _share(w, P, nthreads)
                for t in range(T):
                    _forward_cols_step(XP, Wp, bias, scale, HS, CS, TC, held, t, p0, p1, far)
                    _meet(sync, nthreads)
        else:
            for t in range(T):
                for w in prange(nthreads):
                    p0, p1 = _share(w, P, nthreads)
                    _forward_cols_step(XP, Wp, bias, scale, HS, CS, TC, held, t, p0, p1, far)

    @njit(cache=True, nogil=True, parallel=True)
    def lstm_backward(A, TCS, CS, Wp, dY, dh, dc, held, nthreads):
        """The LSTM's backward loop (as _jit.lstm_backward_loop), each thread over its own rows
        for all T steps, last first, as lstm_forward: A (T, B, 4H) the activated gates -> their
        pre-activation gradients, in place; TCS (T, B, H) tanh(c_t); CS (T, B, H) c_{t-1};
        Wp = pack_rows(W_hh) (4H, H); dY (T, B, H) the output gradients (zero at padded steps);
        dh, dc (B, H) the final carry's gradients in, the initial carry's out. A row held at
        step t feeds nothing into the step and passes its carry gradients on."""
        T, B, G = A.shape
        H = G // 4
        for w in prange(nthreads):
            b0, b1 = _share(w, B, nthreads)
            n = b1 - b0
            if n == 0:
                continue
            work = np.empty((3, n, H), dtype=A.dtype)          # lstm_backward's scratch
            d_h, d_c = dh[b0:b1].copy(), dc[b0:b1].copy()      # (n, H) dL/dh_t, dL/dc_t
            dh_prev, dc_prev = np.empty_like(d_h), np.empty_like(d_c)
            kept_h, kept_c = np.empty_like(d_h), np.empty_like(d_c)   # held rows' gradients
            for t in range(T - 1, -1, -1):
                _jit.add(d_h, dY[t, b0:b1])                    # output + recurrence
                _jit.stash(held, t, b0, d_h, kept_h)           # held rows skip the step
                _jit.stash(held, t, b0, d_c, kept_c)
                a = A[t, b0:b1]                                # (n, 4H)
                _jit.lstm_backward(a, TCS[t, b0:b1], CS[t, b0:b1], d_h, d_c, dc_prev, work)
                _gemm(a, Wp, dh_prev, 0, H // NR, False, G, 0, False)  # dh_{t-1} = da W_hh
                _jit.hold(held, t, b0, dh_prev, kept_h)        # and pass theirs on
                _jit.hold(held, t, b0, dc_prev, kept_c)
                d_h, dh_prev = dh_prev, d_h
                d_c, dc_prev = dc_prev, d_c
            _jit.copy(dh[b0:b1], d_h)
            _jit.copy(dc[b0:b1], d_c)

    @njit(cache=True, nogil=True)
    def _backward_cols_step(A, TCS, CS, Wp, dY, held, DA, DC, DH, work, d_h, kept, t, w, nthreads,
                            far):
        """Thread w's share of lstm_backward_cols's step t (see there)."""
        T, B, G = A.shape
        j0, j1 = _share(w, G, nthreads)
        if t < T - 1:                                          # step t+1's share, now unread
            _jit.copy(A[t + 1, :, j0:j1], DA[w, :, j0:j1])
        dh_t, dc_t, dc_prev = d_h[w], DC[w, (t + 1) % 2], DC[w, t % 2]
        _jit.copy(dh_t, DH[(t + 1) % 2])
        _jit.add(dh_t, dY[t])                                  # output + recurrence
        _jit.stash(held, t, 0, dh_t, kept[w, 0])               # held rows skip the step
        _jit.stash(held, t, 0, dc_t, kept[w, 1])
        a = DA[w]
        _jit.copy(a, A[t])                                     # (B, 4H) the gates -> da
        _jit.lstm_backward(a, TCS[t], CS[t], dh_t, dc_t, dc_prev, work[w])
        p0, p1 = _share(w, G // 4 // NR, nthreads)
        dh_prev = DH[t % 2]
        _gemm(a, Wp, dh_prev, p0, p1, False, G, 0, far)       # its units of da W_hh
        _jit.hold(held, t, 0, dh_prev[:, p0 * NR:p1 * NR], kept[w, 0, :, p0 * NR:p1 * NR])
        _jit.hold(held, t, 0, dc_prev, kept[w, 1])             # and pass theirs on

    @njit(cache=True, nogil=True, parallel=True)
    def lstm_backward_cols(A, TCS, CS, Wp, dY, dh, dc, held, nthreads, spin):
        """lstm_backward for a batch too small to split (as lstm_forward_cols): the threads
        split each step's dh_{t-1} = da W_hh by units (whole panels) and meet at the end of
        every step (one region, at `_meet`, with `spin`; else a region a step). Each thread
        computes all of the step's gate gradients in its own copy (B 4H elements, under a
        microsecond) rather than meet a second time, and writes its share of them into A[t]
        one step later, once no thread reads A[t] any more."""
        T, B, G = A.shape
        H = G // 4
        far = _streams(Wp, B)
        DA = np.empty((nthreads, B, G), dtype=A.dtype)         # each thread's da of the step
        DC = np.empty((nthreads, 2, B, H), dtype=A.dtype)      # its dL/dc_t, dL/dc_{t-1}
        DH = np.empty((2, B, H), dtype=A.dtype)                # dL/dh_t, dL/dh_{t-1}: shared
        work = np.empty((nthreads, 3, B, H), dtype=A.dtype)    # lstm_backward's scratch
        d_h = np.empty((nthreads, B, H), dtype=A.dtype)        # dL/dh_t + dY[t], each thread's
        kept = np.empty((nthreads, 2, B, H), dtype=A.dtype)    # held rows' dh, dc
        _jit.copy(DH[T % 2], dh)                               # step t reads DH[(t + 1) % 2]
        for w in range(nthreads):
            _jit.copy(DC[w, T % 2], dc)
        if spin:
            sync = np.zeros(2 * _LINE, dtype=np.int64)
            for w in prange(nthreads):
                for t in range(T - 1, -1, -1):
                    _backward_cols_step(A, TCS, CS, Wp, dY, held, DA, DC, DH, work, d_h, kept, t,
                                        w, nthreads, far)
                    _meet(sync, nthreads)
        else:
            for t in range(T - 1, -1, -1):
                for w in prange(nthreads):
                    _backward_cols_step(A, TCS, CS, Wp, dY, held, DA, DC, DH, work, d_h, kept, t,
                                        w, nthreads, far)
        _jit.copy(A[0], DA[0])                                 # every thread's copy is whole
        _jit.copy(dh, DH[0])
        _jit.copy(dc, DC[0, 0])

    @njit(cache=True, nogil=True, parallel=True)
    def rnn_forward(XP, Wp, bias, HS, held, relu, nthreads):
        """A whole Elman RNN forward over input projections XP (T, B, H), rows split between
        the threads as in `lstm_forward`: each step's h W_hh^T (Wp = pack(W_hh)) on the packed
        kernel straight into HS[t+1], then tanh (or ReLU) of it + XP[t] + bias (H,) in place.
        HS (T+1, B, H) the h carries, HS[0] the initial one; rows with held[t, b] keep theirs."""
        T, B, H = XP.shape
        for w in prange(nthreads):
            b0, b1 = _share(w, B, nthreads)
            for t in range(T):
                h, h_new = HS[t, b0:b1], HS[t + 1, b0:b1]     # (rows, H)
                _gemm(h, Wp, h_new, 0, H // NR, False, H, 0, False)  # h_new = h W_hh^T
                if relu:
                    _jit.rnn_relu_forward(h_new, XP[t, b0:b1], bias)
                else:
                    _jit.rnn_tanh_forward(h_new, XP[t, b0:b1], bias)
                _jit.hold(held, t, b0, h_new, h)

    @njit(cache=True, nogil=True, parallel=True)
    def rnn_backward(Y, Wp, dY, dh, DA, held, relu, nthreads):
        """Steps T-1 .. 0 of the RNN's backward (as rnn.Backward's steps), rows split as in
        `lstm_backward`: Y (T, B, H) the steps' outputs; dY (T, B, H) the output gradients
        (zero at padded steps); DA (T, B, H) <- the pre-activation gradients; Wp =
        pack_rows(W_hh) (H, H); dh (B, H) the gradient of the carry after step T-1 in, of the
        one before step 0 out. A row held at step t feeds nothing into the step and passes
        its gradient on."""
        T, B, H = Y.shape
        for w in prange(nthreads):
            b0, b1 = _share(w, B, nthreads)
            if b1 == b0:
                continue
            d_h = dh[b0:b1].copy()                             # (n, H) dL/dh_t
            dh_prev, kept = np.empty_like(d_h), np.empty_like(d_h)
            for t in range(T - 1, -1, -1):
                _jit.add(d_h, dY[t, b0:b1])                    # output + recurrence
                _jit.stash(held, t, b0, d_h, kept)             # held rows skip the step
                da = DA[t, b0:b1]                              # (n, H)
                if relu:
                    _jit.rnn_relu_backward(Y[t, b0:b1], d_h, da)   # dh [y > 0]
                else:
                    _jit.rnn_tanh_backward(Y[t, b0:b1], d_h, da)   # dh (1 - y^2)
                _gemm(da, Wp, dh_prev, 0, H // NR, False, H, 0, False)  # dh_{t-1} = da W_hh
                _jit.hold(held, t, b0, dh_prev, kept)          # and pass theirs on
                d_h, dh_prev = dh_prev, d_h
            _jit.copy(dh[b0:b1], d_h)

    @njit(cache=True, nogil=True, parallel=True)
    def gru_forward(XP, Wp, bias, b_hn, HS, REC, held, nthreads):
        """A whole reset-after GRU forward over input projections XP (T, B, 3H) (r, z columns
        halved), rows split between the threads as in `lstm_forward`: each step's
        hp = h W_hh^T (Wp = pack(W_hh), unscaled) on the packed kernel, then the step's gate
        math (_jit.gru_after_forward). bias (3H,) scaled as XP, b_hn (H,) or (0,); HS (T+1, B, H)
        the h carries, HS[0] the initial one; REC (T or 1, B, H) gets rec = hp_n + b_hn. With
        REC of T steps (training) the gates r, z, n go over their step's XP (the fused
        forward's cache layout); rows with held[t, b] keep their carry. Each thread streams
        all of W_hh a step; over 8 MB (from H = 848) its tiles prefetch it (_tile's `far`)."""
        T, B, G = XP.shape
        H = HS.shape[2]
        keep = REC.shape[0] == T
        for w in prange(nthreads):
            b0, b1 = _share(w, B, nthreads)
            n = b1 - b0
            if n == 0:
                continue
            far = _streams(Wp, n)                              # W_hh over 8 MB: H >= 848
            hp = np.empty((n, G), dtype=XP.dtype)             # (n, 3H) h W_hh^T of a step
            rz = np.empty((n, 2 * H), dtype=XP.dtype)         # the step's gates
            nn = np.empty((n, H), dtype=XP.dtype)
            for t in range(T):
                h, h_new, xp = HS[t, b0:b1], HS[t + 1, b0:b1], XP[t, b0:b1]
                _gemm(h, Wp, hp, 0, G // NR, False, H, 0, far)  # hp = h W_hh^T
                _jit.gru_after_forward(xp, bias, hp, b_hn, rz, nn, REC[t if keep else 0, b0:b1],
                                       h, h_new)
                if keep:                                       # saved over x_r, x_z, x_n
                    _jit.copy(xp[:, :2 * H], rz)
                    _jit.copy(xp[:, 2 * H:], nn)
                _jit.hold(held, t, b0, h_new, h)

    @njit(cache=True, nogil=True, parallel=True)
    def gru_backward(A, HS, REC, Wp, dY, dh, held, nthreads):
        """The reset-after GRU's backward loop (as gru.Backward's steps), rows split as in
        `lstm_backward`: A (T, B, 3H) the saved gates r, z, n -> their pre-activation gradients,
        in place; HS (T, B, H) h_{t-1}; REC (T, B, H) the saved rec -> dn r, what W_hn's
        output gets, in place; Wp = pack_rows(W_hh) (3H, H); dY (T, B, H) the output gradients
        (zero at padded steps); dh (B, H) the final carry's gradient in, the initial one's out.
        A row held at step t feeds nothing into the step and passes its gradient on."""
        T, B, G = A.shape
        H = G // 3
        for w in prange(nthreads):
            b0, b1 = _share(w, B, nthreads)
            n = b1 - b0
            if n == 0:
                continue
            far = _streams(Wp, n)
            rz = np.empty((n, 2 * H), dtype=A.dtype)          # the step's gates, copied out
            nn = np.empty((n, H), dtype=A.dtype)              # before their gradients land
            dhp = np.empty((n, G), dtype=A.dtype)             # (n, 3H) the recurrent side
            d_h = dh[b0:b1].copy()                             # (n, H) dL/dh_t
            dh_prev, kept = np.empty_like(d_h), np.empty_like(d_h)
            for t in range(T - 1, -1, -1):
                _jit.add(d_h, dY[t, b0:b1])                    # output + recurrence
                _jit.stash(held, t, b0, d_h, kept)             # held rows skip the step
                a = A[t, b0:b1]                                # (n, 3H)
                _jit.copy(rz, a[:, :2 * H])
                _jit.copy(nn, a[:, 2 * H:])
                _jit.gru_backward_zn(HS[t, b0:b1], rz, nn, d_h, a)     # dz, dn
                _jit.gru_after_backward_r(rz, REC[t, b0:b1], a, dhp)   # dr; dhp = dr, dz, dn r
                _jit.copy(REC[t, b0:b1], dhp[:, 2 * H:])       # d rec = dn r, for dW_hn
                _gemm(dhp, Wp, dh_prev, 0, H // NR, False, G, 0, far)  # dh_{t-1} = dhp W_hh
                _jit.gru_direct(dh_prev, d_h, rz)              # + dh z
                _jit.hold(held, t, b0, dh_prev, kept)          # and pass theirs on
                d_h, dh_prev = dh_prev, d_h
            _jit.copy(dh[b0:b1], d_h)
