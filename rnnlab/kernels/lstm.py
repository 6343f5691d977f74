"""Fused LSTM (gate order i, f, g, o; no peephole, CIFG or projection): 1 GEMM + 9 passes a
step forward, 1 GEMM + 13 passes backward.

The sigmoid gates use s(a) = 0.5 tanh(0.5 a) + 0.5 with the 0.5 folded into the input
projections and a scaled copy of W_hh, so one tanh covers all four gates.
"""

from __future__ import annotations

import numpy as np

from . import _blas, _jit, _packed
from ._buffers import (
    BackwardSteps,
    ForwardSteps,
    carry_buffer,
    held_steps,
    hold_rows,
    masked,
    step_weights,
    steps,
)


def input_scale(cell, dtype) -> np.ndarray:
    """(4H,) 0.5 on the sigmoid gates i, f, o; 1 on the candidate g."""
    H = cell.hidden_size
    s = np.full(4 * H, 0.5, dtype=dtype)
    s[2 * H:3 * H] = 1
    return s


def compiled_loop(B: int, H: int) -> bool:
    """Whether the forward runs as one compiled loop with its own matmul (_jit.lstm_forward_loop):
    measured 0.44-0.92x the time of BLAS calls from Python at H <= 256 with B <= 4, and at
    B H <= 512; 1.09-1.53x at H = 128, B = 8 and at H = 512, B = 1."""
    return H <= 256 and (B <= 4 or B * H <= 512)


def blas_loop(B: int, dtype):
    """NumPy's cblas_?gemm for the compiled loops that call it (_blas) from B = 4 rows, or None:
    at B = 1 NumPy's matmul runs a GEMV where the GEMM took 3-7x as long (H = 512, 1024), and
    at B = 2 the loop read 1.02-1.11x; from B = 4, 0.82-1.03x (mostly ~0.94)."""
    return _blas.gemm(dtype) if B >= 4 else None


def packed_loop(B: int, H: int, dtype, keep_cache: bool, streaming: bool) -> bool:
    """Whether the forward runs on rnnlab's own packed GEMM and threads (_packed): where
    _packed.usable (OpenBLAS's jobs on numba's threads too, or OpenBLAS on one thread), float32
    over a whole sequence, H a multiple of 16 from 64 to 512 (to 1024 with the units split,
    `wide`); from H = 128 at any batch (the units split at B = 1, lstm_forward_cols); below
    it, in training from B = 2 (as packed_training), in inference not a tiny problem (where
    compiled_loop's one thread is faster).

    Inference against the BLAS loop, one pool (_pool), interleaved, T = 50: 0.54-0.96x at
    H = 64-512, B = 8-256, but 1.05 at H = 512, B = 128; at H = 32, B = 128 1.47x and at H = 16,
    B = 256 1.86x (a K of 16-32 rows is too short for the tiles), hence H >= 64. At H = 1024
    (one OpenBLAS thread) it read 0.83-1.40x with the rows split; see `wide` for H > 512."""
    if streaming:
        return False
    if not _packed.fits(H, dtype):
        return wide(H, dtype)
    return H >= 128 or (B > 1 if keep_cache else B * H > 512)


def wide(H: int, dtype) -> bool:
    """Whether a call at H > 512 (to 1024, a multiple of 16, float32) runs the packed loops
    with the units split (lstm_forward_cols, lstm_backward_cols), its input projection on
    OpenBLAS below 1024 rows (projects_packed). With the rows split each thread streams all
    of W_hh every step (16 MB at H = 1024, more than stays cached here); split by units, each
    streams its half.

    At H = 1024, whole calls against the BLAS loop's, interleaved: inference 0.85x at B = 32
    (T = 50, 200), 0.87-1.01x at B = 128, 0.93x at B = 1, T = 200 but 1.06x at T = 50 (16 MB
    of W_hh packed a call); training (T = 50) 0.85x at B = 32, 0.97x at B = 1 and 128. Loops
    alone at T = 50: 0.38x at B = 8, 0.79x at B = 32, 64."""
    return H > 512 and _packed.fits(H, dtype, widest=_packed.WIDEST)


def units_split(B: int, H: int) -> bool:
    """Whether the packed loops split units between the threads rather than rows. Not at
    H <= 512 from B = 8 (with the spin barrier, inference T = 50 against the rows split:
    1.03x at H = 256, B = 32, 128; 1.11x at B = 8; 1.15-1.31x at H = 64-128, B = 32)."""
    return B == 1 or H > 512


