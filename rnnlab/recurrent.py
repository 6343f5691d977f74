"""The one time loop: any cell over time, with lengths and reversal; layers and stacks on it.

Shapes: T time, B batch, D input size, G*H gate columns, R output size (H or P).
Everything here is time-major (T, B, .); `rnnlab.networks` handles batch_first.

Variable lengths follow ONNX `sequence_lens`: a padded step (t >= length) keeps the previous
state and outputs zeros, so the final state is the state at each row's last valid step; the
reverse direction runs backwards within each row's own length (x[L-1], ..., x[0]).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from . import kernels
from .cells.base import Cache, Carry, Cell, flat
from .errors import OrderError
from .kernels import _pad
from .kernels._buffers import Scratch, held_rows
from .params import CellParams


@dataclass(frozen=True)
class Regularisers:
    """The regularisers inside the time loop, as configured: zoneout of h (and c: a pair for
    the LSTM; Krueger et al. 2016) and variational dropout of the inputs and of h (Gal &
    Ghahramani 2016). `Noise` is what one forward call draws from them."""
    zoneout: float | tuple[float, ...] = 0.0
    input_dropout: float = 0.0
    recurrent_dropout: float = 0.0


@dataclass
class Noise:
    """The regularisers of one layer and direction, fixed for one forward call.

    x_mask (B, D): variational dropout on the input (Gal & Ghahramani 2016): one scaled mask per
        sequence, the same at every step.
    h_mask (B, R): variational dropout on h where the step reads it, also one mask per sequence.
    zoneout (Krueger et al. 2016), one entry per carry (h, and c for LSTM): (T, B, size) boolean
        masks, True where a unit keeps its previous value (training), or a probability p
        (evaluation: the expectation p * old + (1 - p) * new).
    """
    x_mask: np.ndarray | None = None
    h_mask: np.ndarray | None = None
    zoneout: tuple[np.ndarray | float, ...] | None = None


@dataclass
class ScanCache:
    """What one direction of one layer saves for its backward pass."""
    x: np.ndarray                  # (T, B, D) the input in processing order
    caches: Cache                  # each cell cache field stacked: (T, B, .)
    mask: np.ndarray | None        # (T, B, 1) True where a step is valid
    padded: np.ndarray | None      # (T,) True where some row is past its length
    order: np.ndarray | None       # (T, B, 1) gather index of the per-row reversal
    spent: bool = False            # a fused backward overwrote the caches (LSTM, GRU gates)
    noise: Noise | None = None     # dropout masks and zoneout of the forward call
    lent: np.ndarray | None = None  # XP, from the scratch: back to it after the backward that spends it
    grown: tuple | None = None     # (cell, params) at padded H when the call ran padded (kernels/_pad.py)


def saves(a: np.ndarray, saved: list[ScanCache]) -> bool:
    """Whether `a` shares memory with activations that backward will read."""
    return any(np.may_share_memory(a, f) for sc in saved for f in (sc.x, *sc.caches))


def owned(a: np.ndarray, saved: list[ScanCache]) -> np.ndarray:
    """`a`, or a copy of it where it shares memory with saved activations: what a caller gets
    back must not alias what backward reads (writing into it would change the gradients)."""
    return a.copy() if saves(a, saved) else a


def fingerprint(a: np.ndarray) -> int:
    """A digest of an array's bits in one pass, allocating nothing of its size: the sum of its
    words. Two calls differ when the array was written into in between (unless the writes
    only permuted its values), which is how a forward call's saved arrays that the caller also
    holds are checked before backward reads them (as torch's version counters do)."""
    words = a.view(np.uint32 if a.itemsize == 4 else np.uint64)
    return int(words.sum(dtype=np.uint64))


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


def keep_weights(noise: Noise | None, mask, padded, t: int, carry: Carry):
    """How much of each carry's old value step t keeps: a (B, .) weight per carry (1 in rows
    past their length, the zoneout mask or probability elsewhere), or None when nothing is kept."""
    pad = held_rows(mask, padded, t)
    zone = None if noise is None else noise.zoneout
    if zone is None and pad is None:
        return None
    out = []
    for j, c in enumerate(carry):
        k = 0.0 if zone is None else zone[j][t] if isinstance(zone[j], np.ndarray) else zone[j]
        if pad is not None:
            k = np.where(pad, 1.0, k)
        out.append(np.asarray(k, dtype=c.dtype))
    return tuple(out)


def with_schedule(cell: Cell, noise: Noise | None, T: int) -> Noise | None:
    """Merge a cell's own schedule of held units (Clockwork RNN: idle modules) into zoneout."""
    schedule = getattr(cell, "keep_schedule", None)
    if schedule is None:
        return noise
    idle = schedule(T)                                             # (T, 1, H) True: unit holds
    zone = None if noise is None else noise.zoneout
    if zone is None:
        merged = (idle,)
    elif isinstance(zone[0], np.ndarray):
        merged = (zone[0] | idle,) + zone[1:]                      # training: held if either
    else:
        merged = (np.where(idle, 1.0, zone[0]),) + zone[1:]        # evaluation: idle units hold
    return replace(noise or Noise(), zoneout=merged)


CHUNK_BYTES = 64 << 20   # inference: input projections this many bytes at a time (docs/design.md, Memory)


def input_projection(cell: Cell, p: CellParams, xs: np.ndarray, scale: np.ndarray | None,
                     leave_bias: bool = False, scratch: Scratch | None = None,
                     gemm=None) -> tuple[np.ndarray, np.ndarray | None]:
    """XP (T, B, G*H) = (xs W_ih^T + b_ih + input_bias) * scale: one GEMM and at most one bias
    pass. The scale goes on the smaller of W_ih and XP (a pass over XP took 2-12 ms at B = 128,
    T = 200). With `leave_bias` the bias pass is left to the fused kernel, which adds the
    returned (G*H,) bias (scaled) where its gate math reads XP; the bias returned is otherwise
    None. XP is written into `scratch`'s buffer when one is given. `gemm(xs, w, scale, out)`:
    the product xs (w scale)^T, the scale (or None) taken as it packs w; NumPy's matmul when
    None (kernels.own_projection)."""
    T, B, D = xs.shape
    own = gemm is not None
    on_w = scale is not None and (T * B >= D or own)
    w, b = kernels.folded_input(cell, p, scale if on_w and not own else None)   # (G*H, D), (G*H,)
    out = None if scratch is None else scratch.take(T * B * w.shape[0], xs.dtype)
    out = None if out is None else out.reshape(T * B, -1)
    if own:                                                        # no scaled copy of W_ih
        XP = gemm(flat(xs), w, scale, out)                         # (T*B, G*H)
        b = None if b is None or scale is None else b * scale
    else:
        XP = np.matmul(flat(xs), w.T, out=out)                     # (T*B, G*H)
    if scale is not None and not on_w:
        XP *= scale
        b = None if b is None else b * scale                       # a power of two: exact
    if b is not None and not leave_bias:
        XP += b
        b = None
    return XP.reshape(T, B, -1), b


def scan_forward(cell: Cell, p: CellParams, x: np.ndarray, carry: Carry,
                 lengths: np.ndarray | None = None, reverse: bool = False,
                 keep_cache: bool = True, noise: Noise | None = None,
                 scratch: Scratch | None = None,
                 chunk_bytes: int = CHUNK_BYTES) -> tuple[np.ndarray, Carry, ScanCache | None]:
    """Run `cell` over x (T, B, D) from `carry`; returns outputs (T, B, R), final carry, cache.
    `noise`: dropout masks and zoneout (training) or zoneout's expectation (evaluation).
    `scratch`: where a fused call writes its input projections (reused between calls: fresh
    pages can cost more than the GEMM at B = 128, T = 200, see Scratch). They go back to it at
    the end of a call that keeps no cache, or, when the cache keeps them (the LSTM's and GRU's
    gates), after the backward that spends it (scan_backward with the same scratch).
    `chunk_bytes`: a fused call that keeps no cache projects its input in chunks of steps of at
    most this size (one chunk's projections live at a time, not the whole sequence's)."""
    T, B, _ = x.shape
    order = reverse_order(lengths, T, B) if reverse else None
    xs = gather_time(x, order)                                     # (T, B, D) processing order
    if noise is not None and noise.x_mask is not None:
        xs = xs * noise.x_mask                                     # one input mask for all steps
    noise = with_schedule(cell, noise, T)
    mask = step_mask(lengths, T)
    padded = None if mask is None else ~mask.all(axis=(1, 2))     # (T,) steps needing a mask
    # the path (rnnlab.backends.choose): a fused kernel's loop, or the reference steps below
    path = None if noise is not None else kernels.path_of(
        cell, T, B, x.dtype, keep_cache, contiguous=all(c.dtype == x.dtype for c in carry),
        strided_weights=kernels.strided(p.w_hh))
    if path is not None and path.pad:                              # the packed loops at Hp units
        return _padded_forward(cell, p, x, carry, lengths, reverse, keep_cache, scratch, chunk_bytes, path.pad)
    fused = path is not None and path.family is not None
    scale = kernels.input_scale(cell, x.dtype) if fused else None
    # XP's memory comes back to the scratch: at the end of an inference call, or after the
    # backward that spends the gates written over it; the RNN's training XP is freed after its
    # forward, as before (kept in the scratch through the backward, it would raise the peak)
    reuse = scratch if fused and (not keep_cache or kernels.saves_projections(path)) else None
    K = max(1, chunk_bytes // max(1, B * p.w_ih.shape[0] * x.dtype.itemsize))   # steps a chunk
    if fused and not keep_cache and K < T:
        Y, final = _inference_in_chunks(cell, p, xs, carry, mask, padded, scale, reuse, K)
        return gather_time(Y, order), final, None
    gemm = kernels.own_projection(path) if fused else None
    XP, bias = input_projection(cell, p, xs, scale, fused, reuse, gemm)  # (T, B, G*H): one GEMM
    kern = kernels.forward_kernel(cell, p, XP, carry, keep_cache, bias, path=path) if fused else None
    if kern is not None:                                           # the fused path
        kern.run(mask, padded)
        Y = kern.outputs()                                         # (T, B, R)
        Y = gather_time(Y if mask is None else Y * mask, order)    # padded steps output zeros
        final = kern.final()
        free = reuse is not None and not any(np.may_share_memory(XP, a) for a in (Y,) + final)
        if not keep_cache:
            if free:
                reuse.give(XP)                                     # nothing returned reads it
            return Y, final, None
        caches = kern.caches()
        lent = XP if free and any(np.may_share_memory(XP, a) for a in caches) else None
        return Y, final, ScanCache(x=xs, caches=caches, mask=mask, padded=padded, order=order, lent=lent)
    Y = np.empty((T, B, cell.output_size), dtype=x.dtype)          # (T, B, R)
    caches = []
    h_mask = None if noise is None else noise.h_mask
    for t in range(T):
        if h_mask is not None and getattr(cell, "masks_recurrent_reads", False):
            new, cache = cell.step_forward(p, XP[t], carry, h_mask)  # the cell masks its matmuls
        else:
            read = carry if h_mask is None else (carry[0] * h_mask,) + carry[1:]  # dropped h
            new, cache = cell.step_forward(p, XP[t], read)
        keep = keep_weights(noise, mask, padded, t, carry)
        if keep is not None:                                       # held rows, zoned-out units
            new = tuple(k * o + (1 - k) * n for k, n, o in zip(keep, new, carry))
        if padded is not None and padded[t]:
            np.multiply(new[0], mask[t], out=Y[t])                 # padded steps output zeros
        else:
            Y[t] = new[0]
        carry = new
        if keep_cache:
            caches.append(cache)
    Y = gather_time(Y, order)
    if not keep_cache:
        return Y, carry, None
    stacked = tuple(np.stack(field) for field in zip(*caches))        # each (T, B, .)
    return Y, carry, ScanCache(x=xs, caches=stacked, mask=mask, padded=padded, order=order, noise=noise)


def _padded_forward(cell, p, x, carry, lengths, reverse, keep_cache, scratch, chunk_bytes, Hp):
    """scan_forward with H padded to Hp (kernels/_pad.py), its outputs and carries cut back."""
    grown, q = _pad.padded_cell(cell, Hp), _pad.pad_params(cell, p, Hp)
    Y, final, sc = scan_forward(grown, q, x, tuple(_pad.pad_units(c, Hp) for c in carry), lengths,
                                reverse, keep_cache, None, scratch, chunk_bytes)
    H = cell.hidden_size
    if sc is not None:
        sc.grown = (grown, q)
    return _pad.cut_units(Y, H), tuple(_pad.cut_units(c, H) for c in final), sc


def _inference_in_chunks(cell, p, xs, carry, mask, padded, scale, scratch, K):
    """The fused inference loop over chunks of K steps: each chunk's input projections (into
    the scratch's one buffer), then its steps from the carry the last chunk left. Returns the
    outputs (T, B, R), padded steps zeroed, in processing order, and the final carry."""
    T, B, _ = xs.shape
    HS = np.empty((T + 1, B, cell.output_size), dtype=xs.dtype)   # h carries: HS[1:] the outputs
    HS[0] = carry[0]
    path = kernels.path_of(cell, K, B, xs.dtype, False, contiguous=all(c.dtype == xs.dtype for c in carry),
                           strided_weights=kernels.strided(p.w_hh))           # one for every chunk
    for k0 in range(0, T, K):
        k1 = min(T, k0 + K)
        XP, bias = input_projection(cell, p, xs[k0:k1], scale, True, scratch,
                                    kernels.own_projection(path))  # (K, B, G*H)
        kern = kernels.forward_kernel(cell, p, XP, (HS[k0],) + carry[1:], False, bias, path=path,
                                      hs=HS[k0:k1 + 1])           # writes HS[k0+1 .. k1]
        kern.run(None if mask is None else mask[k0:k1], None if padded is None else padded[k0:k1])
        carry = (HS[k1],) + tuple(np.array(c) for c in kern.final()[1:])   # c: the kernel's goes
        if scratch is not None:
            scratch.give(XP)                                       # the next chunk's projections
        XP = kern = None                                           # one chunk's live at a time
    carry = (HS[T].copy(),) + carry[1:]
    Y = HS[1:]
    if mask is not None:
        Y *= mask                                                  # padded steps output zeros
    return Y, carry


def scan_backward(cell: Cell, p: CellParams, sc: ScanCache, dY: np.ndarray, dcarry: Carry,
                  on_state_grad: Callable[[int, Carry], None] | None = None,
                  scratch: Scratch | None = None) -> tuple[np.ndarray, Carry, CellParams]:
    """Gradients of the loss through the scan: dx (T, B, D), d initial carry, parameter grads.

    `on_state_grad(t, dstate)`, if given, sees dL/d(state after step t) for every t (in
    processing order): the chain-rule product through time that the tutorials derive.
    `scratch`: where the forward's input projections go back once this call has spent them."""
    if sc.grown is not None:                                       # the forward ran padded
        return _padded_backward(cell, sc, dY, dcarry, on_state_grad, scratch)
    return _scan_backward(cell, p, sc, dY, dcarry, on_state_grad, scratch)


def _scan_backward(cell, p, sc: ScanCache, dY, dcarry, on_state_grad, scratch):
    if sc.spent:
        raise OrderError("backward: this forward call's saved activations were used up by an "
                           "earlier backward (the LSTM's and GRU's gates become their gradients "
                           "to save memory); run forward again")
    dY = gather_time(dY, sc.order)                                 # into processing order
    fused = on_state_grad is None and sc.noise is None
    kern = kernels.backward_kernel(cell, p, sc.caches, dcarry, sc.x) if fused else None
    if kern is not None:                                           # the fused path
        if sc.mask is not None:
            dY = dY * sc.mask                                      # padded outputs are constants
        kern.run(dY, sc.mask, sc.padded)
        dcarry = kern.dcarry()
        sc.spent = getattr(kern, "consumes_cache", False)
        gathered = kern.gathered()                                 # RNN: added up chunk by chunk
        if gathered is not None:
            dx, grads = gathered
            return gather_time(dx, sc.order), dcarry, grads
        dXP, drecs = kern.dxp(), kern.drecs()
    else:
        dXP, drecs, dcarry = _reference_backward(cell, p, sc, dY, dcarry, on_state_grad)
    grads = CellParams(w_ih=flat(dXP).T @ flat(sc.x), w_hh=None)   # (G*H, D); the cell fills w_hh
    if p.b_ih is not None:
        grads.b_ih = flat(dXP).sum(0)
    cell.recurrent_grads(p, sc.caches, drecs, grads)
    dx = (flat(dXP) @ p.w_ih).reshape(sc.x.shape)                  # (T, B, D): one GEMM
    if sc.noise is not None and sc.noise.x_mask is not None:
        dx *= sc.noise.x_mask                                      # back through the input mask
    if scratch is not None and sc.spent and sc.lent is not None:
        out = (dx, *dcarry, *(a for _, a in grads.items()))
        if not any(np.may_share_memory(sc.lent, a) for a in out):
            scratch.give(sc.lent)                                  # spent: nothing reads it now
        sc.lent = None
    return gather_time(dx, sc.order), dcarry, grads


def _padded_backward(cell, sc: ScanCache, dY, dcarry, on_state_grad, scratch):
    """scan_backward of a padded forward: the gradients padded in, the real units' cut out."""
    (grown, q), H, Hp = sc.grown, cell.hidden_size, sc.grown[0].hidden_size
    hook = None if on_state_grad is None else (
        lambda t, dc: on_state_grad(t, tuple(_pad.cut_units(d, H) for d in dc)))
    dx, d0, g = _scan_backward(grown, q, sc, _pad.pad_units(dY, Hp),
                               tuple(_pad.pad_units(d, Hp) for d in dcarry), hook, scratch)
    return dx, tuple(_pad.cut_units(d, H) for d in d0), _pad.unpad_grads(cell, g)


def _reference_backward(cell, p, sc: ScanCache, dY, dcarry, on_state_grad):
    """The readable loop over the cell's own step_backward; returns dXP, stacked drecs, dcarry0."""
    T = dY.shape[0]
    dXP = np.empty((T,) + dY.shape[1:2] + (p.w_ih.shape[0],), dtype=dY.dtype)  # (T, B, G*H)
    drecs = []
    h_mask = None if sc.noise is None else sc.noise.h_mask
    if getattr(cell, "masks_recurrent_reads", False):
        h_mask = None                                              # the cell's backward applies it
    for t in range(T - 1, -1, -1):
        cache = tuple(field[t] for field in sc.caches)
        dy = dY[t] * sc.mask[t] if sc.padded is not None and sc.padded[t] else dY[t]
        dc = (dcarry[0] + dy,) + dcarry[1:]                        # a padded output is a constant
        if on_state_grad is not None:
            on_state_grad(t, dc)
        keep = keep_weights(sc.noise, sc.mask, sc.padded, t, dc)
        din = dc if keep is None else tuple((1 - k) * d for k, d in zip(keep, dc))
        dxp, dprev, drec = cell.step_backward(p, din, cache)
        if h_mask is not None:
            dprev = (dprev[0] * h_mask,) + dprev[1:]               # the step read the dropped h
        if keep is not None:
            dprev = tuple(dp + k * d for dp, k, d in zip(dprev, keep, dc))  # kept values pass on
        dXP[t] = dxp
        drecs.append(drec)
        dcarry = dprev
    drecs.reverse()
    return dXP, tuple(np.stack(field) for field in zip(*drecs)), dcarry
