"""Compiled gate math for the fused kernels: a step's elementwise work in one call, vectorised,
instead of 9-17 NumPy passes.

It needs numba (a dependency of rnnlab); without it, or on the backends below
"compiled" (`rnnlab.backends`), the kernels run their NumPy passes, which compute the same thing.
Each function here is the elementwise part of one kernel step; the GEMMs stay in NumPy's BLAS.

float32 uses a rational tanh (Eigen's `generic_fast_tanh_float`: degree 13/6 on x clamped to
+-7.905, within 3e-7 of tanh; +-1 from |x| >= 9, as float32 tanh; NaN passed through) that the
compiler vectorises; NumPy's float32 tanh is a scalar libm call on machines without AVX-512
(~4 ns an element, against ~0.4 here).
float64 keeps `math.tanh` (libm; within an ulp of NumPy's tanh, not always bit-equal).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backends

try:
    import numba
    from numba import types
    from numba.extending import overload
except ImportError:                                            # the NumPy passes run instead
    numba = None

AVAILABLE = numba is not None


def enabled() -> bool:
    """Whether the compiled gate math runs now: numba installed and the backend in force
    "compiled" or above (rnnlab.backends)."""
    return AVAILABLE and backends.allows("compiled")

_HALF = np.float32(0.5)   # exact in both dtypes, so float32 * _HALF stays float32
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_LIM = np.float32(7.90531110763549805)
_SAT = np.float32(9.0)
_P = tuple(np.float32(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                   5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                   4.89352455891786e-03))
_Q = tuple(np.float32(v) for v in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                   4.89352518554385e-03))


def tanh(x):
    """Scalar tanh as the compiled code sees it (fast rational for float32, libm for float64)."""
    return math.tanh(x)


def _compile(fn):
    return fn


if numba is not None:
    p0, p1, p2, p3, p4, p5, p6 = _P
    q0, q1, q2, q3 = _Q

    @overload(tanh)
    def _tanh_impl(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            def fast(x):
                v = max(min(x, _LIM), -_LIM)                   # clamp; a NaN x comes out NaN
                v2 = v * v
                p = ((((((p0 * v2 + p1) * v2 + p2) * v2 + p3) * v2 + p4) * v2 + p5) * v2 + p6) * v
                q = ((q0 * v2 + q1) * v2 + q2) * v2 + q3
                y = p / q
                if x >= _SAT:                                  # float32 tanh is +-1 exactly there
                    y = _ONE
                if x <= -_SAT:
                    y = -_ONE
                return y
            return fast
        return lambda x: math.tanh(x)

    def _compile(fn):
        # "contract" lets multiply-adds fuse; no nnan/ninf, so NaN and inf propagate as in NumPy.
        # error_model="numpy": no ZeroDivisionError check, which would stop vectorisation.
        return numba.njit(cache=True, nogil=True, error_model="numpy",
                          fastmath={"contract", "arcp", "afn"})(fn)


@_compile
def lstm_gates(a, rec, bias, scale, c, c_new, h_new, tc, u0, u1):
    """The LSTM's gate math for units u0:u1 of every row: a (B, 4H) holds the step's input
    pre-activations (i, f, o halved) -> the activated gates, in place; rec = h W_hh^T
    (unscaled) is added here, or is None where a holds it already (the packed loops' products
    accumulate into a, scaled); bias (4H,) halved as a; scale (4H,) the halving
    (kernels.lstm.input_scale); c (B, H) -> c_new, tc = tanh(c_new), h_new = o tc.

    Written for the vectoriser: each loop writes one array, over views from index 0, and a
    gate block is written only by a loop that reads that same block. A loop whose written array
    the compiler cannot prove apart from its reads (a separate view of the same buffer, several
    gate blocks written at once), or indexed from u0, falls back to scalar code, 3-10x slower
    (measured: 2.2-3.4 ns an element, against 0.3 here). The sigmoids' affine s t + (1 - s)
    rides in the tanh loop: a pass of its own took ~20% of this function at H = 64, 256,
    B = 128."""
    B, G = a.shape
    H = G // 4
    whole = u1 - u0 == H                                       # all units: a row's 4H at once
    for b in range(B):
        for q in range(1 if whole else 4):                     # else each gate's u0:u1
            lo, hi = (0, G) if whole else (q * H + u0, q * H + u1)
            if rec is None:
                _activate(a[b, lo:hi], None, scale[lo:hi], bias[lo:hi])
            else:
                _activate(a[b, lo:hi], rec[b, lo:hi], scale[lo:hi], bias[lo:hi])
    lstm_cell_update(a, c, c_new, h_new, tc, u0, u1)


@_compile
def _activate(r, p, s, z):
    """r <- s tanh(r + z + s p) + 1 - s (p None: no s p term): s(x) = 0.5 tanh(x / 2) + 0.5
    where s = 0.5 (i, f, o), tanh where s = 1 (g)."""
    if p is None:
        for j in range(r.shape[0]):
            r[j] = s[j] * tanh(r[j] + z[j]) + (_ONE - s[j])
    else:
        for j in range(r.shape[0]):
            r[j] = s[j] * tanh(r[j] + z[j] + s[j] * p[j]) + (_ONE - s[j])


@_compile
def copy(dst, src):
    """dst (R, C) = src (R, C), element by element: an array assignment would compile numba's
    shape check and its message (~2 s of a first call)."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] = src[b, j]


