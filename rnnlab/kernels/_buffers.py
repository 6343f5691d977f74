"""What every fused kernel shares: carry buffers and the padded-step rules of the time loop.

Carries live in (T+1, B, .) arrays, S[0] the initial carry and S[t+1] the carry after step t,
so the reference caches `h_prev` and `h_new` are the views S[:-1] and S[1:] (no copies).
A padded step (rows with `hold` True) keeps the old carry; backwards, those rows pass the
carry gradient through unchanged and feed nothing into the step.
"""

from __future__ import annotations

import threading

import numpy as np


def carry_buffer(T: int, first: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(T+1, B, .) carries, S[0] = first: a new array, or `out` (whose row 0 may hold first
    already: the chunks of one inference call share one buffer of outputs)."""
    S = np.empty((T + 1,) + first.shape, dtype=first.dtype) if out is None else out
    if out is None or S[0].ctypes.data != first.ctypes.data:
        S[0] = first
    return S


class Scratch:
    """Reusable buffers for a network's input projections, which no output keeps: take() hands
    out the smallest kept buffer that is large enough, or a new one; give() keeps a's memory,
    up to `capacity` buffers (the smallest goes first when there are more).

    Why: a fresh 100 MB array is new pages the kernel must map and zero on first touch. On this
    machine kind (a VM, transparent huge pages on madvise, which NumPy asks for) an LSTM call at
    H = 256, B = 128, T = 200 right after a training call spent ~0.3 s of system time there:
    397 ms a call against 187 with the projection written into a reused buffer (median of 8,
    interleaved). Thread-safe: a buffer is out to one call at a time; a call that finds none
    kept gets a new one. A deepcopy or a pickle starts empty; clear() lets the memory go."""

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = capacity
        self._bufs: list[np.ndarray] = []                      # each (n,) uint8
        self._lock = threading.Lock()

    def take(self, n: int, dtype) -> np.ndarray:
        """A (n,) array of `dtype`, uninitialised."""
        dtype = np.dtype(dtype)
        need = n * dtype.itemsize
        with self._lock:
            fits = [i for i, b in enumerate(self._bufs) if b.nbytes >= need]
            buf = self._bufs.pop(min(fits, key=lambda i: self._bufs[i].nbytes)) if fits else None
        if buf is None:
            return np.empty(n, dtype=dtype)
        return buf[:need].view(dtype)

    def give(self, a: np.ndarray) -> None:
        """Keep a's memory for a later take() (a must no longer be read or written)."""
        root = a
        while isinstance(root.base, np.ndarray):
            root = root.base
        if not root.flags.c_contiguous or not root.flags.writeable or root.base is not None:
            return                                             # not an array that owns its memory
        flat = root.reshape(-1).view(np.uint8)                 # (nbytes,)
        with self._lock:
            if any(np.may_share_memory(flat, b) for b in self._bufs):
                return                                         # kept already: never hand it out twice
            self._bufs.append(flat)
            if len(self._bufs) > self.capacity:                # the smallest goes
                del self._bufs[min(range(len(self._bufs)), key=lambda i: self._bufs[i].nbytes)]

    def clear(self) -> None:
        """Let go of the kept buffers (a call that has one out still gives it back after)."""
        with self._lock:
            self._bufs = []

    @property
    def nbytes(self) -> int:
        """Bytes kept for later take() calls."""
        return sum(b.nbytes for b in self._bufs)

    def __deepcopy__(self, memo) -> Scratch:
        return Scratch(self.capacity)

    def __reduce__(self):
        return Scratch, (self.capacity,)                       # pickled empty, as copied


def step_weights(w: np.ndarray, B: int, steps: float) -> np.ndarray:
    """W^T (H, G) for the steps' GEMM h W^T, from w (G, H): a contiguous copy when B >= 2 and
    the kernel will run 16 or more steps (inf for a stream) and the compiled transpose is there,
    else the transposed view.

    OpenBLAS repacks the weight on every call, and packs a contiguous W^T faster than it reads
    the view: one step took 0.15-1.0x the time with the copy at B = 2..128, H = 64..1024,
    G = 1, 3, 4 (2.4 vs 3.3 ms at B = 32, H = 1024, G = 4; 0.23 vs 0.51 ms at B = 8, H = 512;
    two G = 1 points at B = 2 read 1.25x and 2x, of 16 and 1 us), and 1.2x at B = 1, H >= 512
    (a GEMV then reads W in place). The copy itself costs 0.09-0.85 ms at H = 256 (warm, or
    right after the input projection's GEMM) and ~5 ms at H = 1024 (G = 4); whole calls of
    LSTM, GRU and RNN at H = 64-1024, B = 32-128, T = 50 still took 0.79-0.97x the time of
    the view's, but for two: LSTM and GRU at H = 64, B = 128 (1.05x, 1.20x)."""
    from . import _jit  # compiled code loads at first use
    if _jit.enabled() and B >= 2 and steps >= 16:
        return _jit.transposed(w)
    return w.T


def held_rows(mask, padded, t: int) -> np.ndarray | None:
    """(B, 1) True for the rows past their length at step t, or None when there are none."""
    return None if padded is None or not padded[t] else ~mask[t]


def held_steps(mask, T: int) -> np.ndarray:
    """(T, B) True where a row is past its length at step t, for the compiled loops; (T, 0)
    when no row is (mask None)."""
    return np.zeros((T, 0), bool) if mask is None else ~mask[..., 0]


def hold_rows(hold: np.ndarray | None, new: tuple, old: tuple) -> None:
    """Padded rows keep their previous carry (forward) or pass their gradient on (backward)."""
    if hold is not None:
        for n, o in zip(new, old):
            np.copyto(n, o, where=hold)


def joined(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The (T, B, Ga + Gb) array whose last-axis columns are a then b (views into it, as a fused
    forward leaves its gates), or None when a and b are not laid out so."""
    root = a.base
    if root is None or b.base is not root or not root.flags.c_contiguous:
        return None
    T, B, Ga = a.shape
    G = Ga + b.shape[-1]
    if root.size != T * B * G or b.shape[:2] != (T, B):
        return None
    whole = root.reshape(T, B, G)
    first, second = whole[..., :Ga], whole[..., Ga:]
    same = lambda u, v: u.ctypes.data == v.ctypes.data and u.strides == v.strides
    return whole if same(first, a) and same(second, b) else None


def masked(hold: np.ndarray | None, ds: tuple) -> tuple:
    """The step sees zero carry gradient in padded rows."""
    return ds if hold is None else tuple(np.where(hold, 0, d) for d in ds)


class ForwardSteps:
    """What the fused forward kernels share: `carries` are (T+1, B, .) buffers, h first."""

    carries: tuple
    saves_projections = False  # whether caches() keeps XP (the gates are written over it)

    def run(self, mask: np.ndarray | None, padded: np.ndarray | None) -> None:
        """Every step; mask (T, B, 1) True where a step is valid and padded (T,) True at steps
        with rows past their length, or both None."""
        for t in range(self.carries[0].shape[0] - 1):
            self.step(t, held_rows(mask, padded, t))

    def outputs(self) -> np.ndarray:
        return self.carries[0][1:]                             # (T, B, H): h after every step

    def final(self):
        return tuple(S[-1] for S in self.carries)


class BackwardSteps:
    """What the fused backward kernels share: `d` holds dL/d(carry) of the step about to run,
    `nxt` receives the step's d(previous carry), DA the pre-activation gradients (= dXP)."""

    DA: np.ndarray
    d: tuple
    nxt: tuple

    def run(self, dY: np.ndarray, mask: np.ndarray | None, padded: np.ndarray | None) -> None:
        """Every step, last first; dY (T, B, R) the output gradients, zero at padded steps;
        mask and padded as in ForwardSteps.run."""
        for t in range(dY.shape[0] - 1, -1, -1):
            self.step(t, dY[t], held_rows(mask, padded, t))

    def finish_step(self, hold: np.ndarray | None) -> None:
        hold_rows(hold, self.nxt, self.d)                      # padded rows pass theirs on
        self.d, self.nxt = self.nxt, self.d

    def gathered(self):
        """(dx, parameter grads) when the kernel added them up during its loop, else None: the
        loop then does those GEMMs over all steps from dxp() and drecs()."""

    def dxp(self) -> np.ndarray:
        return self.DA

    def drecs(self):
        return (self.DA,)

    def dcarry(self):
        return self.d
