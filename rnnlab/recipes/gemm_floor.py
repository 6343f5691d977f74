"""The GEMM floor of a bench point: how long NumPy's BLAS takes for the GEMMs alone that one
call of a network makes, each GEMM in the fastest of its plain layouts, with no gate math, no
Python and no other pass over memory in between.

Where a peer's whole call is faster than this floor, rnnlab cannot match it at that point
while its GEMMs go through this BLAS; where the floor's share of the GEMM peak is below a
target, rnnlab's share will be too. (rnnlab's compiled small-batch loop does its own matmul
and can go below the floor at B <= 4.) Repeated GEMMs of one shape (the T recurrent steps)
run back to back on hot caches, so the floor is, if anything, optimistic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

GATE_BLOCKS = {"RNN": 1, "LSTM": 4, "GRU": 3}    # G: W_ih and W_hh are (G*H, D) and (G*H, H)


@dataclass(frozen=True)
class Gemm:
    """count GEMMs (m x k)(k x n)."""
    m: int
    k: int
    n: int
    count: int
    what: str

    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n * self.count


def network_gemms(kind: str, H: int, B: int, T: int, mode: str) -> list[Gemm]:
    """The GEMMs of one call of a one-layer network with D = H, as rnnlab's loops make them:
    one input projection over all steps, one recurrent GEMM a step, and in training one a step
    back through W_hh and three over all steps (dW_ih, dW_hh, dx)."""
    if kind not in GATE_BLOCKS:
        raise ConfigError(f"kind: expected one of {sorted(GATE_BLOCKS)}, got {kind!r}")
    GH, TB = GATE_BLOCKS[kind] * H, T * B
    if mode == "stream":                              # T calls, each x_t and h through its GEMM
        return [Gemm(B, H, GH, T, "x_t W_ih^T"), Gemm(B, H, GH, T, "h W_hh^T")]
    gemms = [Gemm(TB, H, GH, 1, "X W_ih^T"), Gemm(B, H, GH, T, "h W_hh^T")]
    if mode == "training":
        gemms += [Gemm(B, GH, H, T, "dA W_hh"), Gemm(GH, TB, H, 1, "dXP^T X"),
                  Gemm(GH, TB, H, 1, "dA^T H"), Gemm(TB, GH, H, 1, "dXP W_ih")]
    elif mode != "inference":
        raise ConfigError(f"mode: expected inference, training or stream, got {mode!r}")
    return gemms


def _layouts(m: int, k: int, n: int, rng: np.random.Generator) -> list[Callable[[], object]]:
    """C (m, n) = A B three ways: B contiguous, B a transposed view, or C^T = B^T A^T. Each
    function holds only its own operands, so the layouts not kept are freed (at H = 1024,
    B = 128, T = 200 the three layouts of one shape hold up to 1 GB)."""
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    bt = np.ascontiguousarray(b.T)                    # (n, k)
    c, ct = np.empty((m, n), np.float32), np.empty((n, m), np.float32)
    return [lambda a=a, b=b, c=c: np.matmul(a, b, out=c),
            lambda a=a, bt=bt, c=c: np.matmul(a, bt.T, out=c),
            lambda a=a, bt=bt, ct=ct: np.matmul(bt, a.T, out=ct)]


def _fastest(fns: list[Callable[[], object]], tries: int = 3) -> Callable[[], object]:
    best, best_s = fns[0], float("inf")
    for fn in fns:
        fn()                                          # warm-up
        for _ in range(tries):
            t0 = time.perf_counter()
            fn()
            s = time.perf_counter() - t0
            if s < best_s:
                best, best_s = fn, s
    return best


def floor_function(kind: str, H: int, B: int, T: int, mode: str,
                   rng: np.random.Generator | None = None) -> Callable[[], None]:
    """A zero-argument function that runs every GEMM of `network_gemms`, each shape in its
    fastest layout (picked here, by timing each layout three times)."""
    rng = np.random.default_rng(0) if rng is None else rng
    chosen: dict[tuple[int, int, int], Callable[[], object]] = {}
    plan = []
    for g in network_gemms(kind, H, B, T, mode):
        shape = (g.m, g.k, g.n)
        if shape not in chosen:
            chosen[shape] = _fastest(_layouts(*shape, rng))
        plan.append((chosen[shape], g.count))

    def run() -> None:
        for fn, count in plan:
            for _ in range(count):
                fn()
    return run
