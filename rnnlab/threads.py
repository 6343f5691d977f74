"""Opt-in, scoped changes to the process for speed: nothing here happens unless asked for.

By default rnnlab leaves NumPy's BLAS, the OpenMP runtimes and the process's threads exactly
as they were: its compiled loops (the "compiled" backend) call NumPy's OpenBLAS as any NumPy
code does. The fastest path, rnnlab's own packed-GEMM loops on numba's threads (the "packed"
backend), needs the two thread pools not to fight over the cores: on a small machine,
OpenBLAS's workers keep spinning for ~70 ms after a product and numba's after a parallel
loop, so each steals the other's cores. `shared_pool()` makes one pool of them for a block.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_open = [0]                    # shared_pool() blocks open now, in any thread
_lock = threading.Lock()


def opted() -> bool:
    """Whether a shared_pool() block is open (what rnnlab.kernels._pool asks)."""
    return _open[0] > 0


@contextmanager
def shared_pool() -> Iterator[None]:
    """Within the block, rnnlab's packed loops run (float32, H a multiple of 16 from 64 to
    1024, on the "packed" or "auto" backend with numba installed), and NumPy's OpenBLAS runs
    its parallel jobs on numba's threads, so the two do not fight.

        with rnnlab.threads.shared_pool():
            train(model, task, ...)

    While the block is open this is process-wide: every thread's NumPy products go through
    the shared pool (one product at a time, the same results bit for bit, at OpenBLAS's own
    speed), and numba's threads start on torch's OpenMP runtime where torch is installed and
    not yet imported. Entering costs nothing: the pool is shared at the first call inside
    that runs the packed loops. When the last open block ends, OpenBLAS gets its own threads
    back (numba's threads, once started, stay idle). Blocks nest and may be opened from
    several threads. Where sharing is not safe (no numba, another threading layer,
    OMP_DYNAMIC, an OpenBLAS without the callback, a forked child) the packed loops run only
    while OpenBLAS runs on one thread. rnnlab's own commands (`rnnlab train-lm`,
    `rnnlab bench`, ...) run in one: they own their process."""
    with _lock:
        _open[0] += 1
        first = _open[0] == 1
    pool = sys.modules.get("rnnlab.kernels._pool")
    if first and pool is not None:
        pool.reopened()
    try:
        yield
    finally:
        with _lock:
            _open[0] -= 1
            last = _open[0] == 0
        pool = sys.modules.get("rnnlab.kernels._pool")   # loaded only if a call used it
        if last and pool is not None:
            pool.share(False)


@contextmanager
def limited(n: int) -> Iterator[None]:
    """Within the block NumPy's BLAS (threadpoolctl) and rnnlab's compiled loops (numba) use at
    most `n` threads each, as before afterwards. For several processes on one machine, as
    `mpiexec -n N` starts them: rnnlab's commands give each rank cores / ranks-on-the-machine
    threads (`rnnlab --threads-per-rank K ...` to choose), so ranks x threads = cores."""
    from threadpoolctl import threadpool_limits
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        from .errors import ConfigError
        raise ConfigError(f"threads: expected an int >= 1, got {n!r}")
    try:
        import numba
    except ImportError:
        numba = None
    before = None
    if numba is not None:
        from .kernels import _pool
        before = _pool.launch()                           # starts numba's threads in rnnlab's order
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if before is not None:
            numba.set_num_threads(before)
