"""Layer-normalised LSTM and GRU (Ba et al. 2016), in the form haste's LayerNormLSTM/GRU use.

Layer norm over the K features of each row, with gain gamma (and bias beta where shown):
    LN(u) = gamma * (u - mean(u)) / sqrt(var(u) + eps) + beta,      eps = 1e-5 (torch's)

LSTM (gate order i, f, g, o as torch.nn.LSTM; G = 4):
    a  = LN(x W_ih^T; g_x) + LN(h W_hh^T; g_h) + b           each LN over all 4H columns
    i, f, o = s(a_i), s(a_f), s(a_o)    g = tanh(a_g)
    c' = f * c + i * g                                        the carried cell state is not normalised
    h' = o * tanh(LN(c'; g_c, b_c))
GRU (reset after the matmul, gate order r, z, n as torch.nn.GRU; G = 3):
    v_x = LN(x W_ih^T; g_x) + b_x      v_h = LN(h W_hh^T; g_h) + b_h     each over 3H columns
    r, z = s(v_x + v_h)[r, z]    n = tanh(v_x,n + r * v_h,n)    h' = (1 - z) * n + z * h

Parameters beside w_ih and w_hh (no b_ih/b_hh: every bias sits after a normalisation):
    ln_weight: LSTM (g_x, g_h, g_c) (9H,), GRU (g_x, g_h) (6H,), initialised to 1
    ln_bias:   LSTM (b, b_c) (5H,),        GRU (b_x, b_h) (6H,), initialised to 0
The loop's input GEMM gives xp = x W_ih^T (the cells add no input bias), and its dW_ih = dxp^T x
is right because dxp here is the gradient with respect to x W_ih^T, before the normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import CellParams
from ._math import sigmoid
from .base import Cache, Carry, HiddenStateOnly, flat

EPS = 1e-5


def ln_forward(u: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None = None):
    """LN over the last axis; returns (y, xhat, 1/sigma) with xhat (B, K), 1/sigma (B, 1)."""
    mu = u.mean(-1, keepdims=True)
    d = u - mu
    inv = 1.0 / np.sqrt((d * d).mean(-1, keepdims=True) + EPS)
    xhat = d * inv
    y = xhat * gamma
    if beta is not None:
        y += beta
    return y, xhat, inv


def ln_backward(dy: np.ndarray, xhat: np.ndarray, inv: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """du from dy: (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sigma."""
    dxh = dy * gamma
    return inv * (dxh - dxh.mean(-1, keepdims=True) - xhat * (dxh * xhat).mean(-1, keepdims=True))


def _ln_param_grads(dys, xhats) -> tuple[np.ndarray, np.ndarray]:
    """Gains: sum of dy * xhat over all steps and rows; biases: sum of dy."""
    dg = np.concatenate([(flat(dy) * flat(xh)).sum(0) for dy, xh in zip(dys, xhats)])
    db = np.concatenate([flat(dy).sum(0) for dy in dys])
    return dg, db


@dataclass(frozen=True)
class LayerNormLSTMCellConfig:
    hidden_size: int

    gates = 4

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def carry_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size, self.hidden_size)

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        H = self.hidden_size
        return {"w_ih": (4 * H, input_size), "w_hh": (4 * H, H), "ln_weight": (9 * H,), "ln_bias": (5 * H,)}

    def input_bias(self, p: CellParams) -> np.ndarray | None:
        return None                                    # biases come after the normalisation

    def step_forward(self, p: CellParams, xp: np.ndarray, carry: Carry) -> tuple[Carry, Cache]:
        h, c = carry                                   # (B, H), (B, H)
        H = self.hidden_size
        gx, gh, gc = p.ln_weight[:4 * H], p.ln_weight[4 * H:8 * H], p.ln_weight[8 * H:]
        nx, xhx, ivx = ln_forward(xp, gx)              # (B, 4H) normalised input part
        nh, xhh, ivh = ln_forward(h @ p.w_hh.T, gh)    # (B, 4H) normalised recurrent part
        a = nx + nh + p.ln_bias[:4 * H]                # (B, 4H) pre-activations
        sigmoid(a[:, :2 * H], out=a[:, :2 * H])        # i, f
        np.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])  # g
        sigmoid(a[:, 3 * H:], out=a[:, 3 * H:])        # o
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c_new = f * c + i * g                          # (B, H)
        nc, xhc, ivc = ln_forward(c_new, gc, p.ln_bias[4 * H:])
        tc = np.tanh(nc)
        h_new = o * tc
        return (h_new, c_new), (h, c, a, c_new, tc, xhx, ivx, xhh, ivh, xhc, ivc)

    def step_backward(self, p: CellParams, dcarry: Carry, cache: Cache):
        dh, dc = dcarry
        h, c, act, c_new, tc, xhx, ivx, xhh, ivh, xhc, ivc = cache
        H = self.hidden_size
        gx, gh, gc = p.ln_weight[:4 * H], p.ln_weight[4 * H:8 * H], p.ln_weight[8 * H:]
        i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
        dnc = dh * o * (1 - tc * tc)                   # through o * tanh(LN(c'))
        dc_new = dc + ln_backward(dnc, xhc, ivc, gc)   # back through LN(c')
        da = np.empty_like(act)                        # (B, 4H)
        da[:, :H] = dc_new * g * i * (1 - i)           # c' = f c + i g, s' = s (1 - s)
        da[:, H:2 * H] = dc_new * c * f * (1 - f)
        da[:, 2 * H:3 * H] = dc_new * i * (1 - g * g)  # tanh' = 1 - g^2
        da[:, 3 * H:] = dh * tc * o * (1 - o)
        dxp = ln_backward(da, xhx, ivx, gx)            # back through LN(x W_ih^T)
        dhr = ln_backward(da, xhh, ivh, gh)            # back through LN(h W_hh^T)
        dh_prev = dhr @ p.w_hh                         # (B, H)
        return dxp, (dh_prev, dc_new * f), (da, dhr, dnc)

    sigmoid_gates = ("input", "forget", "output")

    def activations(self, caches: Cache) -> dict[str, np.ndarray]:
        act, c_new, tc = caches[2], caches[3], caches[4]
        H = self.hidden_size
        o = act[..., 3 * H:]
        return {"input": act[..., :H], "forget": act[..., H:2 * H], "candidate": act[..., 2 * H:3 * H],
                "output": o, "cell": c_new, "hidden": o * tc}

    def recurrent_grads(self, p, caches, drecs, grads: CellParams) -> None:
        h, xhx, xhh, xhc = caches[0], caches[5], caches[7], caches[9]   # each (T, B, .)
        da, dhr, dnc = drecs
        grads.w_hh = flat(dhr).T @ flat(h)             # (4H, H): one GEMM over all steps
        dg, db = _ln_param_grads((da, da, dnc), (xhx, xhh, xhc))
        grads.ln_weight = dg                           # (g_x, g_h, g_c)
        grads.ln_bias = np.concatenate([db[:4 * self.hidden_size], db[8 * self.hidden_size:]])  # (b, b_c)


@dataclass(frozen=True)
class LayerNormGRUCellConfig(HiddenStateOnly):
    hidden_size: int

    gates = 3

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        H = self.hidden_size
        return {"w_ih": (3 * H, input_size), "w_hh": (3 * H, H), "ln_weight": (6 * H,), "ln_bias": (6 * H,)}

    def input_bias(self, p: CellParams) -> np.ndarray | None:
        return None

    masks_recurrent_reads = True                       # recurrent dropout: only the matmul reads h * m

    def step_forward(self, p: CellParams, xp: np.ndarray, carry: Carry,
                     h_mask: np.ndarray | None = None) -> tuple[Carry, Cache]:
        (h,) = carry                                   # (B, H)
        H = self.hidden_size
        hr = h if h_mask is None else h * h_mask
        vx, xhx, ivx = ln_forward(xp, p.ln_weight[:3 * H], p.ln_bias[:3 * H])          # (B, 3H)
        vh, xhh, ivh = ln_forward(hr @ p.w_hh.T, p.ln_weight[3 * H:], p.ln_bias[3 * H:])  # (B, 3H)
        rz = sigmoid(vx[:, :2 * H] + vh[:, :2 * H])    # (B, 2H)
        r, z = rz[:, :H], rz[:, H:]
        hn = vh[:, 2 * H:]                             # saved: dr = dn_pre * hn
        n = np.tanh(vx[:, 2 * H:] + r * hn)
        h_new = n + z * (h - n)                        # (1 - z) n + z h
        cache = (h, rz, n, hn, xhx, ivx, xhh, ivh)
        return (h_new,), cache if h_mask is None else cache + (h_mask,)

    def step_backward(self, p: CellParams, dcarry: Carry, cache: Cache):
        (dh,) = dcarry
        h, rz, n, hn, xhx, ivx, xhh, ivh = cache[:8]
        m = cache[8] if len(cache) == 9 else None
        H = self.hidden_size
        r, z = rz[:, :H], rz[:, H:]
        dvx = np.empty((h.shape[0], 3 * H), dtype=h.dtype)   # grads of v_x and v_h
        dvh = np.empty_like(dvx)
        dn = dh * (1 - z) * (1 - n * n)                # through (1 - z) n and tanh
        dvx[:, 2 * H:] = dn
        dvx[:, :H] = dn * hn * r * (1 - r)             # n_pre = v_x,n + r * v_h,n
        dvx[:, H:2 * H] = dh * (h - n) * z * (1 - z)   # h' = n + z (h - n)
        dvh[:, :2 * H] = dvx[:, :2 * H]
        dvh[:, 2 * H:] = dn * r
        dxp = ln_backward(dvx, xhx, ivx, p.ln_weight[:3 * H])
        dhr = ln_backward(dvh, xhh, ivh, p.ln_weight[3 * H:])
        dread = dhr @ p.w_hh                           # (B, H) back through the recurrence
        if m is not None:
            dread *= m                                 # which read the dropped h
        dh_prev = dh * z + dread                       # and the direct path z h
        return dxp, (dh_prev,), (dvx, dvh, dhr)

    sigmoid_gates = ("reset", "update")

    def activations(self, caches: Cache) -> dict[str, np.ndarray]:
        h, rz, n = caches[0], caches[1], caches[2]
        H = self.hidden_size
        z = rz[..., H:]
        return {"reset": rz[..., :H], "update": z, "candidate": n, "hidden": n + z * (h - n)}

    def recurrent_grads(self, p, caches, drecs, grads: CellParams) -> None:
        h, xhx, xhh = caches[0], caches[4], caches[6]
        if len(caches) == 9:
            h = h * caches[8]                          # the matmul read the dropped h
        dvx, dvh, dhr = drecs
        grads.w_hh = flat(dhr).T @ flat(h)             # (3H, H)
        grads.ln_weight, grads.ln_bias = _ln_param_grads((dvx, dvh), (xhx, xhh))
