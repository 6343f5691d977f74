"""rnnlab parameters in the layout of the ONNX RNN, LSTM and GRU operators (W, R, B, P).

ONNX orders LSTM gates i, o, f, c and GRU gates z, r, h; rnnlab (as PyTorch) i, f, g, o and
r, z, n. A CIFG LSTM has no forget-gate weights: ONNX's `input_forget=1` ignores them, so they
are written as zeros. ONNX has no LSTM projection.
"""

from __future__ import annotations

import numpy as np

from ..cells.base import Cell
from ..cells.gru import GRUCellConfig
from ..cells.lstm import LSTMCellConfig
from ..cells.rnn import RNNCellConfig
from ..errors import ConfigError
from ..params import CellParams


def onnx_op(cell: Cell) -> tuple[str, dict[str, object]]:
    """The ONNX operator type and the attributes that select this cell's equations."""
    if isinstance(cell, RNNCellConfig):
        return "RNN", {"activations": ["Tanh" if cell.nonlinearity == "tanh" else "Relu"] * 2}
    if isinstance(cell, GRUCellConfig):
        return "GRU", {"linear_before_reset": int(cell.reset_after)}
    if isinstance(cell, LSTMCellConfig):
        if cell.proj_size:
            raise ConfigError("proj_size: the ONNX LSTM operator has no projection; "
                              "a projected LSTM cannot be written as one LSTM node")
        return "LSTM", {"input_forget": int(cell.cifg)}
    raise ConfigError(f"cell: no ONNX operator for {type(cell).__name__}")


def _blocks(a: np.ndarray, H: int, order: list[int | None]) -> np.ndarray:
    """Reorder gate blocks of H rows; None gives a block of zeros."""
    zero = np.zeros((H,) + a.shape[1:], dtype=a.dtype)
    return np.concatenate([zero if k is None else a[k * H:(k + 1) * H] for k in order])


def _gate_order(cell: Cell) -> list[int | None]:
    if isinstance(cell, LSTMCellConfig):
        return [0, 2, None, 1] if cell.cifg else [0, 3, 1, 2]      # -> i, o, f, c
    if isinstance(cell, GRUCellConfig):
        return [1, 0, 2]                                           # -> z, r, h
    return [0]


def onnx_weights(cell: Cell, directions: list[CellParams]) -> dict[str, np.ndarray]:
    """W, R, B (and P for peephole LSTM), each with a leading num_directions axis."""
    onnx_op(cell)                                                  # raises if not expressible
    H, order = cell.hidden_size, _gate_order(cell)
    out: dict[str, list[np.ndarray]] = {"W": [], "R": [], "B": []}
    for p in directions:
        out["W"].append(_blocks(p.w_ih, H, order))
        out["R"].append(_blocks(p.w_hh, H, order))
        G = len(order)
        if p.b_ih is None:
            out["B"].append(np.zeros(2 * G * H, dtype=p.w_ih.dtype))
        else:
            out["B"].append(np.concatenate([_blocks(p.b_ih, H, order), _blocks(p.b_hh, H, order)]))
        if p.w_peephole is not None:
            peep = [0, 1, None] if cell.cifg else [0, 2, 1]         # -> i, o, f
            out.setdefault("P", []).append(_blocks(p.w_peephole, H, peep))
    return {k: np.stack(v) for k, v in out.items()}