@_compile
def add(dst, src):
    """dst (R, C) += src (R, C), as `copy`."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] += src[b, j]


@_compile
def hold(held, t, b0, new, old):
    """The hold rule of every compiled loop: rows of a batch past their length at step t
    (held[t, b0 + b], for rows b0.. of the batch; held (T, 0) when none are) keep their carry,
    new[b] = old[b]; backwards, they pass their carry gradient on (new = the step's d carry,
    old = what `stash` kept)."""
    if held.shape[1]:
        for b in range(new.shape[0]):
            if held[t, b0 + b]:
                for j in range(new.shape[1]):                  # element by element: a row
                    new[b, j] = old[b, j]                      # copy compiles a shape check


@_compile
def stash(held, t, b0, d, kept):
    """Backwards, before step t: a held row's carry gradient skips the step (it feeds
    nothing into it): kept[b] = d[b], d[b] = 0; `hold` puts it back after the step."""
    if held.shape[1]:
        for b in range(d.shape[0]):
            if held[t, b0 + b]:
                for j in range(d.shape[1]):
                    kept[b, j] = d[b, j]
                    d[b, j] = 0


@_compile
def lstm_cell_update(a, c, c_new, h_new, tc, u0, u1):
    """Units u0:u1 of every row, from the activated gates a (B, 4H): c_new = f c + i g,
    tc = tanh(c_new), h_new = o tc. Every loop runs over views from index 0 and writes one of
    them: indexed from u0 instead, LLVM left the loops scalar, 3x slower."""
    B, G = a.shape
    H = G // 4
    for b in range(B):
        i, f = a[b, u0:u1], a[b, H + u0:H + u1]
        g, cb, cn = a[b, 2 * H + u0:2 * H + u1], c[b, u0:u1], c_new[b, u0:u1]
        for j in range(cn.shape[0]):
            cn[j] = f[j] * cb[j] + i[j] * g[j]                 # c' = f c + i g
    for b in range(B):
        cn, tb = c_new[b, u0:u1], tc[b, u0:u1]
        for j in range(tb.shape[0]):
            tb[j] = tanh(cn[j])
    for b in range(B):
        o, tb, hn = a[b, 3 * H + u0:3 * H + u1], tc[b, u0:u1], h_new[b, u0:u1]
        for j in range(hn.shape[0]):
            hn[j] = o[j] * tb[j]                               # h' = o tanh(c')


@_compile
def transpose(a, out):
    """out (C, R) = a (R, C)^T, 16 rows of a at a time: a pass reads 16 rows in step and writes
    16 contiguous elements of every row of out. NumPy's copy of a.T walks a column at a time,
    which at power-of-two row strides thrashes the cache: 28 ms against 5 here at (4096, 1024)
    float32, 0.28 against 0.12 at (1024, 256)."""
    R, C = a.shape
    top = R - R % 16
    for i0 in range(0, top, 16):
        for j in range(C):
            for i in range(16):
                out[j, i0 + i] = a[i0 + i, j]
    for i in range(top, R):
        for j in range(C):
            out[j, i] = a[i, j]


def transposed(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of a.T (compiled when enabled(), else NumPy's)."""
    if not enabled():
        return np.ascontiguousarray(a.T)
    out = np.empty(a.shape[::-1], dtype=a.dtype)
    transpose(a, out)
    return out


