"""Elman RNN cell: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu.

As `torch.nn.RNN`: one gate block (G = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import CellParams
from .base import Cache, Carry, HiddenStateOnly, flat, gate_param_shapes

NONLINEARITIES = ("tanh", "relu")


@dataclass(frozen=True)
class RNNCellConfig(HiddenStateOnly):
    hidden_size: int
    nonlinearity: str = "tanh"

    gates = 1

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        return gate_param_shapes(1, self.hidden_size, input_size, self.hidden_size)

    def input_bias(self, p: CellParams) -> np.ndarray | None:
        return p.b_hh  # b_hh adds straight to the pre-activation: fold it into XP

    def step_forward(self, p: CellParams, xp: np.ndarray, carry: Carry) -> tuple[Carry, Cache]:
        (h,) = carry                                   # (B, H)
        a = xp + h @ p.w_hh.T                          # (B, H) pre-activation
        if self.nonlinearity == "tanh":
            h_new = np.tanh(a, out=a)
        else:
            h_new = np.maximum(a, 0, out=a)
        return (h_new,), (h, h_new)

    def step_backward(self, p: CellParams, dcarry: Carry, cache: Cache):
        (dh,) = dcarry
        h_prev, h_new = cache
        if self.nonlinearity == "tanh":
            da = dh * (1 - h_new * h_new)              # tanh' from the saved output
        else:
            da = dh * (h_new > 0)                      # relu' from the saved output
        dh_prev = da @ p.w_hh                          # (B, H) back through the recurrence
        return da, (dh_prev,), (da,)

    sigmoid_gates: tuple[str, ...] = ()

    def activations(self, caches: Cache) -> dict[str, np.ndarray]:
        """Named activations from stacked caches, each (T, B, H)."""
        return {"hidden": caches[1]}

    def recurrent_grads(self, p, caches, drecs, grads: CellParams) -> None:
        h_prev = caches[0]                             # (T, B, H)
        (da,) = drecs                                  # (T, B, H)
        grads.w_hh = flat(da).T @ flat(h_prev)         # (H, H): one GEMM over all steps
        if p.b_hh is not None:         # b_ih and b_hh add to the same pre-activation: one sum
            grads.b_hh = flat(da).sum(0) if grads.b_ih is None else grads.b_ih.copy()
