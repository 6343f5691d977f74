"""Fused Elman RNN (tanh or ReLU): 1 GEMM + 1 compiled pass (3 NumPy ones) a step forward,
1 GEMM + 1 pass (3) backward; the backward adds its input and weight gradients chunk by chunk
(see Backward). Over a whole sequence at B >= 2 both loops run on rnnlab's own packed GEMM
(where backends.choose takes them)."""

from __future__ import annotations

import numpy as np

from ..cells.base import flat
from ..params import CellParams
from . import _jit, _packed
from ._buffers import (BackwardSteps, ForwardSteps, carry_buffer, held_steps, hold_rows, masked,
    step_weights)


def input_scale(cell, dtype) -> np.ndarray:
    return np.ones(cell.hidden_size, dtype=dtype)             # no sigmoid gates


def laid_out(caches) -> bool:
    """Whether a forward's cache suits the packed backward loop (its outputs C-contiguous)."""
    return caches[1].flags.c_contiguous


class Forward(ForwardSteps):
    def __init__(self, cell, p, XP, carry, keep_cache: bool, bias, steps: float, path,
                 hs=None) -> None:
        T, B, _ = XP.shape
        self.XP, self.bias, self.relu = XP, bias, cell.nonlinearity == "relu"   # bias (H,)
        self.HS = carry_buffer(T, carry[0], hs)                    # (T+1, B, H)
        self.carries = (self.HS,)
        self.jit = path.gate_math == "compiled"
        self.packed = path.forward == "packed"
        if self.packed:                                        # W_hh^T in 16-column panels
            self.threads = _packed.threads()
            self.wp = _packed.packed(p.w_hh)
        else:
            self.w = step_weights(p.w_hh, B, steps)            # (H, H) W_hh^T

    def run(self, mask, padded) -> None:
        """The loop the path names: packed (rows split), or steps from Python."""
        if not self.packed:
            return super().run(mask, padded)
        T = self.XP.shape[0]
        held = held_steps(mask, T)
        _packed.rnn_forward(self.XP, self.wp, self.bias, self.HS, held, self.relu, self.threads)

    def step(self, t: int, hold) -> None:
        h, h_new = self.HS[t], self.HS[t + 1]
        np.matmul(h, self.w, out=h_new)
        if self.jit:                                           # act(h W^T + xp + b), one pass
            act = _jit.rnn_relu_forward if self.relu else _jit.rnn_tanh_forward
            act(h_new, self.XP[t], self.bias)
        else:
            h_new += self.XP[t]
            h_new += self.bias
            if self.relu:
                np.maximum(h_new, 0, out=h_new)
            else:
                np.tanh(h_new, out=h_new)
        hold_rows(hold, (h_new,), (h,))

    def caches(self):
        return (self.HS[:-1], self.HS[1:])                     # reference layout


class Backward(BackwardSteps):
    """The pre-activation gradients of a chunk of steps live in one (K, B, H) buffer, and each
    chunk's share of the input and weight gradients is added as soon as it is done (GEMMs of
    K B rows), so training holds no (T, B, H) gradient buffer next to the saved outputs."""

    CHUNK_ROWS = 2048           # K B rows a chunk: large enough for GEMM speed, small in memory

    def __init__(self, cell, p, caches, dcarry, x, path) -> None:
        self.h_prev, self.h_new = caches
        self.path = path                       # (T, B, H) each
        T, B, H = self.h_new.shape
        dt = self.h_new.dtype
        self.relu, self.p, self.x = cell.nonlinearity == "relu", p, x   # x (T, B, D)
        chunks = -(-T * B // self.CHUNK_ROWS)                   # ceil: near-equal chunks
        self.K = -(-T // chunks)                               # steps a chunk
        self.DA = np.empty((self.K, B, H), dtype=dt)           # one chunk's dL/d(pre-activation)
        self.lo = self.hi = T                                  # the chunk being run: [lo, hi)
        self.dx = np.empty(x.shape, dtype=dt)                  # (T, B, D)
        self.grads = None                                      # set by the first chunk
        self.d = (np.array(dcarry[0], dtype=dt),)
        self.nxt = (np.empty_like(self.d[0]),)
        self.jit = path.gate_math == "compiled"
        self.pos = np.empty((B, H), dtype=bool) if self.relu and not self.jit else None

    def run(self, dY, mask, padded) -> None:
        """Each chunk of steps as one packed loop where the path says so, else step by step;
        each chunk's input and weight gradients after it."""
        T, B, H = dY.shape
        y = self.h_new
        if self.path.backward != "packed":
            return super().run(dY, mask, padded)
        held = held_steps(mask, T)
        dY = np.ascontiguousarray(dY, dtype=y.dtype)
        wp = _packed.packed_rows(self.p.w_hh)                  # W_hh (H, H) in 16-col panels
        threads = _packed.threads()
        for hi in range(T, 0, -self.K):                        # chunks hi-1 .. lo, last first
            self.lo, self.hi = max(0, hi - self.K), hi
            _packed.rnn_backward(y[self.lo:hi], wp, dY[self.lo:hi], self.d[0],
                                 self.DA[:hi - self.lo], held[self.lo:hi], self.relu, threads)
            self._chunk_done()

    def step(self, t: int, dy, hold) -> None:
        if t < self.lo:                                        # a new chunk: steps hi-1 .. lo
            self.lo, self.hi = max(0, t + 1 - self.K), t + 1
        np.add(self.d[0], dy, out=self.d[0])                    # dL/dh_t: output + recurrence
        (dh,) = masked(hold, self.d)
        y, da = self.h_new[t], self.DA[t - self.lo]
        if self.jit:                                           # dh act'(y), one pass
            (_jit.rnn_relu_backward if self.relu else _jit.rnn_tanh_backward)(y, dh, da)
        elif self.relu:
            np.multiply(dh, np.greater(y, 0, out=self.pos), out=da)   # relu' from the output
        else:
            np.multiply(y, y, out=da)                          # tanh' = 1 - y^2
            np.subtract(1, da, out=da)
            da *= dh
        np.matmul(da, self.p.w_hh, out=self.nxt[0])            # back through W_hh
        self.finish_step(hold)
        if t == self.lo:
            self._chunk_done()

    def _chunk_done(self) -> None:
        """Add steps lo..hi-1's share: dW = da^T [x | h_prev], db = sum da, dx = da W_ih."""
        lo, hi, p = self.lo, self.hi, self.p
        da = flat(self.DA[:hi - lo])                           # (K B, H)
        db = da.sum(0)                                         # (H,) for b_ih and b_hh alike
        share = CellParams(w_ih=da.T @ flat(self.x[lo:hi]),    # (H, D)
                           w_hh=da.T @ flat(self.h_prev[lo:hi]),   # (H, H)
                           b_ih=None if p.b_ih is None else db,
                           b_hh=None if p.b_hh is None else db.copy())
        if self.grads is None:
            self.grads = share
        else:
            for (_, g), (_, s) in zip(self.grads.items(), share.items()):
                g += s
        np.matmul(da, p.w_ih, out=flat(self.dx[lo:hi]))        # (K B, D)

    def gathered(self):
        return self.dx, self.grads
