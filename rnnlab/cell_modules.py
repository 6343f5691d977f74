"""One step of one cell, as `torch.nn.RNNCell/LSTMCell/GRUCell`: the time loop with T = 1."""

from __future__ import annotations

import numpy as np

from . import _checks as check
from .cells.base import Cell
from .cells.gru import GRUCellConfig
from .cells.lstm import LSTMCellConfig
from .cells.rnn import NONLINEARITIES, RNNCellConfig
from .errors import ConfigError, OrderError, ShapeError
from .init import INIT_SCHEMES, init_cell, make_rng
from .module import ParamModule
from .params import CellParams
from .recurrent import ScanCache, owned, scan_backward, scan_forward

State = np.ndarray | tuple[np.ndarray, np.ndarray]


class _StepModule(ParamModule):
    def __init__(self, cell: Cell, input_size: int, bias: bool, dtype: object, init: str,
                 rng: np.random.Generator | int | None, forget_bias: float | None = None) -> None:
        self.input_size = check.positive_int(input_size, "input_size")
        self.hidden_size = cell.hidden_size
        self.dtype = check.as_dtype(dtype)
        check.choice(init, "init", INIT_SCHEMES)
        if forget_bias is not None and not bias:
            raise ConfigError("forget_bias: needs bias=True")
        self.cell = cell
        self.params = init_cell(cell, self.input_size, bias=bool(bias), dtype=self.dtype,
                                rng=make_rng(rng), scheme=init, forget_bias=forget_bias)
        self._cache: tuple[ScanCache, bool] | None = None
        self._grads: CellParams | None = None

    def _param_sets(self) -> list[tuple[str, CellParams]]:
        return [("", self.params)]                       # keys as torch: weight_ih, bias_hh, ...

    def _grad_sets(self) -> list[CellParams] | None:
        return None if self._grads is None else [self._grads]

    def _carry(self, hx: State | None, B: int, unbatched: bool, names: tuple[str, ...]):
        sizes = self.cell.carry_sizes()
        if hx is None:
            return tuple(np.zeros((B, s), dtype=self.dtype) for s in sizes)
        parts = hx if len(sizes) == 2 else (hx,)
        if len(sizes) == 2 and not (isinstance(hx, tuple) and len(hx) == 2):
            raise ShapeError(f"hx: expected a tuple ({names[0]}, {names[1]}), got {type(hx).__name__}")
        out = []
        for name, a, size in zip(names, parts, sizes):
            check.array(a, name, self.dtype, 1 if unbatched else 2)
            check.shape(a, name, (size,) if unbatched else (B, size),
                        "size" if unbatched else "batch, size")
            out.append(a[None] if unbatched else a)
        return tuple(out)

    def _result(self, carry: tuple[np.ndarray, ...], unbatched: bool) -> State:
        out = tuple(c[0] if unbatched else c for c in carry)
        return out[0] if len(out) == 1 else out

    def __call__(self, x: np.ndarray, hx: State | None = None) -> State:
        """h' (or (h', c') for LSTM) from x (B, D) or (D,) and the previous state."""
        check.array(x, "x", self.dtype, (1, 2))
        unbatched = x.ndim == 1
        xb = x[None] if unbatched else x                 # (B, D)
        if xb.shape[1] != self.input_size:
            raise ShapeError(f"x: expected input size {self.input_size} in the last axis, "
                             f"got {xb.shape[1]}")
        carry = self._carry(hx, xb.shape[0], unbatched, ("h", "c"))
        _, new, sc = scan_forward(self.cell, self.params, xb[None].copy(), carry)   # x saved: a copy
        self._cache, self._grads = (sc, unbatched), None
        return self._result(tuple(owned(c, [sc]) for c in new), unbatched)

    def backward(self, dstate: State) -> tuple[np.ndarray, State]:
        """Gradient of h' (and c') in; gradients of x and of the previous state out."""
        if self._cache is None:
            raise OrderError("backward: no forward call to go back through")
        sc, unbatched = self._cache
        B = sc.x.shape[1]
        dcarry = self._carry(dstate, B, unbatched, ("dh", "dc"))
        dY = np.zeros((1, B, self.cell.output_size), dtype=self.dtype)
        dx, dprev, self._grads = scan_backward(self.cell, self.params, sc, dY, dcarry)
        return (dx[0, 0] if unbatched else dx[0]), self._result(dprev, unbatched)


class RNNCell(_StepModule):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, dtype: object = np.float32,
                 init: str = "pytorch", rng: np.random.Generator | int | None = None) -> None:
        cell = RNNCellConfig(check.positive_int(hidden_size, "hidden_size"),
                             check.choice(nonlinearity, "nonlinearity", NONLINEARITIES))
        super().__init__(cell, input_size, bias, dtype, init, rng)


class LSTMCell(_StepModule):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 proj_size: int = 0, peephole: bool = False, cifg: bool = False,
                 forget_bias: float | None = None, dtype: object = np.float32,
                 init: str = "pytorch", rng: np.random.Generator | int | None = None) -> None:
        H = check.positive_int(hidden_size, "hidden_size")
        P = check.positive_int(proj_size, "proj_size", allow_zero=True)
        if P >= H:
            raise ConfigError(f"proj_size: expected an int < hidden_size ({H}), got {P}")
        super().__init__(LSTMCellConfig(H, P, bool(peephole), bool(cifg)), input_size, bias,
                         dtype, init, rng, forget_bias)


class GRUCell(_StepModule):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 reset_after: bool = True, dtype: object = np.float32, init: str = "pytorch",
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__(GRUCellConfig(check.positive_int(hidden_size, "hidden_size"),
                                       bool(reset_after)), input_size, bias, dtype, init, rng)