@_compile
def matmul_rows(h, wt, out):
    """out (B, G) = h (B, H) @ wt (H, G), each row as H axpys over wt's contiguous rows: these
    vectorise without reassociating a sum, and at a small batch they take ~1 us where a BLAS
    call's overhead alone is 3-5 us."""
    B, H = h.shape
    G = out.shape[1]
    for b in range(B):
        r = out[b]
        for j in range(G):
            r[j] = 0
        for q in range(H):
            v, w = h[b, q], wt[q]
            for j in range(G):
                r[j] += w[j] * v


@_compile
def product(gemm, a, w, out):
    """out (B, N) = a (B, K) @ w (K, N), a C-contiguous: through NumPy's BLAS (`gemm`,
    cblas_?gemm, kernels._blas), w contiguous or the transposed view of a contiguous (N, K);
    or, with gemm None, matmul_rows (a small batch; w contiguous)."""
    B, K = a.shape
    N = out.shape[1]
    if gemm is None:
        matmul_rows(a, w, out)
    elif w.strides[1] == w.itemsize:                           # row-major (101), NoTrans (111)
        gemm(101, 111, 111, B, N, K, 1.0, a.ctypes.data, K, w.ctypes.data, N, 0.0,
             out.ctypes.data, N)
    else:                                                      # w = (N, K)^T: CblasTrans (112)
        gemm(101, 111, 112, B, N, K, 1.0, a.ctypes.data, K, w.ctypes.data, K, 0.0,
             out.ctypes.data, N)


