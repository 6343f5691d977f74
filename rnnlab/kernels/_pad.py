"""Hidden units padded to a multiple of 16, so the packed loops (whose tiles are 16 wide) run
an H they do not take as it is (backends.choose's `pad`, e.g. 650 -> 656: Zaremba's medium LM).

Each gate block of H rows gets Hp - H rows of zeros (weights, both biases), W_hh zero columns
for the extra units, and the carries zero there. The extra units then stay exactly 0 at every
step (LSTM: gates 0.5, candidate tanh(0) = 0, so c and h stay 0; GRU: n = 0 and h = z h = 0;
RNN: act(0) = 0) and never touch the real ones, so the real units' outputs, states and
gradients are the unpadded call's. The recurrent loop pads, runs, and cuts the results back.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..params import CellParams


def padded_cell(cell, Hp: int):
    """The same cell config with Hp hidden units."""
    return replace(cell, hidden_size=Hp)


def _rows(a: np.ndarray, G: int, H: int, Hp: int) -> np.ndarray:
    """(G*H, ...) -> (G*Hp, ...): each gate block's H rows, then Hp - H rows of zeros."""
    out = np.zeros((G, Hp) + a.shape[1:], dtype=a.dtype)
    out[:, :H] = a.reshape((G, H) + a.shape[1:])
    return out.reshape((G * Hp,) + a.shape[1:])


def pad_params(cell, p: CellParams, Hp: int) -> CellParams:
    """p of `cell` (H units) laid out for Hp units."""
    G, H = cell.gates, cell.hidden_size
    w_hh = np.zeros((G * H, Hp), dtype=p.w_hh.dtype)
    w_hh[:, :H] = p.w_hh
    return CellParams(w_ih=_rows(p.w_ih, G, H, Hp), w_hh=_rows(w_hh, G, H, Hp),
                      b_ih=None if p.b_ih is None else _rows(p.b_ih, G, H, Hp),
                      b_hh=None if p.b_hh is None else _rows(p.b_hh, G, H, Hp))


def unpad_grads(cell, g: CellParams) -> CellParams:
    """Gradients of pad_params's arrays -> those of the cell's own (the real rows and columns)."""
    G, H = cell.gates, cell.hidden_size

    def rows(a):
        return None if a is None else np.ascontiguousarray(a.reshape((G, -1) + a.shape[1:])[:, :H].reshape((G * H,) + a.shape[1:]))
    return CellParams(w_ih=rows(g.w_ih), w_hh=np.ascontiguousarray(rows(g.w_hh)[:, :H]), b_ih=rows(g.b_ih), b_hh=rows(g.b_hh))


def pad_units(a: np.ndarray, Hp: int) -> np.ndarray:
    """(..., H) -> (..., Hp), zeros in the extra units."""
    out = np.zeros(a.shape[:-1] + (Hp,), dtype=a.dtype)
    out[..., :a.shape[-1]] = a
    return out


def cut_units(a: np.ndarray, H: int) -> np.ndarray:
    """(..., Hp) -> (..., H), its own memory."""
    return np.ascontiguousarray(a[..., :H])