def in_place(B: int, H: int) -> bool:
    """Whether the packed forward (the units split, at B = 1) reads W_hh as the cell stores
    it, 16 rows at a time (_packed._dots), rather than packed: one load of W_hh a FMA where
    the one-row tile takes two, and no W_hh packed a call. Whole calls against the packed
    W_hh, interleaved, T = 50: inference 0.78-0.83x at H = 128-256 (0.76-0.85x at T = 200),
    0.74-0.75x at H = 384-512, 0.86-0.94x at H = 640-896; training 0.83-0.93x at H = 128-512.
    Not at H = 1024 (1.45x at T = 50): its rows lie 4 KB apart, so 16 of them share one set
    of the 8-way L1. Not at B = 2: 0.85-0.89x at H = 256-512, but 1.05x at H = 128 and 1.18x
    at H = 768; at B = 4-8, 1.18-1.40x (each row of the batch sums across lanes again)."""
    return B == 1 and H < 1024


def projects_packed(T: int, B: int, H: int, dtype, keep_cache: bool) -> bool:
    """Whether the input projection runs on _packed too (packed_projection): with the packed
    loop, from enough rows (T B) that the product outweighs packing W_ih, which comes from
    memory once it is large (16 MB at H = 1024, ~2 ms). Whole calls against OpenBLAS's
    projection, interleaved: at H = 1024 0.96-0.99x at B = 32, 128 (T = 50, 200; inference
    and training) but 1.01-1.03x at B = 1; at H = 512 0.92-0.95x from 200 rows but 1.16x
    at 50 (B = 1, T = 50); at H = 128, 256 0.97-1.03x at 50 rows. At H = 64 the product alone
    takes 1.06-1.11x OpenBLAS's time at 25600 rows, but whole calls through OpenBLAS took
    1.03-1.10x as long (B = 32-128, T = 50-200; one run 0.93x)."""
    rows = 0 if H <= 256 else 128 if H <= 512 else 1024
    return T * B >= rows and packed_loop(B, H, dtype, keep_cache, False)


def packed_training(B: int, H: int, dtype) -> bool:
    """Whether a training call's backward loop runs on _packed: as packed_loop with the cache
    kept. B > 1: the rows split between the threads; one pool, interleaved, whole forward +
    backward calls at T = 50: 0.66-0.97x the BLAS loop's time at H = 64-512, B = 8-256, but
    1.02 at H = 512, B = 64 (and once 1.08 at H = 256, B = 128; 0.93 in another run).
    B = 1 from H = 128, and H > 512 (`wide`): the units split (lstm_forward_cols,
    lstm_backward_cols). At B = 1, against the one-thread compiled forward and the backward's
    steps from Python, whole calls interleaved:
    0.85-1.02x at H = 128, T = 50; 0.59-0.85x at H = 256, T = 50, 200; 0.84-1.11x at H = 512.
    A step meets the other thread twice (forward, backward), so a slow second core costs more:
    in one slow spell (torch 1.5-1.8x its usual time) the split calls read 1.04-1.41x."""
    return packed_loop(B, H, dtype, keep_cache=True, streaming=False)


def packed_projection(xs: np.ndarray, w: np.ndarray, scale: np.ndarray | None,
                      out: np.ndarray | None) -> np.ndarray:
    """(N, G) xs (N, D) (w scale)^T through _packed, on numba's threads (the packed loop's
    pool); w (G, D) with G a multiple of 16, scale (G,) or None, taken as w is packed."""
    G = w.shape[0]
    threads = _packed.threads()
    wp = _packed.packed(w, scale)
    out = np.empty((xs.shape[0], G), dtype=np.float32) if out is None else out
    _packed.project(np.ascontiguousarray(xs, dtype=np.float32), wp, out, threads)
    return out


def plan(cell, B: int, dtype, keep_cache: bool, streaming: bool) -> tuple[str, str]:
    """The loops a call's forward and backward run (as Forward.run and Backward.run choose
    them, for contiguous float input), in words: see rnnlab.backends.plan."""
    H = cell.hidden_size

    def packed(on: bool) -> str | None:
        return None if not on else "packed, units split" if units_split(B, H) else "packed, rows split"
    own = _jit.enabled() and compiled_loop(B, H)
    forward = (packed(packed_loop(B, H, dtype, keep_cache, streaming))
               or ("compiled loop, NumPy's BLAS" if not compiled_loop(B, H) and blas_loop(B, dtype) else None)
               or ("compiled loop, own matmul" if own else None) or steps())
    backward = (packed(packed_training(B, H, dtype))
                or ("compiled loop, NumPy's BLAS" if blas_loop(B, dtype) else None)
                or ("compiled loop, own matmul" if own else None) or steps())
    return forward, backward


