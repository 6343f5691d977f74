"""Fused LSTM (gate order i, f, g, o; no peephole, CIFG or projection): 1 GEMM + 9 passes a
step forward, 1 GEMM + 13 passes backward.

The sigmoid gates use s(a) = 0.5 tanh(0.5 a) + 0.5 with the 0.5 folded into the input
projections and a scaled copy of W_hh, so one tanh covers all four gates.
"""

from __future__ import annotations

import numpy as np

from . import _blas, _jit, _packed
from ._buffers import (BackwardSteps, ForwardSteps, carry_buffer, held_steps, hold_rows, masked,
    step_weights)


def input_scale(cell, dtype) -> np.ndarray:
    """(4H,) 0.5 on the sigmoid gates i, f, o; 1 on the candidate g."""
    H = cell.hidden_size
    s = np.full(4 * H, 0.5, dtype=dtype)
    s[2 * H:3 * H] = 1
    return s


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


def laid_out(caches) -> bool:
    """Whether a forward's cache suits the compiled backward loops (its gates C-contiguous)."""
    return caches[2].flags.c_contiguous


class Forward(ForwardSteps):
    saves_projections = True  # the activated gates overwrite XP and are kept for backward

    def __init__(self, cell, p, XP, carry, keep_cache: bool, bias, steps: float, path,
                 hs=None) -> None:
        T, B, G = XP.shape
        H = cell.hidden_size
        self.H, self.keep, self.path = H, keep_cache, path
        self.XP, self.bias = XP, bias              # input projections and bias (4H,), scaled
        self.jit = path.gate_math == "compiled"
        self.scale = scale = input_scale(cell, XP.dtype)       # (4H,)
        self.gemm = _blas.gemm(XP.dtype) if path.forward == "blas" else None
        # W_hh as the loop reads it: packed, W_hh^T scaled in 16-column panels, or W_hh (4H, H)
        # as it is (in_place); the compiled loops and steps read W_hh^T (H, 4H), a contiguous
        # copy where it pays (step_weights), halving the sigmoid columns themselves; the NumPy
        # steps read a scaled view
        if path.forward == "packed":
            self.threads = _packed.threads()
            self.w = (np.ascontiguousarray(p.w_hh, dtype=np.float32) if path.in_place
                      else _packed.packed(p.w_hh, scale))
        elif not self.jit:
            self.w = (p.w_hh * scale[:, None]).T
        elif path.forward == "own":
            self.w = _jit.transposed(p.w_hh)
        else:
            self.w = step_weights(p.w_hh, B, steps)
        self.HS = carry_buffer(T, carry[0], hs)                    # (T+1, B, H): the outputs
        # (T+1, B, H) c kept for backward, or a ring of two (B, H) rows: c_t in CS[t % 2]
        self.CS = carry_buffer(T if keep_cache else 1, carry[1])
        self.carries = (self.HS, self.CS)
        # the activated gates (T, B, 4H) overwrite their own input projections in XP, kept or not
        self.TC = np.empty((T if keep_cache else 1, B, H), dtype=XP.dtype)   # tanh(c_t)
        self.rec = np.empty((B, G), dtype=XP.dtype)            # h W_hh^T of one step
        self.tmp = np.empty((B, H), dtype=XP.dtype)

    def run(self, mask, padded) -> None:
        """The loop the path names: packed (rows or units split), one compiled loop (NumPy's
        BLAS or its own matmul), or steps from Python."""
        T, B, _ = self.XP.shape
        held = held_steps(mask, T)
        loop = self.path.forward
        if loop == "packed":
            args = (self.XP, self.w, self.bias, self.scale, self.HS, self.CS, self.TC, held,
                    self.threads)
            if self.path.split == "units":
                _packed.lstm_forward_cols(*args, _packed.meets(self.threads))
            else:
                _packed.lstm_forward(*args)
        elif loop in ("blas", "own"):
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
    def __init__(self, cell, p, caches, dcarry, x, path) -> None:   # x: read by the RNN's only
        self.h, self.c, self.act, _, self.tc = caches
        _, B, G = self.act.shape
        H = cell.hidden_size
        self.path = path
        self.H, self.w = H, p.w_hh                             # (4H, H)
        self.DA = self.act                    # pre-activation grads = dXP, in the gates' place
        self.d = tuple(np.array(d, dtype=self.act.dtype) for d in dcarry)   # dh, dc (B, H)
        self.nxt = tuple(np.empty_like(d) for d in self.d)
        self.jit = path.gate_math == "compiled"
        dtype = self.act.dtype
        if self.jit:
            self.work = np.empty((3, B, H), dtype=dtype)       # scratch of lstm_backward
        else:                                                  # scratch of the NumPy passes
            self.ds = np.empty((B, G), dtype=dtype)            # local derivatives of the gates
            self.tmp = np.empty((B, H), dtype=dtype)
            self.di = np.empty((B, H), dtype=dtype)

    consumes_cache = True     # the saved gates become their gradients: one backward per forward

    def run(self, dY, mask, padded) -> None:
        """The loop the path names: packed (rows or units split), one compiled loop (NumPy's
        BLAS, or below its batch its own matmul), or steps from Python."""
        T, B, _ = dY.shape
        loop = self.path.backward
        if loop not in ("packed", "blas", "own"):
            return super().run(dY, mask, padded)
        held = held_steps(mask, T)
        dY = np.ascontiguousarray(dY, dtype=self.act.dtype)
        tc, c, w = (np.ascontiguousarray(a) for a in (self.tc, self.c, self.w))
        if loop == "packed":
            wp = _packed.packed_rows(w)                        # W_hh (4H, H) in 16-col panels
            threads = _packed.threads()
            args = (self.act, tc, c, wp, dY, self.d[0], self.d[1], held, threads)
            if self.path.split == "units":
                _packed.lstm_backward_cols(*args, _packed.meets(threads))
            else:
                _packed.lstm_backward(*args)
        else:
            gemm = _blas.gemm(self.act.dtype) if loop == "blas" else None
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
