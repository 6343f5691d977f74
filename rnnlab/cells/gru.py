"""GRU cell (Cho et al. 2014) in both forms; gate order r, z, n as `torch.nn.GRU` (G = 3).

    r = s(x W_ir^T + b_ir + h W_hr^T + b_hr)
    z = s(x W_iz^T + b_iz + h W_hz^T + b_hz)
    reset after  (PyTorch/cuDNN, ONNX linear_before_reset=1): n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    reset before (Cho et al. 2014, ONNX linear_before_reset=0): n = tanh(x W_in^T + b_in + (r * h) W_hn^T + b_hn)
    h' = (1 - z) * n + z * h
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import CellParams
from ._math import sigmoid
from .base import Cache, Carry, HiddenStateOnly, flat, gate_param_shapes


@dataclass(frozen=True)
class GRUCellConfig(HiddenStateOnly):
    hidden_size: int
    reset_after: bool = True

    gates = 3

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        return gate_param_shapes(3, self.hidden_size, input_size, self.hidden_size)

    def input_bias(self, p: CellParams) -> np.ndarray | None:
        if p.b_hh is None:
            return None
        if not self.reset_after:
            return p.b_hh                              # every b_h* adds outside the reset
        H = self.hidden_size
        folded = p.b_hh.copy()
        folded[2 * H:] = 0                             # b_hn sits inside r * (...): kept per step
        return folded

    # recurrent dropout (Gal & Ghahramani 2016) masks h where the matmuls read it, not on z * h
    masks_recurrent_reads = True

    def step_forward(self, p: CellParams, xp: np.ndarray, carry: Carry,
                     h_mask: np.ndarray | None = None) -> tuple[Carry, Cache]:
        (h,) = carry                                   # (B, H)
        H = self.hidden_size
        hr = h if h_mask is None else h * h_mask       # what the matmuls read
        if self.reset_after:
            hp = hr @ p.w_hh.T                         # (B, 3H) recurrent part of all gates
            rz = sigmoid(xp[:, :2 * H] + hp[:, :2 * H])  # (B, 2H)
            hn = hp[:, 2 * H:].copy()                  # (B, H) h W_hn^T (+ b_hn), own memory
            if p.b_hh is not None:
                hn += p.b_hh[2 * H:]
            r, z = rz[:, :H], rz[:, H:]
            n = np.tanh(xp[:, 2 * H:] + r * hn)
            rec = hn                                   # saved: dr = dn_pre * hn
        else:
            rz = sigmoid(xp[:, :2 * H] + hr @ p.w_hh[:2 * H].T)
            r, z = rz[:, :H], rz[:, H:]
            rh = r * hr                                # (B, H) reset applied before the matmul
            n = np.tanh(xp[:, 2 * H:] + rh @ p.w_hh[2 * H:].T)
            rec = rh                                   # saved: the operand of W_hn
        h_new = n + z * (h - n)                        # (1 - z) n + z h
        cache = (h, rz, n, rec)
        return (h_new,), cache if h_mask is None else cache + (h_mask,)

    def step_backward(self, p: CellParams, dcarry: Carry, cache: Cache):
        (dh,) = dcarry                                 # (B, H)
        h, rz, n, rec = cache[:4]
        m = cache[4] if len(cache) == 5 else None      # the recurrent dropout mask, if any
        hr = h if m is None else h * m
        H = self.hidden_size
        r, z = rz[:, :H], rz[:, H:]
        da = np.empty((h.shape[0], 3 * H), dtype=h.dtype)  # input-side pre-activation grads
        dan = dh * (1 - z) * (1 - n * n)               # through (1-z) n and tanh
        da[:, 2 * H:] = dan
        da[:, H:2 * H] = dh * (h - n) * z * (1 - z)    # h' = n + z (h - n)
        if self.reset_after:
            da[:, :H] = dan * rec * r * (1 - r)        # n_pre = xn + r * hn
            dn = dan * r                               # (B, H) d(hn): what W_hn's output gets
            dhr = da[:, :2 * H] @ p.w_hh[:2 * H] + dn @ p.w_hh[2 * H:]   # (B, H)
        else:
            dn = dan                                   # (B, H) what W_hn's output gets
            drh = dan @ p.w_hh[2 * H:]                 # (B, H) back through W_hn
            da[:, :H] = drh * hr * r * (1 - r)         # rh = r * hr
            dhr = drh * r + da[:, :2 * H] @ p.w_hh[:2 * H]  # r, z read hr directly
        if m is not None:
            dhr *= m                                   # the matmuls read the dropped h
        dh_prev = dh * z + dhr                         # and the direct path z * h
        return da, (dh_prev,), (da[:, :2 * H], dn)     # recurrent side: W_hr, W_hz; W_hn

    sigmoid_gates = ("reset", "update")

    def activations(self, caches: Cache) -> dict[str, np.ndarray]:
        """Named activations from stacked caches, each (T, B, H)."""
        h, rz, n = caches[:3]
        H = self.hidden_size
        z = rz[..., H:]
        return {"reset": rz[..., :H], "update": z, "candidate": n, "hidden": n + z * (h - n)}

    def recurrent_grads(self, p, caches, drecs, grads: CellParams) -> None:
        h, rec = caches[0], caches[3]                  # each (T, B, .)
        if len(caches) == 5:
            h = h * caches[4]                          # the matmuls read the dropped h
        drz, dn = drecs                                # (T, B, 2H), (T, B, H)
        H = self.hidden_size
        gw = np.empty_like(p.w_hh)                     # (3H, H): GEMMs over all steps
        np.matmul(flat(drz).T, flat(h), out=gw[:2 * H])
        np.matmul(flat(dn).T, flat(h if self.reset_after else rec), out=gw[2 * H:])  # before: W_hn reads r h
        grads.w_hh = gw
        if p.b_hh is not None:
            grads.b_hh = np.concatenate([flat(drz).sum(0), flat(dn).sum(0)])
