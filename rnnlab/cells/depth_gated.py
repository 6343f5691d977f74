"""Depth-Gated LSTM (Yao et al. 2015, arXiv 1508.03790): a stack of L LSTM layers of equal width
whose memory cells are linked across depth at the same time step.

Layer 1 is a plain LSTM (gates i, f, g, o) on the input x. Layer l > 1 reads x^l = h_t^{l-1} and
has a depth gate d (the paper's eq. for d_t^{L+1}, with diagonal w_cd and w_ld):
    d_t^l = s(W_xd x_t^l + b_d + w_cd * c_{t-1}^l + w_ld * c_t^{l-1})
    c_t^l = d_t^l * c_t^{l-1} + f_t^l * c_{t-1}^l + i_t^l * g_t^l
    h_t^l = o_t^l * tanh(c_t^l)
(i, f, g, o of layer l as an LSTM's, from W^l x_t^l + b^l + W_hh^l h_{t-1}^l + b_hh^l.)

Because c_t^{l-1} is needed at the same t, the cell runs the whole stack in one step: its carry
is every layer's h and c side by side, (B, L*H) each, and only layer 1's input projection is
computed for all steps before the loop. Parameters (G = 4 gates, order i, f, g, o[, d]):
    w_ih (4H, D), b_ih (4H,)           layer 1's input projection (the loop's GEMM)
    w_hh (L, 4H, H), b_hh (L, 4H)      every layer's recurrent weights
    w_up (L-1, 5H, H), b_up (L-1, 5H)  layers 2..L: input weights, depth gate as the 5th block
    w_depth (L-1, 2H)                  (w_cd, w_ld) of layers 2..L
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..params import CellParams
from ._math import sigmoid
from .base import Cache, Carry, flat


def _lstm_gates(a: np.ndarray, H: int) -> None:
    """Activate pre-activations (B, 4H or 5H) in place: sigmoid on i, f, o (and d), tanh on g."""
    sigmoid(a[:, :2 * H], out=a[:, :2 * H])
    np.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])
    sigmoid(a[:, 3 * H:], out=a[:, 3 * H:])


@dataclass(frozen=True)
class DepthGatedLSTMCellConfig:
    hidden_size: int
    num_layers: int = 2

    gates = 4                                          # layer 1's input projection

    def __post_init__(self) -> None:
        if self.num_layers < 2:
            raise ConfigError(f"num_layers: a depth-gated stack needs at least 2 layers, got {self.num_layers}")

    @property
    def output_size(self) -> int:
        return self.num_layers * self.hidden_size      # every layer's h; the network shows the top

    def carry_sizes(self) -> tuple[int, ...]:
        return (self.num_layers * self.hidden_size,) * 2

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        H, L = self.hidden_size, self.num_layers
        return {"w_ih": (4 * H, input_size), "w_hh": (L, 4 * H, H), "b_ih": (4 * H,), "b_hh": (L, 4 * H),
                "w_up": (L - 1, 5 * H, H), "b_up": (L - 1, 5 * H), "w_depth": (L - 1, 2 * H)}

    def input_bias(self, p: CellParams) -> np.ndarray | None:
        return None if p.b_hh is None else p.b_hh[0]   # layer 1's recurrent bias folds into XP

    def step_forward(self, p: CellParams, xp: np.ndarray, carry: Carry) -> tuple[Carry, Cache]:
        h_all, c_all = carry                           # (B, L*H) each
        H, L = self.hidden_size, self.num_layers
        B = xp.shape[0]
        acts = np.empty((L, B, 5 * H), dtype=xp.dtype)  # activated gates per layer (d unused in layer 1)
        h_new, c_new = np.empty_like(h_all), np.empty_like(c_all)
        tcs = np.empty((L, B, H), dtype=xp.dtype)
        for k in range(L):
            sl = slice(k * H, (k + 1) * H)
            h, c = h_all[:, sl], c_all[:, sl]          # (B, H) this layer's previous state
            a = acts[k]
            rec = h @ p.w_hh[k].T                      # (B, 4H)
            if k == 0:
                a[:, :4 * H] = xp + rec
                a[:, 4 * H:] = 0
            else:
                a[:] = h_new[:, sl.start - H:sl.start] @ p.w_up[k - 1].T   # x^l = h_t^{l-1}
                if p.b_up is not None:
                    a += p.b_up[k - 1]
                a[:, :4 * H] += rec
                if p.b_hh is not None:
                    a[:, :4 * H] += p.b_hh[k]
                c_low = c_new[:, sl.start - H:sl.start]
                a[:, 4 * H:] += p.w_depth[k - 1, :H] * c + p.w_depth[k - 1, H:] * c_low
            _lstm_gates(a, H)
            i, f, g, o, d = (a[:, k * H:(k + 1) * H] for k in range(5))
            c_new[:, sl] = f * c + i * g
            if k > 0:
                c_new[:, sl] += d * c_new[:, sl.start - H:sl.start]         # the depth link
            np.tanh(c_new[:, sl], out=tcs[k])
            np.multiply(o, tcs[k], out=h_new[:, sl])
        return (h_new, c_new), (h_all, c_all, acts, h_new, c_new, tcs)

    def step_backward(self, p: CellParams, dcarry: Carry, cache: Cache):
        dh_all, dc_all = dcarry                        # gradients of this step's new carry
        h_all, c_all, acts, h_new, c_new, tcs = cache
        H, L = self.hidden_size, self.num_layers
        dh_new, dc_new = dh_all.copy(), dc_all.copy()  # grow as upper layers send theirs down
        dh_prev, dc_prev = np.empty_like(dh_all), np.empty_like(dc_all)
        das = np.zeros_like(acts)                      # (L, B, 5H) pre-activation grads
        dxp = None
        for k in range(L - 1, -1, -1):
            sl = slice(k * H, (k + 1) * H)
            a, tc, da = acts[k], tcs[k], das[k]
            i, f, g, o, d = (a[:, k * H:(k + 1) * H] for k in range(5))
            dh, c = dh_new[:, sl], c_all[:, sl]
            dc = dc_new[:, sl] + dh * o * (1 - tc * tc)               # h = o tanh(c)
            da[:, 3 * H:4 * H] = dh * tc * o * (1 - o)
            da[:, :H] = dc * g * i * (1 - i)
            da[:, H:2 * H] = dc * c * f * (1 - f)
            da[:, 2 * H:3 * H] = dc * i * (1 - g * g)
            dc_prev[:, sl] = dc * f
            if k > 0:
                low = slice(sl.start - H, sl.start)
                dd = dc * c_new[:, low] * d * (1 - d)                  # depth gate pre-activation
                da[:, 4 * H:] = dd
                dc_prev[:, sl] += dd * p.w_depth[k - 1, :H]            # d read c_{t-1}^l
                dc_new[:, low] += dc * d + dd * p.w_depth[k - 1, H:]   # c^l read c_t^{l-1} twice
                dh_new[:, low] += da @ p.w_up[k - 1]                   # x^l = h_t^{l-1}
            else:
                dxp = da[:, :4 * H].copy()                             # layer 1's projected input
            dh_prev[:, sl] = da[:, :4 * H] @ p.w_hh[k]
        return dxp, (dh_prev, dc_prev), (das,)

    sigmoid_gates = ("input", "forget", "output")

    def activations(self, caches: Cache) -> dict[str, np.ndarray]:
        acts, c_new, tcs = caches[2], caches[4], caches[5]   # (T, L, B, 5H), (T, B, L*H), (T, L, B, H)
        H, L = self.hidden_size, self.num_layers
        top = acts[:, L - 1]
        return {"input": top[..., :H], "forget": top[..., H:2 * H], "candidate": top[..., 2 * H:3 * H],
                "output": top[..., 3 * H:4 * H], "depth": top[..., 4 * H:], "cell": c_new[..., (L - 1) * H:],
                "hidden": top[..., 3 * H:4 * H] * tcs[:, L - 1]}

    def recurrent_grads(self, p, caches, drecs, grads: CellParams) -> None:
        h_all, c_all, acts, h_new, c_new, tcs = caches  # each with a leading T
        (das,) = drecs                                   # (T, L, B, 5H)
        H, L = self.hidden_size, self.num_layers
        gw_hh = np.empty_like(p.w_hh)
        gw_up = np.empty_like(p.w_up)
        gw_depth = np.empty_like(p.w_depth)
        for k in range(L):
            sl = slice(k * H, (k + 1) * H)
            da = flat(das[:, k])                         # (T*B, 5H)
            gw_hh[k] = da[:, :4 * H].T @ flat(h_all[..., sl])
            if k > 0:
                low = slice(sl.start - H, sl.start)
                gw_up[k - 1] = da.T @ flat(h_new[..., low])
                dd = da[:, 4 * H:]
                gw_depth[k - 1, :H] = (dd * flat(c_all[..., sl])).sum(0)
                gw_depth[k - 1, H:] = (dd * flat(c_new[..., low])).sum(0)
        grads.w_hh, grads.w_up, grads.w_depth = gw_hh, gw_up, gw_depth
        if p.b_hh is not None:
            grads.b_hh = np.stack([flat(das[:, k, :, :4 * H]).sum(0) for k in range(L)])
            grads.b_up = np.stack([flat(das[:, k]).sum(0) for k in range(1, L)])
