"""Clockwork RNN (Koutnik et al. 2014): an Elman RNN whose hidden units form modules that tick
at their own periods.

The H units are split into modules 0..M-1 (sizes as even as `np.array_split` makes them) with
periods T_0 < T_1 < ... (default 1, 2, 4, ..., the paper's exponential clock). At step t
(0, 1, 2, ... in processing order, so every module runs at t = 0):
    module i is active when t mod T_i == 0
    active units:   h'_i = tanh(x W_ih,i^T + b_i + h (W_hh * M)_i^T)
    inactive units: h'_i = h_i                   (they hold, and pass gradient straight through)
The mask M is block upper-triangular: module i reads only modules j >= i (as slow or slower),
as in the paper. Entries of W_hh outside M are never used and get zero gradient.

Holding inactive units is the time loop's own rule for kept carries (as for rows past their
length and for zoneout): `keep_schedule(T)` tells the loop which units hold at which step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..params import CellParams
from .base import Cache, Carry, HiddenStateOnly, flat, gate_param_shapes


@functools.lru_cache(maxsize=64)
def _mask(H: int, periods: tuple[int, ...], dtype: str) -> np.ndarray:
    m = ClockworkCellConfig(H, periods).module_of_unit()
    mask = (m[None, :] >= m[:, None]).astype(dtype)
    mask.flags.writeable = False                       # shared between calls
    return mask


def exponential_periods(num_modules: int) -> tuple[int, ...]:
    return tuple(2 ** i for i in range(num_modules))


@dataclass(frozen=True)
class ClockworkCellConfig(HiddenStateOnly):
    hidden_size: int
    periods: tuple[int, ...] = (1, 2, 4, 8)

    gates = 1

    def __post_init__(self) -> None:
        ps = self.periods
        if not ps or any(not isinstance(p, (int, np.integer)) or p < 1 for p in ps):
            raise ConfigError(f"periods: expected positive ints, got {ps!r}")
        if list(ps) != sorted(ps):
            raise ConfigError(f"periods: expected them in increasing order (fast to slow), got {ps!r}")
        if len(ps) > self.hidden_size:
            raise ConfigError(f"periods: {len(ps)} modules need at least as many hidden units, "
                              f"got hidden_size {self.hidden_size}")

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        return gate_param_shapes(1, self.hidden_size, input_size, self.hidden_size)

    def module_of_unit(self) -> np.ndarray:
        """(H,) the module each hidden unit belongs to."""
        parts = np.array_split(np.arange(self.hidden_size), len(self.periods))
        return np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])

    def recurrent_mask(self, dtype=np.float64) -> np.ndarray:
        """(H, H) M[u, v] = 1 when unit u's module reads unit v's (module(v) >= module(u))."""
        return _mask(self.hidden_size, self.periods, np.dtype(dtype).str)

    def keep_schedule(self, T: int) -> np.ndarray:
        """(T, 1, H) True where a unit's module is idle at step t (t mod period != 0)."""
        period = np.asarray(self.periods)[self.module_of_unit()]        # (H,)
        return (np.arange(T)[:, None] % period[None, :] != 0)[:, None, :]

    def input_bias(self, p: CellParams) -> np.ndarray | None:
        return p.b_hh                                  # folds into the input projections

    def step_forward(self, p: CellParams, xp: np.ndarray, carry: Carry) -> tuple[Carry, Cache]:
        (h,) = carry                                   # (B, H)
        w = p.w_hh * self.recurrent_mask(p.w_hh.dtype)  # (H, H) block upper-triangular
        h_new = np.tanh(xp + h @ w.T)                  # every unit; the loop keeps idle ones
        return (h_new,), (h, h_new)

    def step_backward(self, p: CellParams, dcarry: Carry, cache: Cache):
        (dh,) = dcarry                                 # zero on idle units (the loop's keep rule)
        _, h_new = cache
        da = dh * (1 - h_new * h_new)                  # tanh' from the saved output
        w = p.w_hh * self.recurrent_mask(p.w_hh.dtype)
        return da, (da @ w,), (da,)

    sigmoid_gates: tuple[str, ...] = ()

    def activations(self, caches: Cache) -> dict[str, np.ndarray]:
        return {"hidden": caches[1]}

    def recurrent_grads(self, p, caches, drecs, grads: CellParams) -> None:
        (da,) = drecs                                  # (T, B, H)
        grads.w_hh = (flat(da).T @ flat(caches[0])) * self.recurrent_mask(p.w_hh.dtype)  # only M's entries
        if p.b_hh is not None:
            grads.b_hh = flat(da).sum(0)
