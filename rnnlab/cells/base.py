"""What every cell provides to the one time loop in `rnnlab.recurrent`.

The loop computes the input projections of all steps as one GEMM before it starts,
    XP = X @ w_ih.T + b_ih + cell.input_bias(p)            # (T, B, G*H)
then calls, per step t (carry = (h,) or (h, c)):
    carry, cache = cell.step_forward(p, XP[t], carry)
and per step backwards:
    dxp, dcarry_prev, drec = cell.step_backward(p, dcarry, cache)
and after the backward loop, with every step's caches and `drec`s stacked on a leading T axis,
    cell.recurrent_grads(p, caches, drecs, grads)          # fills w_hh, b_hh and the extras
with one GEMM each, while the loop itself does dW_ih, db_ih and dX as one GEMM each.
`step_backward` is linear in `dcarry`: rows whose dcarry is zero get zero gradients, which is
how padded steps are masked.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..params import CellParams

Carry = tuple[np.ndarray, ...]
Cache = tuple[np.ndarray, ...]


class Cell(Protocol):
    hidden_size: int

    @property
    def gates(self) -> int: ...              # G: blocks of H rows in w_ih

    @property
    def output_size(self) -> int: ...        # size of h (H, or P with a projection)

    def carry_sizes(self) -> tuple[int, ...]: ...   # (R,) or (R, H)

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]: ...

    def input_bias(self, p: CellParams) -> np.ndarray | None: ...

    def step_forward(self, p: CellParams, xp: np.ndarray, carry: Carry) -> tuple[Carry, Cache]: ...

    def step_backward(self, p: CellParams, dcarry: Carry, cache: Cache
                      ) -> tuple[np.ndarray, Carry, tuple[np.ndarray, ...]]: ...

    def recurrent_grads(self, p: CellParams, caches: Cache, drecs: tuple[np.ndarray, ...],
                        grads: CellParams) -> None: ...


class HiddenStateOnly:
    """For cells whose only carry is h (RNN, GRU, their variants): output and carry are (B, H)."""

    hidden_size: int

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def carry_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,)


def gate_param_shapes(gates: int, H: int, D: int, R: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the G stacked gate blocks: w_ih (G*H, D), w_hh (G*H, R), two biases (G*H,)."""
    return {"w_ih": (gates * H, D), "w_hh": (gates * H, R), "b_ih": (gates * H,), "b_hh": (gates * H,)}


def flat(a: np.ndarray) -> np.ndarray:
    """(T, B, K) -> (T*B, K): all steps as rows of one matrix, for one GEMM."""
    return a.reshape(-1, a.shape[-1])