@_compile
def lstm_forward_loop(gemm, XP, wt, bias, scale, HS, CS, TC, rec, held):
    """A whole LSTM forward, no Python between steps: per step rec = h wt (`product`: NumPy's
    BLAS through `gemm`, or matmul_rows at a small batch with gemm None; wt = W_hh^T (H, 4H),
    a contiguous copy or, with gemm, the view W_hh.T), then lstm_gates, the gates left in XP.
    HS (T+1, B, H) the h carries; CS the c carries, (T+1, B, H), or (2, B, H) used as a ring
    (inference); TC (T, B, H) kept or (1, B, H) scratch; rec (B, 4H) scratch; rows with
    held[t, b] keep their carries (padded steps; held is (T, 0) when there are none)."""
    T, B, G = XP.shape
    keep = TC.shape[0] == T
    n = CS.shape[0]
    for t in range(T):
        product(gemm, HS[t], wt, rec)
        c, c_new = CS[t % n], CS[(t + 1) % n]                # t, t + 1 unless a ring of 2
        lstm_gates(XP[t], rec, bias, scale, c, c_new, HS[t + 1], TC[t if keep else 0], 0, G // 4)
        hold(held, t, 0, HS[t + 1], HS[t])
        hold(held, t, 0, c_new, c)


@_compile
def lstm_backward_loop(gemm, A, TCS, CS, w, dY, dh, dc, held, work):
    """The whole LSTM backward, no Python between steps: each step's da W_hh through `product`
    (as lstm_forward_loop). A (T, B, 4H) the activated gates -> their pre-activation gradients;
    TCS (T, B, H) tanh(c_t); CS (T, B, H) c_{t-1}; w (4H, H) W_hh, contiguous; dY (T, B, H)
    output gradients (zero at padded steps); dh, dc (B, H) the final carry's gradients in, the
    initial carry's out. A row held at step t (padding) feeds nothing into the step and passes
    its carry gradients on, as BackwardSteps.step does. work (3, B, H): lstm_backward's
    scratch."""
    T = A.shape[0]
    dh_prev, dc_prev = np.empty_like(dh), np.empty_like(dc)
    kept_h, kept_c = np.empty_like(dh), np.empty_like(dc)     # held rows' gradients
    d_h, d_c = dh.copy(), dc.copy()                            # (B, H) dL/dh_t, dL/dc_t
    for t in range(T - 1, -1, -1):
        add(d_h, dY[t])                                        # output + recurrence
        stash(held, t, 0, d_h, kept_h)                         # held rows skip the step
        stash(held, t, 0, d_c, kept_c)
        lstm_backward(A[t], TCS[t], CS[t], d_h, d_c, dc_prev, work)
        product(gemm, A[t], w, dh_prev)                        # back through W_hh
        hold(held, t, 0, dh_prev, kept_h)                      # and pass theirs on
        hold(held, t, 0, dc_prev, kept_c)
        d_h, dh_prev = dh_prev, d_h
        d_c, dc_prev = dc_prev, d_c
    copy(dh, d_h)
    copy(dc, d_c)


@_compile
def lstm_backward(a, tc, c, dh, dc, dc_prev, work):
    """a (B, 4H): activated gates -> their pre-activation gradients; dc_prev = dL/dc_{t-1};
    work (3, B, H) scratch. One array written a loop, as in lstm_forward (2.5x faster than
    one loop writing all five)."""
    B, H = c.shape
    D, DG, DG_I = work[0], work[1], work[2]
    for b in range(B):
        for j in range(H):
            t = tc[b, j]
            D[b, j] = dc[b, j] + dh[b, j] * a[b, 3 * H + j] * (_ONE - t * t)   # dc + dh o tanh'(c)
    for b in range(B):
        for j in range(H):
            dc_prev[b, j] = D[b, j] * a[b, H + j]              # c' = f c + i g
    for b in range(B):
        for j in range(H):
            g = a[b, 2 * H + j]
            DG[b, j] = D[b, j] * a[b, j] * (_ONE - g * g)      # dg tanh'(g), aside
    for b in range(B):
        for j in range(H):
            DG_I[b, j] = D[b, j] * a[b, 2 * H + j]             # di = dc g, aside: g goes next
    for b in range(B):
        for j in range(H):
            i = a[b, j]
            a[b, j] = DG_I[b, j] * i * (_ONE - i)              # di s'(i)
    for b in range(B):
        for j in range(H):
            f = a[b, H + j]
            a[b, H + j] = D[b, j] * c[b, j] * f * (_ONE - f)   # df s'(f), df = dc c_prev
    for b in range(B):
        for j in range(H):
            a[b, 2 * H + j] = DG[b, j]
    for b in range(B):
        for j in range(H):
            o = a[b, 3 * H + j]
            a[b, 3 * H + j] = dh[b, j] * tc[b, j] * o * (_ONE - o)   # do s'(o), do = dh tanh(c)


@_compile
def rnn_tanh_forward(h_new, xp, bias):
    """h_new (B, H) holds h W_hh^T -> tanh(that + xp + bias)."""
    B, H = h_new.shape
    for b in range(B):
        for j in range(H):
            h_new[b, j] = tanh(h_new[b, j] + xp[b, j] + bias[j])


@_compile
def rnn_tanh_backward(y, dh, da):
    """da = dh (1 - y^2), y the step's output."""
    B, H = y.shape
    for b in range(B):
        for j in range(H):
            da[b, j] = dh[b, j] * (_ONE - y[b, j] * y[b, j])


@_compile
def rnn_relu_forward(h_new, xp, bias):
    """h_new (B, H) holds h W_hh^T -> max(that + xp + bias, 0) (NaN kept, as np.maximum)."""
    B, H = h_new.shape
    for b in range(B):
        for j in range(H):
            v = h_new[b, j] + xp[b, j] + bias[j]
            h_new[b, j] = v if not v < 0 else _ZERO


@_compile
def rnn_relu_backward(y, dh, da):
    """da = dh [y > 0], y the step's output (relu' from it)."""
    B, H = y.shape
    for b in range(B):
        for j in range(H):
            da[b, j] = dh[b, j] * (_ONE if y[b, j] > 0 else _ZERO)


@_compile
def gru_gates(xp, bias, hp, rz):
    """rz (B, 2H) = s(xp + bias + hp / 2) over r and z (xp, bias halved already, hp = h W_hh^T
    unscaled)."""
    B, H2 = rz.shape
    for b in range(B):
        for j in range(H2):
            rz[b, j] = _HALF * tanh(xp[b, j] + bias[j] + _HALF * hp[b, j]) + _HALF


@_compile
def gru_after_forward(xp, bias, hp, b_hn, rz, n, rec, h, h_new):
    """Reset-after, from hp = h W_hh^T (B, 3H, unscaled): r, z = s(xp + bias + hp / 2) (xp,
    bias halved), rec = hp_n + b_hn, n = tanh(x_n + bias_n + r rec),
    h_new = n + z (h - n). `b_hn` has H entries or none."""
    B, H = n.shape
    has_hn = b_hn.shape[0] > 0
    gru_gates(xp, bias, hp, rz)                                # r, z from the first 2H columns
    for b in range(B):
        for j in range(H):
            q = hp[b, 2 * H + j] + b_hn[j] if has_hn else hp[b, 2 * H + j]
            rec[b, j] = q
            v = tanh(xp[b, 2 * H + j] + bias[2 * H + j] + rz[b, j] * q)
            n[b, j] = v
            h_new[b, j] = v + rz[b, H + j] * (h[b, j] - v)


@_compile
def gru_before_reset(rz, h, rec):
    """Reset-before, between the GEMMs: rec = r h."""
    B, H = h.shape
    for b in range(B):
        for j in range(H):
            rec[b, j] = rz[b, j] * h[b, j]


@_compile
def gru_before_forward(xp, bias, rz, n, h, h_new):
    """Reset-before, after rec W_hn^T is in n: n = tanh(n + x_n + bias_n),
    h_new = n + z (h - n)."""
    B, H = n.shape
    for b in range(B):
        for j in range(H):
            v = tanh(n[b, j] + xp[b, 2 * H + j] + bias[2 * H + j])
            n[b, j] = v
            h_new[b, j] = v + rz[b, H + j] * (h[b, j] - v)


@_compile
def gru_backward_zn(h, rz, n, dh, da):
    """da[:, H:] (B, 2H) <- gradients of the z and n pre-activations (h' = n + z (h - n))."""
    B, H = n.shape
    for b in range(B):
        for j in range(H):
            z, v, d = rz[b, H + j], n[b, j], dh[b, j]
            da[b, H + j] = d * (h[b, j] - v) * z * (_ONE - z)  # dz s'(z)
            da[b, 2 * H + j] = d * (_ONE - z) * (_ONE - v * v)  # dn tanh'(n)


@_compile
def gru_after_backward_r(rz, rec, da, dhp):
    """Reset-after: dr = dn rec s'(r) into da; dhp (B, 3H) = the recurrent side: dr, dz, dn r."""
    B, H = rec.shape
    for b in range(B):
        for j in range(H):
            r = rz[b, j]
            dhp[b, j] = da[b, 2 * H + j] * rec[b, j] * r * (_ONE - r)   # dr = dn rec s'(r)
    for b in range(B):
        for j in range(H):
            dhp[b, H + j] = da[b, H + j]                       # dz
    for b in range(B):
        for j in range(H):
            dhp[b, 2 * H + j] = da[b, 2 * H + j] * rz[b, j]    # d rec = dn r
    for b in range(B):
        for j in range(H):
            da[b, j] = dhp[b, j]


@_compile
def gru_before_backward_r(rz, h, drh, da):
    """Reset-before, drh = dn W_hn (the gradient of rec = r h): dr = drh h s'(r) into da;
    drh becomes drh r, rec's share of dh_prev."""
    B, H = h.shape
    for b in range(B):
        for j in range(H):
            r = rz[b, j]
            da[b, j] = drh[b, j] * h[b, j] * r * (_ONE - r)
            drh[b, j] *= r


@_compile
def gru_direct(dh_prev, dh, rz):
    """dh_prev += dh z, the direct path of h' = n + z (h - n)."""
    B, H = dh.shape
    for b in range(B):
        for j in range(H):
            dh_prev[b, j] += dh[b, j] * rz[b, H + j]
