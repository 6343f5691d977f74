"""Shared test helpers: finite-difference checks of cells and networks in float64, a fresh
interpreter for what is decided at import, and a spy on the LSTM's compiled backward loop."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
from numpy.testing import assert_allclose

from rnnlab.cells.base import Cell
from rnnlab.init import init_cell
from rnnlab.testing import numeric_grad

RTOL, ATOL = 1e-6, 1e-8  # central differences, eps 1e-6: round-off ~1e-10 * |loss|
ALL_ENTRIES_UP_TO = 16    # a parameter this small is checked entry by entry; a larger one on a sample


def check_close(analytic, numeric, what):
    assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=what)


def covering_entries(shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Entries of an array of `shape` that touch every index of every axis at least once (each
    row, each column, ...), the other coordinates drawn at random: a gate's block of rows, one
    unit or one embedding row whose gradient is wrong is always among them; one wrong entry
    alone only by chance (other tests draw other entries)."""
    picked = set()
    for axis, n in enumerate(shape):
        for i in range(n):
            idx = [int(rng.integers(m)) for m in shape]
            idx[axis] = i
            picked.add(tuple(idx))
    return sorted(picked)


def check_parameter(loss, a: np.ndarray, analytic: np.ndarray, what: str, rng: np.random.Generator) -> None:
    """A parameter's gradient against central differences: every entry of a small array, the
    covering entries (above) of a large one; the loss is the slow part, once per entry."""
    if a.size <= ALL_ENTRIES_UP_TO:
        check_close(analytic, numeric_grad(loss, a), what)
        return
    at = covering_entries(a.shape, rng)
    check_close(np.asarray(analytic)[tuple(np.array(at).T)], numeric_grad(loss, a, at=at),
                f"{what} ({len(at)} of {a.size} entries)")


def gradcheck_step(cell: Cell, B: int, D: int = 3, seed: int = 0, bias: bool = True) -> None:
    """Check one cell's step_backward + recurrent_grads against finite differences."""
    rng = np.random.default_rng(seed)
    p = init_cell(cell, D, bias=bias, dtype=np.float64, rng=rng)
    for _, a in p.items():                        # larger weights: gates away from linear region
        a *= 3.0
    xp = rng.standard_normal((B, cell.gates * cell.hidden_size))
    carry = tuple(rng.standard_normal((B, s)) for s in cell.carry_sizes())
    R = [rng.standard_normal((B, s)) for s in cell.carry_sizes()]

    def full_xp() -> np.ndarray:
        """The loop adds b_ih and the cell's folded part of b_hh to the projected input."""
        out = xp.copy()
        for b in (p.b_ih, cell.input_bias(p)):
            if b is not None:
                out += b
        return out

    def loss() -> float:
        new, _ = cell.step_forward(p, full_xp(), carry)
        return float(sum((n * r).sum() for n, r in zip(new, R)))

    xp1 = full_xp()
    xp0, carry0 = xp1.copy(), tuple(c.copy() for c in carry)
    _, cache = cell.step_forward(p, xp1, carry)
    assert np.array_equal(xp1, xp0) and all(np.array_equal(a, b) for a, b in zip(carry, carry0)), \
        "step_forward must not modify its inputs"
    dxp, dprev, drec = cell.step_backward(p, tuple(R), cache)
    grads = p.zeros_like()
    grads.b_ih = dxp.sum(0) if bias else None     # what the loop computes from dxp
    cell.recurrent_grads(p, tuple(c[None] for c in cache), tuple(d[None] for d in drec), grads)
    check_close(dxp, numeric_grad(loss, xp), "dxp")
    for k, (d, c) in enumerate(zip(dprev, carry)):
        check_close(d, numeric_grad(loss, c), f"dcarry[{k}]")
    for name, a in p.items():
        if name == "w_ih":                        # multiplies x before the step: the loop's
            continue
        check_close(getattr(grads, name), numeric_grad(loss, a), name)


def gradcheck_network(make, x, hx=None, lengths=None, seed: int = 1, dropout_seed=None) -> None:
    """Check a network's backward (inputs, initial states, every parameter) numerically."""
    m = make()
    rng = np.random.default_rng(seed)

    def forward():
        if dropout_seed is not None:
            m.rng = np.random.default_rng(dropout_seed)   # the same dropout mask every time
        return m(x, hx, lengths=lengths)

    y, st = forward()
    sts = st if isinstance(st, tuple) else (st,)
    Ry = rng.standard_normal(y.shape)
    Rs = [rng.standard_normal(s.shape) for s in sts]

    def loss() -> float:
        y, st = forward()
        sts = st if isinstance(st, tuple) else (st,)
        return float((y * Ry).sum() + sum((s * r).sum() for s, r in zip(sts, Rs)))

    forward()
    dx, dhx = m.backward(Ry, tuple(Rs) if len(Rs) == 2 else Rs[0])
    grads = m.grads
    check_close(dx, numeric_grad(loss, x), "dx")
    if hx is not None:
        hxs = hx if isinstance(hx, tuple) else (hx,)
        dhxs = dhx if isinstance(dhx, tuple) else (dhx,)
        for k, (a, d) in enumerate(zip(hxs, dhxs)):
            check_close(d, numeric_grad(loss, a), f"dhx[{k}]")
    for name, a in m.named_parameters():
        check_parameter(loss, a, grads[name], name, rng)


def gradcheck_model(model, batch, carry=None) -> None:
    """Check a model's forward_backward gradients of its mean loss, dropout masks fixed."""
    state0 = model.rng.bit_generator.state

    def loss() -> float:
        model.rng.bit_generator.state = state0
        total, n, _ = model.forward_backward(batch, carry)
        return total / n

    loss()
    grads = dict(model.named_grads())
    params = dict(model.named_parameters())
    assert set(grads) == set(params)
    rng = np.random.default_rng(0)
    for k, a in params.items():
        check_parameter(loss, a, grads[k], k, rng)


def python_output(code: str, **env: str) -> list[str]:
    """The words a fresh interpreter prints running `code`, with `env` added to the
    environment (for switches read once, at import)."""
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env),
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def backward_loop_gemms(monkeypatch) -> list:
    """The `gemm` argument of every _jit.lstm_backward_loop call from now on (None: the loop
    ran its own matmul; else NumPy's BLAS), the calls still made."""
    from rnnlab.kernels import _jit
    seen = []
    loop = _jit.lstm_backward_loop

    def spy(gemm, *args):
        seen.append(gemm)
        return loop(gemm, *args)
    monkeypatch.setattr(_jit, "lstm_backward_loop", spy)
    return seen


def ctc_collapse(path, blank=0) -> list:
    """The labels of a CTC frame path: repeats merged, blanks dropped."""
    return [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]


def ctc_brute_log_likelihood(lp, labels):
    """log p(labels) of (T, C) log-probabilities: the sum over every frame path that collapses to them."""
    T, C = lp.shape
    total = -np.inf
    for path in itertools.product(range(C), repeat=T):
        if ctc_collapse(path) == list(labels):
            total = np.logaddexp(total, sum(lp[t, c] for t, c in enumerate(path)))
    return total
