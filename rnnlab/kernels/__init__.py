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


@functools.cache
def _families():
    """The kernel families' modules, imported once, at the first call that needs them."""
    from . import gru, lstm, rnn
    return gru, lstm, rnn


def machine(level: str, dtype) -> backends.Machine:
    """What this process can run now at `level` for `dtype` (see backends.Machine): loads the
    kernels (and numba, where installed) at the first call that needs them. Whether the packed
    loops are usable is asked for float32 only: inside shared_pool() the first ask shares
    OpenBLAS's jobs with numba's threads."""
    if level not in ("compiled", "packed") or not backends.numba_installed():
        return _NOTHING
    _blas, _jit, _packed = _compiled()
    return backends.Machine(_jit.AVAILABLE, _names(tuple(_blas.GEMM)),
                            dtype == _F32 and _packed.usable())


_NOTHING = backends.Machine()
_F32 = np.dtype(np.float32)


@functools.cache
def _compiled():
    """The compiled kernels' modules (numba loads here), imported at the first call that asks."""
    from . import _blas, _jit, _packed
    return _blas, _jit, _packed


@functools.lru_cache(maxsize=8)
def _names(dtypes: tuple) -> frozenset:
    return frozenset(np.dtype(d).name for d in dtypes)


def path_of(cell, T: int, B: int, dtype, training: bool, streaming: bool = False,
            contiguous: bool = True, strided_weights: bool = False) -> backends.Path:
    """The Path a call takes now (backends.choose, with the level in force and this machine)."""
    level = backends.current()
    return backends.choose(cell, T, B, dtype, training, streaming, level, machine(level, dtype),
                           contiguous, strided_weights)


def _fused(cell):
    """The fused kernels' module for `cell` at the level in force, or None (no fused kernel,
    or the "reference" backend: the reference steps run)."""
    return _module(backends.family(cell) if backends.allows("numpy") else None)


def _module(family: str | None):
    """The fused kernels' module of a family, or None."""
    if family is None:
        return None
    gru, lstm, rnn = _families()
    return {"lstm": lstm, "gru": gru, "rnn": rnn}[family]


def forward_kernel(cell, p, XP, carry, keep_cache: bool, bias=None, streaming: bool = False,
                   path: backends.Path | None = None, hs: np.ndarray | None = None):
    """The fused forward over XP (T, B, G*H), which carries `input_scale` (see folded_input);
    `bias` (G*H,), scaled as XP, is added where the gate math reads XP (None: XP holds it).
    `streaming`: the kernel will be stepped again and again over a one-step XP (rnnlab.Stream),
    so set-up that pays over many steps is worth it (see _buffers.step_weights). `path`: the
    call's (kernels.path_of), or None to choose it here. `hs`: a (T+1, B, H) buffer for the h
    carries (the outputs), row 0 the initial h; None: a new one. None where no fused kernel runs."""
    if _fused(cell) is None:
        return None
    T, B, _ = XP.shape
    if path is None:
        path = path_of(cell, T, B, XP.dtype, keep_cache, streaming,
                       XP.flags.c_contiguous and all(c.dtype == XP.dtype for c in carry),
                       strided(p.w_hh))
    fam = _module(path.family)
    if fam is None:
        return None
    if bias is None:
        bias = np.zeros(XP.shape[-1], dtype=XP.dtype)
    steps = math.inf if streaming else T
    return fam.Forward(cell, p, XP, carry, keep_cache, bias, steps, path, hs)


def strided(w: np.ndarray) -> bool:
    """Whether w is neither C- nor F-contiguous (the BLAS loop cannot read it in place)."""
    return not (w.flags.c_contiguous or w.flags.f_contiguous)


def saves_projections(path: backends.Path) -> bool:
    """Whether the fused forward's cache keeps its input projections (its gates written over
    them), so that they live until the backward that spends them."""
    fam = _module(path.family)
    return fam is not None and fam.Forward.saves_projections


def own_projection(path: backends.Path):
    """The GEMM `(xs (N, D), w (G, D), scale (G,) or None, out) -> out = xs (w scale)^T` (the
    scale taken as it packs w, no scaled copy of w) that the fused forward wants for its
    input projections instead of NumPy's, or None: the LSTM's packed loop runs it on numba's
    threads where path.projection is "packed"."""
    return _families()[1].packed_projection if path.projection == "packed" else None


def input_scale(cell, dtype):
    """(G*H,) factors the fused forward wants on its input projections, or None."""
    fam = _fused(cell)
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
    """The fused backward of a forward that saved `caches` and read x (T, B, D), or None."""
    T, B = x.shape[:2]
    fam = _fused(cell)
    if fam is None:
        return None
    way = path_of(cell, T, B, x.dtype, training=True, contiguous=fam.laid_out(caches))
    return fam.Backward(cell, p, caches, dcarry, x, way)