class Forward(ForwardSteps):
    saves_projections = True  # the activated gates overwrite XP and are kept for backward

    def __init__(self, cell, p, XP, carry, keep_cache: bool, bias, steps: float) -> None:
        T, B, G = XP.shape
        H = cell.hidden_size
        self.H, self.keep = H, keep_cache
        self.XP, self.bias = XP, bias              # input projections and bias (4H,), scaled
        self.jit = _jit.enabled()
        self.packed = (packed_loop(B, H, XP.dtype, keep_cache, steps == np.inf) and XP.flags.c_contiguous
                       and all(c.dtype == XP.dtype for c in carry))    # float32 throughout
        self.gemm = None if compiled_loop(B, H) else blas_loop(B, XP.dtype)
        self.scale = scale = input_scale(cell, XP.dtype)       # (4H,)
        # (H, 4H) W_hh^T, a contiguous copy where it pays (step_weights; the compiled loop reads
        # rows of it): the compiled step halves the sigmoid columns itself, the NumPy step reads
        # a scaled view
        if self.packed:                            # W_hh^T scaled, in 16-column panels, or
            self.threads = _packed.threads()       # W_hh (4H, H) as it is (in_place)
            self.w = (np.ascontiguousarray(p.w_hh, dtype=np.float32) if in_place(B, H)
                      else _packed.packed(p.w_hh, scale))
        elif not self.jit:
            self.w = (p.w_hh * scale[:, None]).T
        elif compiled_loop(B, H):
            self.w = _jit.transposed(p.w_hh)
        else:
            self.w = step_weights(p.w_hh, B, steps)
        if self.packed or not (self.w.flags.c_contiguous or self.w.T.flags.c_contiguous):
            self.gemm = None                       # the BLAS loop reads W_hh^T or W_hh in place
        self.HS = carry_buffer(T, carry[0])                    # (T+1, B, H): the outputs
        # (T+1, B, H) c kept for backward, or a ring of two (B, H) rows: c_t in CS[t % 2]
        self.CS = carry_buffer(T if keep_cache else 1, carry[1])
        self.carries = (self.HS, self.CS)
        # the activated gates (T, B, 4H) overwrite their own input projections in XP, kept or not
        self.TC = np.empty((T if keep_cache else 1, B, H), dtype=XP.dtype)   # tanh(c_t)
        self.rec = np.empty((B, G), dtype=XP.dtype)            # h W_hh^T of one step
        self.tmp = np.empty((B, H), dtype=XP.dtype)

    def run(self, mask, padded) -> None:
        """One compiled loop: on rnnlab's own GEMM and threads (see packed_loop), with its own
        matmul at a small batch (see compiled_loop), else with NumPy's BLAS called from it
        (_blas); step by step from Python without those."""
        T, B, _ = self.XP.shape
        held = held_steps(mask, T)
        if self.packed:
            args = (self.XP, self.w, self.bias, self.scale, self.HS, self.CS, self.TC, held,
                    self.threads)
            if units_split(B, self.H):
                _packed.lstm_forward_cols(*args, _packed.meets(self.threads))
            else:
                _packed.lstm_forward(*args)
        elif self.gemm is not None or (self.jit and compiled_loop(B, self.H)):
            _jit.lstm_forward_loop(self.gemm, self.XP, self.w, self.bias, self.scale, self.HS,
                                   self.CS, self.TC, self.rec, held)
        else:
            super().run(mask, padded)

    def step(self, t: int, hold) -> None:
        a, tc = self.XP[t], self.TC[t if self.keep else 0]     # (B, 4H), (B, H)
        n = self.CS.shape[0]
        h, c, h_new, c_new = self.HS[t], self.CS[t % n], self.HS[t + 1], self.CS[(t + 1) % n]
        np.matmul(h, self.w, out=self.rec)                     # recurrent pre-activations
        if self.jit:
            _jit.lstm_gates(a, self.rec, self.bias, self.scale, c, c_new, h_new, tc, 0, self.H)
        else:
            self.rec += self.bias                              # (B, 4H): the step's share
            a += self.rec
            self._gates(a, c, c_new, h_new, tc)
        hold_rows(hold, (h_new, c_new), (h, c))

    def _gates(self, a, c, c_new, h_new, tc) -> None:
        H = self.H
        np.tanh(a, out=a)                                      # all gates in one pass
        sig = a[:, :2 * H]                                     # i, f: 0.5 tanh + 0.5
        sig *= 0.5
        sig += 0.5
        o = a[:, 3 * H:]
        o *= 0.5
        o += 0.5
        np.multiply(a[:, H:2 * H], c, out=c_new)               # f c
        np.multiply(a[:, :H], a[:, 2 * H:3 * H], out=self.tmp)  # i g
        c_new += self.tmp
        np.tanh(c_new, out=tc)
        np.multiply(o, tc, out=h_new)                          # h = o tanh(c)

    def final(self):
        T = self.HS.shape[0] - 1
        return self.HS[T], self.CS[T % self.CS.shape[0]]

    def caches(self):
        return (self.HS[:-1], self.CS[:-1], self.XP, self.CS[1:], self.TC)   # reference layout


