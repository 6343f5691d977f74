"""Fused Elman RNN (tanh or ReLU): 1 GEMM + 2 passes a step forward, 1 GEMM + 3 backward."""

from __future__ import annotations

import numpy as np

from . import _jit
from ._buffers import BackwardSteps, ForwardSteps, carry_buffer, hold_rows, masked


def input_scale(cell, dtype) -> np.ndarray:
    return np.ones(cell.hidden_size, dtype=dtype)             # no sigmoid gates


class Forward(ForwardSteps):
    def __init__(self, cell, p, XP, carry, keep_cache: bool, scaled: bool = False) -> None:
        T = XP.shape[0]
        self.XP, self.relu = XP, cell.nonlinearity == "relu"
        self.w = p.w_hh.T                                      # (H, H) view: BLAS reads it in place
        self.HS = carry_buffer(T, carry[0])                    # (T+1, B, H)
        self.carries = (self.HS,)
        self.jit = _jit.ENABLED and not self.relu

    def step(self, t: int, hold) -> None:
        h, h_new = self.HS[t], self.HS[t + 1]
        np.matmul(h, self.w, out=h_new)
        if self.jit:
            _jit.rnn_tanh_forward(h_new, self.XP[t])           # tanh(h W^T + xp), one pass
        else:
            h_new += self.XP[t]
            if self.relu:
                np.maximum(h_new, 0, out=h_new)
            else:
                np.tanh(h_new, out=h_new)
        hold_rows(hold, (h_new,), (h,))

    def caches(self):
        return (self.HS[:-1], self.HS[1:])                     # reference layout


class Backward(BackwardSteps):
    def __init__(self, cell, p, caches, dcarry) -> None:
        self.h_new = caches[1]
        T, B, H = self.h_new.shape
        dt = self.h_new.dtype
        self.relu, self.w = cell.nonlinearity == "relu", p.w_hh
        self.DA = np.empty((T, B, H), dtype=dt)
        self.d = (np.array(dcarry[0], dtype=dt),)
        self.nxt = (np.empty_like(self.d[0]),)
        self.pos = np.empty((B, H), dtype=bool) if self.relu else None   # relu' mask
        self.jit = _jit.ENABLED and not self.relu

    def step(self, t: int, dy, hold) -> None:
        np.add(self.d[0], dy, out=self.d[0])                    # dL/dh_t: output + recurrence
        (dh,) = masked(hold, self.d)
        y, da = self.h_new[t], self.DA[t]
        if self.jit:
            _jit.rnn_tanh_backward(y, dh, da)                  # dh (1 - y^2), one pass
        elif self.relu:
            np.multiply(dh, np.greater(y, 0, out=self.pos), out=da)   # relu' from the output
        else:
            np.multiply(y, y, out=da)                          # tanh' = 1 - y^2
            np.subtract(1, da, out=da)
            da *= dh
        np.matmul(da, self.w, out=self.nxt[0])                 # back through W_hh
        self.finish_step(hold)
