"""How a call picks its path: the backend in force (a ladder of levels), then, in `choose`, the
loop its forward and backward run. Everything that decides a path is in this file; the kernels
(rnnlab.kernels) run the Path they are given.

    reference  the cells' readable step functions (`rnnlab.cells`): every cell, every option
    numpy      the fused kernels (`rnnlab.kernels`) with their NumPy passes
    compiled   the fused kernels with their gate math and whole loops compiled by numba,
               calling NumPy's BLAS (numba, a dependency of rnnlab)
    packed     as compiled, plus rnnlab's own packed-GEMM loops on numba's threads where
               they apply (float32, H a multiple of 16 from 64 to 1024)
    auto       the highest level installed: packed with numba, numpy without

A level runs its own kernels where they apply and the levels below it elsewhere: a peephole
LSTM runs the reference steps at every level, a float64 LSTM the compiled loops at "packed".
Every level computes the same thing; the tests check each against the reference.

The level in force, in order of precedence: a network's own `backend=` (other than "auto"),
the innermost `with rnnlab.backend(name):` (a context variable, so scoped to the thread or
asyncio task that opened it), the environment variable RNNLAB_BACKEND (read once, at the first
call that asks), and "auto".

Within a level, `choose` picks the fastest loop that applies, top down:
    packed     one compiled loop on rnnlab's packed GEMM and numba's threads: float32, H a
               multiple of 16 from 64, inside rnnlab.threads.shared_pool() (see `fits`)
    blas       one compiled loop calling NumPy's cblas_?gemm each step (LSTM, B >= 4)
    own        one compiled loop with its own small matmul (LSTM, a small batch)
    steps      the fused kernel step by step from Python, gate math compiled or NumPy passes
    reference  the cell's own step functions (cells without a fused kernel, or the level)
The measurements behind each threshold are in docs/design.md ("Choosing a loop").
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import _checks as check
from .cells.gru import GRUCellConfig
from .cells.lstm import LSTMCellConfig
from .cells.rnn import RNNCellConfig
from .errors import ConfigError

LEVELS = ("reference", "numpy", "compiled", "packed")
BACKENDS = ("auto",) + LEVELS

_scoped: ContextVar[str] = ContextVar("rnnlab_backend", default="auto")
_environment: list[str] = []                   # RNNLAB_BACKEND, read once


_installed: list[bool] = []                     # whether numba is there, looked up once


def numba_installed() -> bool:
    """Whether the compiled levels can run (numba importable; found without importing it)."""
    if not _installed:
        import importlib.util
        _installed.append(importlib.util.find_spec("numba") is not None)
    return _installed[0]


def highest() -> str:
    """The level "auto" stands for on this installation."""
    return "packed" if numba_installed() else "numpy"


def validate(name: object, what: str = "backend") -> str:
    """`name` if it is a backend this installation can run, else a ConfigError naming it."""
    check.choice(name, what, BACKENDS)
    if name in ("compiled", "packed") and not numba_installed():
        raise ConfigError(f"{what}: {name!r} needs numba (a dependency of rnnlab: pip install numba); installed here: "
                          "'reference', 'numpy'")
    return name  # type: ignore[return-value]


def _from_environment() -> str:
    if not _environment:
        _environment.append(validate(os.environ.get("RNNLAB_BACKEND", "auto") or "auto", "RNNLAB_BACKEND"))
    return _environment[0]


@contextmanager
def backend(name: str) -> Iterator[str]:
    """`with rnnlab.backend("reference"): ...` runs every network call inside on that level
    (a network's own `backend=` other than "auto" still wins). Scoped: the previous choice
    comes back when the block ends, and other threads are not affected."""
    token = _scoped.set(validate(name))
    try:
        yield name
    finally:
        _scoped.reset(token)


def current(preference: str = "auto") -> str:
    """The level in force for a network whose own preference is `preference`."""
    name = preference if preference != "auto" else _scoped.get()
    if name == "auto":
        name = _from_environment()
    return highest() if name == "auto" else name


_RANK = {name: rank for rank, name in enumerate(LEVELS)}


def allows(level: str) -> bool:
    """Whether the level in force includes `level`'s kernels."""
    return _RANK[current()] >= _RANK[level]


class Machine(NamedTuple):
    """What this process can run now, as rnnlab.kernels.machine() finds it: the compiled gate
    math (numba, level >= compiled), NumPy's cblas_?gemm for which dtypes, and the packed loops
    (level packed, inside shared_pool(), OpenBLAS's jobs on numba's threads or on one)."""
    compiled: bool = False
    blas: frozenset = frozenset()              # dtype names, e.g. {"float32", "float64"}
    packed: bool = False


@dataclass(frozen=True)
class Path:
    """What a call runs: the backend in force; its forward's and (in training) its backward's
    loop; for packed loops, whether threads split the batch's rows or the hidden units, and
    whether the input projection runs on the packed GEMM too; the cell family's kernels."""
    backend: str
    family: str | None                         # "lstm", "gru", "rnn", or None: reference
    forward: str                               # packed, blas, own, steps or reference
    backward: str | None = None
    split: str | None = None                   # packed: "rows" or "units"
    in_place: bool = False                     # packed, units: W_hh read as stored (B = 1)
    projection: str = "numpy"                  # or "packed": x W_ih^T on the packed GEMM
    gate_math: str = "numpy"                   # "compiled" where numba runs it
    pad: int = 0                               # packed at this many hidden units (kernels/_pad.py)
    why: str = ""

    def __str__(self) -> str:
        def loop(name: str) -> str:
            if name == "packed":
                return f"packed, {self.split} split"
            if name == "steps":
                return f"steps from Python, {'compiled gate math' if self.gate_math == 'compiled' else 'NumPy passes'}"
            return {"blas": "compiled loop, NumPy's BLAS", "own": "compiled loop, own matmul",
                    "reference": "reference steps"}[name]
        back = f"; backward: {loop(self.backward)}" if self.backward else ""
        why = f" ({self.why})" if self.why else ""
        why += f" (H padded to {self.pad})" if self.pad else ""
        return f"backend {self.backend!r}: forward: {loop(self.forward)}{back}{why}"


Plan = Path                                    # net.plan() returns the Path a call takes

_skipped: ContextVar[frozenset] = ContextVar("rnnlab_skipped_loops", default=frozenset())


@contextmanager
def without(*loops: str) -> Iterator[None]:
    """Scoped: `choose` passes over the loops named ("packed", "blas", "own") inside the block,
    so the next one down the ladder runs. For tests and benchmarks that compare loops."""
    for name in loops:
        check.choice(name, "loop", ("packed", "blas", "own"))
    token = _skipped.set(_skipped.get() | frozenset(loops))
    try:
        yield
    finally:
        _skipped.reset(token)


def family(cell) -> str | None:
    """The fused kernel family of a cell config, or None (peephole, CIFG or projected LSTM,
    layer-norm, clockwork, depth-gated: the reference steps run)."""
    if isinstance(cell, LSTMCellConfig):
        return None if (cell.proj_size or cell.peephole or cell.cifg) else "lstm"
    if isinstance(cell, GRUCellConfig):
        return "gru"
    return "rnn" if isinstance(cell, RNNCellConfig) else None


# --- the thresholds (measured on 2-core AVX-512 machines; docs/design.md has the tables) ---

WIDEST = 1024                                  # the largest H a packed loop takes


def fits(H: int, dtype, machine: Machine, widest: int = 512) -> bool:
    """What every packed loop needs: float32, H a multiple of 16 from 64 (a shorter K is too
    short for the tiles) to `widest`, and the packed loops usable now. Above 512 the LSTM
    splits units (`wide`); the GRU and RNN keep rows to 1024."""
    return machine.packed and np.dtype(dtype) == np.float32 and H % 16 == 0 and 64 <= H <= widest


def lstm_packed(B: int, H: int, dtype, training: bool, machine: Machine) -> bool:
    """The LSTM's packed loops: from H = 128 at any batch; at H = 64 in training from B = 2, in
    inference past a tiny problem (B H > 512, where the one-thread `own` loop is faster); and
    wide (H 528-1024), its units split."""
    if not fits(H, dtype, machine):
        return wide(H, dtype, machine)
    return H >= 128 or (B > 1 if training else B * H > 512)


def wide(H: int, dtype, machine: Machine) -> bool:
    """H > 512: the rows split would stream all of W_hh each step; the units split halves it."""
    return H > 512 and fits(H, dtype, machine, widest=WIDEST)


def units_split(B: int, H: int) -> bool:
    """Split hidden units between the threads, not rows: a batch of one, or wide. At H <= 512
    from B = 8 the rows split read 0.76-0.97x the units split's time."""
    return B == 1 or H > 512


def in_place(B: int, H: int) -> bool:
    """The units-split forward at B = 1 reads W_hh as stored, 16 rows at a time, instead of
    packing it (0.74-0.94x); not at H = 1024, whose rows 4 KB apart share one L1 set."""
    return B == 1 and H < 1024


def projects_packed(T: int, B: int, H: int) -> bool:
    """The LSTM's input projection on the packed GEMM (with its packed loop) from enough rows
    T B that packing W_ih pays: any at H <= 256, 128 at H <= 512, 1024 above."""
    return T * B >= (0 if H <= 256 else 128 if H <= 512 else 1024)


def own_loop(B: int, H: int) -> bool:
    """The LSTM's compiled loop with its own matmul: H <= 256 at B <= 4 or B H <= 512, where a
    BLAS call's 3-5 us overhead outweighs the product (0.44-0.92x the BLAS steps' time)."""
    return H <= 256 and (B <= 4 or B * H <= 512)


def blas_loop(B: int, dtype, machine: Machine) -> bool:
    """The compiled loop calling NumPy's cblas_?gemm: from B = 4 (at B = 1 NumPy's matmul runs a
    GEMV, 3-7x faster than a GEMM call; at B = 2 the loop read 1.02-1.11x the steps)."""
    return machine.compiled and np.dtype(dtype).name in machine.blas and B >= 4


def choose(cell, T: int, B: int, dtype, training: bool, streaming: bool, level: str,
           machine: Machine, contiguous: bool = True, strided_weights: bool = False) -> Path:
    """The path of a call of `cell` over x (T, B, .) of `dtype`: pure, from its arguments and
    the loops `without` skips. `streaming`: one step at a time (rnnlab.Stream; no whole-sequence
    loop); `contiguous`: the input projections and carries are C-contiguous in one dtype;
    `strided_weights`: W_hh is neither C- nor F-contiguous (the BLAS loop reads it in place).
    Remembered (it is pure): a layer call asks it once forward and once backward."""
    fam = family(cell) if _RANK[level] >= _RANK["numpy"] else None
    if fam is None:
        why = "the backend" if level == "reference" else f"no fused kernel for {type(cell).__name__}"
        return Path(level, None, "reference", "reference" if training else None, why=why)
    args = (T, B, np.dtype(dtype), training, streaming, level, machine, contiguous, strided_weights, _skipped.get())
    path = _choose(cell, fam, *args)
    Hp = padding(cell, path, *args[2:])
    if Hp:                                     # the packed loops at Hp units (kernels/_pad.py)
        grown = _choose(dataclasses.replace(cell, hidden_size=Hp), fam, *args)
        if grown.forward == "packed" and (not training or grown.backward == "packed"):
            return dataclasses.replace(grown, pad=Hp)
    return path


def padding(cell, path: Path, dtype, training, streaming, level, machine, contiguous,
            strided_weights, skip) -> int:
    """The hidden size a call would run the packed loops at, padded to a multiple of 16, or 0:
    where the loops do not take H as it is (not a multiple of 16) and would take the padded
    one. An LSTM at H = 650, B = 20, T = 35 (training) took 111 ms on the BLAS loop against
    83 ms packed at H = 640 (torch 90)."""
    H = cell.hidden_size
    if path.forward == "packed" or streaming or not contiguous or H % 16 == 0 or "packed" in skip:
        return 0
    Hp = -(-H // 16) * 16
    return Hp if level == "packed" and fits(Hp, dtype, machine, widest=WIDEST) else 0


@functools.lru_cache(maxsize=4096)
def _choose(cell, fam, T, B, dtype, training, streaming, level, machine, contiguous,
            strided_weights, skip) -> Path:
    compiled = machine.compiled and _RANK[level] >= _RANK["compiled"]
    machine = machine._replace(compiled=compiled, packed=machine.packed and level == "packed")
    H = cell.hidden_size

    def loop(backward: bool) -> tuple[str, str | None]:       # (loop, packed split)
        if streaming and not backward or not contiguous:
            return "steps", None                              # a stream steps from Python
        packed = "packed" not in skip
        if fam != "lstm":
            rows = B > 1 and fits(H, dtype, machine, widest=WIDEST)
            return ("packed", "rows") if packed and rows and (fam == "rnn" or cell.reset_after) else ("steps", None)
        if packed and lstm_packed(B, H, dtype, training or backward, machine):
            return "packed", "units" if units_split(B, H) else "rows"
        own = compiled and own_loop(B, H) and "own" not in skip
        blas = blas_loop(B, dtype, machine) and "blas" not in skip and not (strided_weights and not backward)
        if blas and (backward or not own):                   # the backward: BLAS from B = 4
            return "blas", None
        return ("own" if own else "steps"), None
    forward, split = loop(False)
    backward, back_split = loop(True) if training else (None, None)
    packed = forward == "packed"
    return Path(level, fam, forward, backward, split or back_split,
                in_place=packed and split == "units" and in_place(B, H),
                projection="packed" if packed and fam == "lstm" and projects_packed(T, B, H) else "numpy",
                gate_math="compiled" if compiled else "numpy")