class Backward(BackwardSteps):
    def __init__(self, cell, p, caches, dcarry, x=None) -> None:   # x: read by the RNN's only
        self.h, self.c, self.act, _, self.tc = caches
        _, B, G = self.act.shape
        H = cell.hidden_size
        self.H, self.w = H, p.w_hh                             # (4H, H)
        self.DA = self.act                    # pre-activation grads = dXP, in the gates' place
        self.d = tuple(np.array(d, dtype=self.act.dtype) for d in dcarry)   # dh, dc (B, H)
        self.nxt = tuple(np.empty_like(d) for d in self.d)
        self.jit = _jit.enabled()
        dtype = self.act.dtype
        if self.jit:
            self.work = np.empty((3, B, H), dtype=dtype)       # scratch of lstm_backward
        else:                                                  # scratch of the NumPy passes
            self.ds = np.empty((B, G), dtype=dtype)            # local derivatives of the gates
            self.tmp = np.empty((B, H), dtype=dtype)
            self.di = np.empty((B, H), dtype=dtype)

    consumes_cache = True     # the saved gates become their gradients: one backward per forward

    def run(self, dY, mask, padded) -> None:
        """One compiled loop: on rnnlab's own GEMM and threads (see packed_training), or with
        NumPy's BLAS called from it (_blas), or below the BLAS loop's batch with its own
        matmul where the forward's compiled loop runs (compiled_loop); step by step from
        Python without those. The own matmul against the steps, whole training calls,
        interleaved: float32 0.66x at H = 64, B = 1, T = 200, 0.81x at T = 50, 0.70x at
        H = 32, B = 2; float64 0.97-1.01x at H = 128-256, B = 1-2 (its gate math dominates)."""
        T, B, _ = dY.shape
        packed = packed_training(B, self.H, self.act.dtype)
        gemm = None if packed else blas_loop(B, self.act.dtype)
        own = self.jit and not packed and gemm is None and compiled_loop(B, self.H)
        if not (packed or own or gemm is not None) or not self.act.flags.c_contiguous:
            return super().run(dY, mask, padded)
        held = held_steps(mask, T)
        dY = np.ascontiguousarray(dY, dtype=self.act.dtype)
        tc, c, w = (np.ascontiguousarray(a) for a in (self.tc, self.c, self.w))
        if packed:
            wp = _packed.packed_rows(w)                        # W_hh (4H, H) in 16-col panels
            threads = _packed.threads()
            args = (self.act, tc, c, wp, dY, self.d[0], self.d[1], held, threads)
            if units_split(B, self.H):
                _packed.lstm_backward_cols(*args, _packed.meets(threads))
            else:
                _packed.lstm_backward(*args)
        else:
            _jit.lstm_backward_loop(gemm, self.act, tc, c, w, dY, self.d[0], self.d[1], held,
                                    self.work)

    def step(self, t: int, dy, hold) -> None:
        np.add(self.d[0], dy, out=self.d[0])                    # dL/dh_t: output + recurrence
        dh, dc = masked(hold, self.d)
        a, tc, c = self.act[t], self.tc[t], self.c[t]
        dh_prev, dc_prev = self.nxt
        if self.jit:
            _jit.lstm_backward(a, tc, c, dh, dc, dc_prev, self.work)   # _gate_grads, compiled
        else:
            self._gate_grads(a, tc, c, dh, dc, dc_prev)
        np.matmul(a, self.w, out=dh_prev)                      # back through W_hh
        self.finish_step(hold)

    def _gate_grads(self, a, tc, c, dh, dc, dc_prev) -> None:
        H, ds, tmp = self.H, self.ds, self.tmp
        da = a                                                 # gradients overwrite the gates
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        np.subtract(1, a, out=ds)                              # s' = s (1 - s) for i, f, o
        ds *= a
        np.multiply(g, g, out=ds[:, 2 * H:3 * H])              # tanh' = 1 - g^2 for g
        np.subtract(1, ds[:, 2 * H:3 * H], out=ds[:, 2 * H:3 * H])
        np.multiply(tc, tc, out=tmp)                           # dc += dh o (1 - tanh(c)^2)
        np.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc = np.add(dc, tmp, out=tmp)
        np.multiply(dc, f, out=dc_prev)                        # c' = f c + i g
        np.multiply(dc, g, out=self.di)                        # di = dc g, aside: g goes next
        np.multiply(dc, i, out=g)                              # dg = dc i
        np.copyto(i, self.di)
        np.multiply(dc, c, out=f)                              # df = dc c_prev
        np.multiply(dh, tc, out=o)                             # do = dh tanh(c)
        da *= ds                                               # through the activations
