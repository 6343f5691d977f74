"""Which implementation of the time loop runs: one ladder of backends, chosen in one place.

    reference  the cells' readable step functions (`rnnlab.cells`): every cell, every option
    numpy      the fused kernels (`rnnlab.kernels`) with their NumPy passes
    compiled   the fused kernels with their gate math and whole loops compiled by numba,
               calling NumPy's BLAS (`pip install rnnlab[jit]`)
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
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from . import _checks as check
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
        raise ConfigError(f"{what}: {name!r} needs numba (pip install rnnlab[jit]); installed here: "
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


@dataclass(frozen=True)
class Plan:
    """What a call runs: the backend in force, and the loop of its forward and (in training)
    its backward, in words."""
    backend: str
    forward: str
    backward: str | None

    def __str__(self) -> str:
        back = f"; backward: {self.backward}" if self.backward else ""
        return f"backend {self.backend!r}: forward: {self.forward}{back}"


def plan(cell, B: int, dtype, training: bool, streaming: bool = False) -> Plan:
    """The path a call of `cell` over a batch of B rows takes, decided as the call decides it
    (the kernels' own predicates, for contiguous input): the reference steps where the cell
    has no fused kernel or the backend is "reference", else the fused kernel family's loop
    (rnnlab/kernels: packed loops, compiled loops, or steps from Python)."""
    from . import kernels
    level = current()
    family = kernels._family(cell)
    if family is None:
        why = "the backend" if level == "reference" else f"no fused kernel for {cell!r}"
        loop = f"reference steps ({why})"
        return Plan(level, loop, loop if training else None)
    forward, backward = family.plan(cell, B, np.dtype(dtype), training, streaming)
    return Plan(level, forward, backward if training else None)
