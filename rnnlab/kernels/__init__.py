"""Fused time loops: the fast path of `rnnlab.recurrent` for the common cells.

The readable step functions in `rnnlab.cells` are the reference; these kernels compute the same
thing with preallocated buffers, `out=` everywhere and the elementwise gate math merged into as
few passes over memory as possible. They keep the reference's cache layout (so either backward
can follow either forward) and are tested against it (tests/kernels).

`forward_kernel` / `backward_kernel` return None for a cell without a fused kernel (peephole,
CIFG or projected LSTM); the loop then runs the reference steps.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import backends
from ..cells.gru import GRUCellConfig
from ..cells.lstm import LSTMCellConfig
from ..cells.rnn import RNNCellConfig


@functools.cache
def _families():
    """The kernel families' modules, imported once, at the first call that needs them."""
    from . import gru, lstm, rnn
    return gru, lstm, rnn


def _family(cell):
    """The fused kernels' module for `cell`, or None (the reference steps run: the cell has no
    fused kernel, or the backend in force is "reference", see rnnlab.backends). The kernels
    (and numba, where it is installed) load at the first call that needs them."""
    if not backends.allows("numpy"):
        return None
    gru, lstm, rnn = _families()
    if isinstance(cell, LSTMCellConfig):
        plain = not (cell.proj_size or cell.peephole or cell.cifg)
        return lstm if plain else None
    if isinstance(cell, GRUCellConfig):
        return gru
    if isinstance(cell, RNNCellConfig):
        return rnn
    return None


def forward_kernel(cell, p, XP, carry, keep_cache: bool, bias=None, streaming: bool = False):
    """The fused forward over XP (T, B, G*H), which carries `input_scale` (see folded_input);
    `bias` (G*H,), scaled as XP, is added where the gate math reads XP (None: XP holds it).
    `streaming`: the kernel will be stepped again and again over a one-step XP (rnnlab.Stream),
    so set-up that pays over many steps is worth it (see _buffers.step_weights)."""
    fam = _family(cell)
    if fam is None:
        return None
    if bias is None:
        bias = np.zeros(XP.shape[-1], dtype=XP.dtype)
    steps = math.inf if streaming else XP.shape[0]
    return fam.Forward(cell, p, XP, carry, keep_cache, bias, steps)


def saves_projections(cell) -> bool:
    """Whether the fused forward's cache keeps its input projections (its gates written over
    them), so that they live until the backward that spends them."""
    fam = _family(cell)
    return fam is not None and fam.Forward.saves_projections


def own_projection(cell, x: np.ndarray, keep_cache: bool):
    """The GEMM `(xs (N, D), w (G, D), scale (G,) or None, out) -> out = xs (w scale)^T` (the
    scale taken as it packs w, no scaled copy of w) that the fused forward wants for its
    input projections instead of NumPy's, or None: the LSTM's packed loop (lstm.packed_loop)
    runs it on numba's threads, as the loop itself (lstm.projects_packed)."""
    lstm = _families()[1]
    fam = _family(cell)
    T, B = x.shape[:2]
    if fam is lstm and lstm.projects_packed(T, B, cell.hidden_size, x.dtype, keep_cache):
        return lstm.packed_projection
    return None


def input_scale(cell, dtype):
    """(G*H,) factors the fused forward wants on its input projections, or None."""
    fam = _family(cell)
    return None if fam is None else fam.input_scale(cell, dtype)


def folded_input(cell, p, scale):
    """W_ih (G*H, D) and one bias (G*H,) or None for XP = x W_ih^T + b_ih + input_bias, with
    `scale` (input_scale, or None) folded into both. The scale is a power of two: exact."""
    biases = [b for b in (p.b_ih, cell.input_bias(p)) if b is not None]
    b = sum(biases[1:], biases[0]) if biases else None        # (G*H,)
    if scale is None:
        return p.w_ih, b
    return p.w_ih * scale[:, None], None if b is None else b * scale


def backward_kernel(cell, p, caches, dcarry, x):
    """The fused backward of a forward that saved `caches` and read x (T, B, D)."""
    fam = _family(cell)
    return None if fam is None else fam.Backward(cell, p, caches, dcarry, x)
