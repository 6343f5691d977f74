"""The one time loop: any cell over time, with lengths and reversal; layers and stacks on it.

Shapes: T time, B batch, D input size, G*H gate columns, R output size (H or P).
Everything here is time-major (T, B, .); `rnnlab.networks` handles batch_first.

Variable lengths follow ONNX `sequence_lens`: a padded step (t >= length) keeps the previous
state and outputs zeros, so the final state is the state at each row's last valid step; the
reverse direction runs backwards within each row's own length (x[L-1], ..., x[0]).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import kernels
from .cells.base import Cache, Carry, Cell, flat
from .params import CellParams


@dataclass
class ScanCache:
    """What one direction of one layer saves for its backward pass."""
    x: np.ndarray                  # (T, B, D) the input in processing order
    caches: Cache                  # each cell cache field stacked: (T, B, .)
    mask: np.ndarray | None        # (T, B, 1) True where a step is valid
    padded: np.ndarray | None      # (T,) True where some row is past its length
    order: np.ndarray | None       # (T, B, 1) gather index of the per-row reversal
    spent: bool = False            # a fused backward overwrote the caches (LSTM gates)


def step_mask(lengths: np.ndarray | None, T: int) -> np.ndarray | None:
    """(T, B, 1) validity mask, or None when every row has all T steps."""
    if lengths is None or (lengths == T).all():
        return None
    return (np.arange(T)[:, None] < lengths[None, :])[:, :, None]


def reverse_order(lengths: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """(T, B, 1) index that reverses each row within its own length; its own inverse."""
    t = np.arange(T)[:, None]
    L = np.full(B, T) if lengths is None else lengths
    return np.where(t < L[None, :], L[None, :] - 1 - t, t)[:, :, None]


def gather_time(a: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """a[order[t, b], b] for every t, b: the per-row time reversal (or a itself)."""
    return a if order is None else np.take_along_axis(a, order, axis=0)


def scan_forward(cell: Cell, p: CellParams, x: np.ndarray, carry: Carry,
                 lengths: np.ndarray | None = None, reverse: bool = False,
                 keep_cache: bool = True) -> tuple[np.ndarray, Carry, ScanCache | None]:
    """Run `cell` over x (T, B, D) from `carry`; returns outputs (T, B, R), final carry, cache."""
    T, B, _ = x.shape
    order = reverse_order(lengths, T, B) if reverse else None
    xs = gather_time(x, order)                                     # (T, B, D) processing order
    mask = step_mask(lengths, T)
    padded = None if mask is None else ~mask.all(axis=(1, 2))     # (T,) steps needing a mask
    XP = flat(xs) @ p.w_ih.T                                       # (T*B, G*H): one GEMM, all steps
    for b in (p.b_ih, cell.input_bias(p)):
        if b is not None:
            XP += b
    XP = XP.reshape(T, B, -1)
    kern = kernels.forward_kernel(cell, p, XP, carry, keep_cache)
    if kern is not None:                                           # the fused path
        for t in range(T):
            kern.step(t, None if padded is None or not padded[t] else ~mask[t])
        Y = kern.outputs()                                         # (T, B, R)
        Y = gather_time(Y if mask is None else Y * mask, order)    # padded steps output zeros
        if not keep_cache:
            return Y, kern.final(), None
        return Y, kern.final(), ScanCache(x=xs, caches=kern.caches(), mask=mask, padded=padded, order=order)
    Y = np.empty((T, B, cell.output_size), dtype=x.dtype)          # (T, B, R)
    caches = []
    for t in range(T):
        new, cache = cell.step_forward(p, XP[t], carry)
        if padded is not None and padded[t]:
            m = mask[t]                                            # (B, 1)
            new = tuple(np.where(m, n, o) for n, o in zip(new, carry))  # padded rows hold
            np.multiply(new[0], m, out=Y[t])                       # and output zeros
        else:
            Y[t] = new[0]
        carry = new
        if keep_cache:
            caches.append(cache)
    Y = gather_time(Y, order)
    if not keep_cache:
        return Y, carry, None
    stacked = tuple(np.stack(field) for field in zip(*caches))        # each (T, B, .)
    return Y, carry, ScanCache(x=xs, caches=stacked, mask=mask, padded=padded, order=order)


def scan_backward(cell: Cell, p: CellParams, sc: ScanCache, dY: np.ndarray, dcarry: Carry,
                  on_state_grad: Callable[[int, Carry], None] | None = None
                  ) -> tuple[np.ndarray, Carry, CellParams]:
    """Gradients of the loss through the scan: dx (T, B, D), d initial carry, parameter grads.

    `on_state_grad(t, dstate)`, if given, sees dL/d(state after step t) for every t (in
    processing order): the chain-rule product through time that the tutorials derive."""
    if sc.spent:
        raise RuntimeError("backward: this forward call's saved activations were used up by an "
                           "earlier backward (the LSTM's gates become their gradients to save "
                           "memory); run forward again")
    T = dY.shape[0]
    dY = gather_time(dY, sc.order)                                 # into processing order
    kern = None if on_state_grad is not None else kernels.backward_kernel(cell, p, sc.caches, dcarry)
    if kern is not None:                                           # the fused path
        if sc.mask is not None:
            dY = dY * sc.mask                                      # padded outputs are constants
        for t in range(T - 1, -1, -1):
            kern.step(t, dY[t], None if sc.padded is None or not sc.padded[t] else ~sc.mask[t])
        dXP, drecs, dcarry = kern.dxp(), kern.drecs(), kern.dcarry()
        sc.spent = getattr(kern, "consumes_cache", False)
    else:
        dXP, drecs, dcarry = _reference_backward(cell, p, sc, dY, dcarry, on_state_grad)
    grads = CellParams(w_ih=flat(dXP).T @ flat(sc.x), w_hh=None)   # (G*H, D); the cell fills w_hh
    if p.b_ih is not None:
        grads.b_ih = flat(dXP).sum(0)
    cell.recurrent_grads(p, sc.caches, drecs, grads)
    dx = (flat(dXP) @ p.w_ih).reshape(sc.x.shape)                  # (T, B, D): one GEMM
    return gather_time(dx, sc.order), dcarry, grads


def _reference_backward(cell, p, sc: ScanCache, dY, dcarry, on_state_grad):
    """The readable loop over the cell's own step_backward; returns dXP, stacked drecs, dcarry0."""
    T = dY.shape[0]
    dXP = np.empty((T,) + dY.shape[1:2] + (p.w_ih.shape[0],), dtype=dY.dtype)  # (T, B, G*H)
    drecs = []
    for t in range(T - 1, -1, -1):
        cache = tuple(field[t] for field in sc.caches)
        if sc.padded is not None and sc.padded[t]:
            m = sc.mask[t]                                         # (B, 1)
            dc = (dcarry[0] + dY[t] * m,) + dcarry[1:]             # a padded output is a constant
            if on_state_grad is not None:
                on_state_grad(t, dc)
            dxp, dprev, drec = cell.step_backward(p, tuple(d * m for d in dc), cache)
            dprev = tuple(np.where(m, dp, d) for dp, d in zip(dprev, dc))  # padded rows pass through
        else:
            dc = (dcarry[0] + dY[t],) + dcarry[1:]
            if on_state_grad is not None:
                on_state_grad(t, dc)
            dxp, dprev, drec = cell.step_backward(p, dc, cache)
        dXP[t] = dxp
        drecs.append(drec)
        dcarry = dprev
    drecs.reverse()
    return dXP, tuple(np.stack(field) for field in zip(*drecs)), dcarry
