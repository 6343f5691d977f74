"""LSTM cell with forget gate (Hochreiter & Schmidhuber 1997; Gers et al. 2000) and variants.

Gate order as `torch.nn.LSTM`: i, f, g, o (G = 4); with `cifg` the forget gate is coupled to
the input gate, f = 1 - i (Greff et al. 2017; onnxruntime's `input_forget`), and has no weights
of its own: G = 3, order i, g, o.

    a = x W_ih^T + b_ih + h W_hh^T + b_hh              pre-activations, (B, G*H)
    i = s(a_i + p_i * c)    f = s(a_f + p_f * c)  (or 1 - i)    g = tanh(a_g)
    c' = f * c + i * g
    o = s(a_o + p_o * c')                              peepholes p_* as ONNX: i, f read c_{t-1},
    h' = o * tanh(c')  [@ W_hr^T with proj_size]        o reads c_t
Peephole weights `w_peephole` (rnnlab's name `weight_peephole_l{k}`) are diagonal, stacked
(i, f, o), shape (3H,); with `cifg`, (i, o), shape (2H,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import CellParams
from ._math import sigmoid
from .base import Cache, Carry, flat, gate_param_shapes


@dataclass(frozen=True)
class LSTMCellConfig:
    hidden_size: int
    proj_size: int = 0
    peephole: bool = False
    cifg: bool = False

    @property
    def gates(self) -> int:
        return 3 if self.cifg else 4

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def carry_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        G, H, R = self.gates, self.hidden_size, self.output_size
        shapes = gate_param_shapes(G, H, input_size, R)
        if self.proj_size:
            shapes["w_hr"] = (self.proj_size, H)
        if self.peephole:
            shapes["w_peephole"] = ((G - 1) * H,)
        return shapes

    def gate_slices(self) -> dict[str, slice]:
        """Where each gate's block sits in the G*H pre-activation columns."""
        H = self.hidden_size
        names = "igo" if self.cifg else "ifgo"
        return {n: slice(k * H, (k + 1) * H) for k, n in enumerate(names)}

    def peephole_slices(self) -> dict[str, slice]:
        H = self.hidden_size
        names = "io" if self.cifg else "ifo"
        return {n: slice(k * H, (k + 1) * H) for k, n in enumerate(names)}

    def input_bias(self, p: CellParams) -> np.ndarray | None:
        return p.b_hh  # both biases add straight to the pre-activations: fold b_hh into XP

    def step_forward(self, p: CellParams, xp: np.ndarray, carry: Carry) -> tuple[Carry, Cache]:
        h, c = carry                                   # (B, R), (B, H)
        s, ps = self.gate_slices(), self.peephole_slices()
        a = xp + h @ p.w_hh.T                          # (B, G*H) pre-activations
        if self.peephole:
            a[:, s["i"]] += p.w_peephole[ps["i"]] * c  # input gate peeks at c_{t-1}
            if not self.cifg:
                a[:, s["f"]] += p.w_peephole[ps["f"]] * c
        gi, gg, go = a[:, s["i"]], a[:, s["g"]], a[:, s["o"]]
        sigmoid(gi, out=gi)
        np.tanh(gg, out=gg)
        if self.cifg:
            c_new = c - gi * c + gi * gg               # f = 1 - i: c' = (1-i) c + i g
        else:
            gf = a[:, s["f"]]
            sigmoid(gf, out=gf)
            c_new = gf * c + gi * gg                   # (B, H)
        if self.peephole:
            go += p.w_peephole[ps["o"]] * c_new        # output gate peeks at c_t
        sigmoid(go, out=go)
        tc = np.tanh(c_new)                            # (B, H)
        r = go * tc                                    # (B, H) unprojected output
        h_new = r @ p.w_hr.T if self.proj_size else r  # (B, P) or (B, H)
        return (h_new, c_new), (h, c, a, c_new, tc)    # a now holds the activated gates

    def step_backward(self, p: CellParams, dcarry: Carry, cache: Cache):
        dh, dc = dcarry                                # (B, R), (B, H)
        h, c, act, c_new, tc = cache
        s, ps = self.gate_slices(), self.peephole_slices()
        i, g, o = act[:, s["i"]], act[:, s["g"]], act[:, s["o"]]
        dr = dh @ p.w_hr if self.proj_size else dh     # (B, H) back through the projection
        da = np.empty_like(act)                        # (B, G*H) pre-activation gradients
        da[:, s["o"]] = dr * tc * o * (1 - o)          # h = o tanh(c'), s' = s(1-s)
        dc_new = dc + dr * o * (1 - tc * tc)           # tanh' = 1 - tanh^2
        if self.peephole:
            dc_new += da[:, s["o"]] * p.w_peephole[ps["o"]]  # o read c' through its peephole
        if self.cifg:
            da[:, s["i"]] = dc_new * (g - c) * i * (1 - i)   # c' = c + i (g - c)
            dc_prev = dc_new * (1 - i)
        else:
            f = act[:, s["f"]]
            da[:, s["i"]] = dc_new * g * i * (1 - i)
            da[:, s["f"]] = dc_new * c * f * (1 - f)
            dc_prev = dc_new * f                       # c' = f c + i g
        da[:, s["g"]] = dc_new * i * (1 - g * g)
        if self.peephole:
            dc_prev += da[:, s["i"]] * p.w_peephole[ps["i"]]  # i read c through its peephole
            if not self.cifg:
                dc_prev += da[:, s["f"]] * p.w_peephole[ps["f"]]
        dh_prev = da @ p.w_hh                          # (B, R) back through the recurrence
        drec = (da, dh) if self.proj_size else (da,)
        return da, (dh_prev, dc_prev), drec

    sigmoid_gates = ("input", "forget", "output")

    def activations(self, caches: Cache) -> dict[str, np.ndarray]:
        """Named activations from stacked caches, each (T, B, H)."""
        _, _, act, c_new, tc = caches
        s = self.gate_slices()
        i, o = act[..., s["i"]], act[..., s["o"]]
        f = 1 - i if self.cifg else act[..., s["f"]]
        return {"input": i, "forget": f, "candidate": act[..., s["g"]], "output": o,
                "cell": c_new, "hidden": o * tc}

    def recurrent_grads(self, p, caches, drecs, grads: CellParams) -> None:
        h, c, act, c_new, tc = caches                  # each (T, B, .)
        da = drecs[0]                                  # (T, B, G*H)
        grads.w_hh = flat(da).T @ flat(h)              # (G*H, R): one GEMM over all steps
        if p.b_hh is not None:         # b_ih and b_hh add to the same pre-activation: one sum
            grads.b_hh = flat(da).sum(0) if grads.b_ih is None else grads.b_ih.copy()
        if self.proj_size:
            o = act[..., self.gate_slices()["o"]]
            grads.w_hr = flat(drecs[1]).T @ flat(o * tc)   # (P, H): dh^T r over all steps
        if self.peephole:
            s, ps = self.gate_slices(), self.peephole_slices()
            gp = np.empty_like(p.w_peephole)
            gp[ps["i"]] = (flat(da[..., s["i"]]) * flat(c)).sum(0)
            if not self.cifg:
                gp[ps["f"]] = (flat(da[..., s["f"]]) * flat(c)).sum(0)
            gp[ps["o"]] = (flat(da[..., s["o"]]) * flat(c_new)).sum(0)
            grads.w_peephole = gp
