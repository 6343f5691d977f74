"""One thread pool: NumPy's OpenBLAS running its parallel jobs on numba's threads (kernels._pool).

The oracle is OpenBLAS on its own threads: the same kernels on the same split of the work, so
a shared product must equal it exactly, whichever way the jobs are run (numba's threads, more
jobs than those, started threads, calls from several threads at once). What could hang (jobs
that wait for each other on too few threads) runs in a fresh interpreter with a time limit."""

import os
import subprocess
import sys

import numpy as np
import pytest

import rnnlab
from rnnlab import kernels
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.kernels import _blas, _packed, _pool
from tests.kernels.test_packed import _gradient_problem, _pools_apart, _training

threadpoolctl = pytest.importorskip("threadpoolctl")


def _can_share() -> bool:
    if not _packed.AVAILABLE:
        return False
    with rnnlab.threads.shared_pool():
        return _pool.share(True)


needs_pool = pytest.mark.skipif(not _can_share(), reason="needs numba's OpenMP layer and an OpenBLAS "
                                                         "with openblas_set_threads_callback_function")


@pytest.fixture(autouse=True)
def one_pool():
    """These tests check the shared pool: opted into, and shared, for each test."""
    with rnnlab.threads.shared_pool():
        if _packed.AVAILABLE:
            _pool.share(True)
        yield

SHAPES = [(512, 512, 512), (1600, 1024, 256), (32, 1024, 256), (1024, 256, 1600), (700, 3, 900)]


def _run(code: str, **env: str) -> list[str]:
    """The words a fresh interpreter prints running `code` (within 120 s)."""
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env),
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _operands(dtype, seed=0):
    rng = np.random.default_rng(seed)
    for m, n, k in SHAPES:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        if np.dtype(dtype).kind == "c":
            a, b = a + 1j * rng.standard_normal((m, k)), b + 1j * rng.standard_normal((k, n))
        yield a.astype(dtype), b.astype(dtype)


@needs_pool
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_shared_products_equal_openblas_own_threads(dtype):
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _pool.calls()
        shared = [a @ b for a, b in _operands(dtype)] + [a.T @ a for a, _ in _operands(dtype)]
        assert _pool.calls() > before                          # the jobs did run on the pool
        with _pools_apart():
            counted = _pool.calls()
            own = [a @ b for a, b in _operands(dtype)] + [a.T @ a for a, _ in _operands(dtype)]
            assert _pool.calls() == counted                     # and now they do not
    for s, o in zip(shared, own, strict=True):
        np.testing.assert_array_equal(s, o)


@needs_pool
def test_level_2_products_run_on_it_too():
    rng = np.random.default_rng(1)
    a, v = rng.standard_normal((3000, 2000)), rng.standard_normal(2000)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        got = a @ v
        with _pools_apart():
            want = a @ v
    np.testing.assert_array_equal(got, want)


_PRODUCTS = """
import numpy as np, threadpoolctl
from rnnlab.kernels import _pool
rng = np.random.default_rng(0)
a, b = rng.standard_normal((900, 700)).astype(np.float32), rng.standard_normal((700, 800)).astype(np.float32)
assert _pool.share(True)
_pool.share(False)
with threadpoolctl.threadpool_limits({jobs}, user_api="blas"):
    want = a @ b
_pool.share(True)
{before}
with threadpoolctl.threadpool_limits({jobs}, user_api="blas"):
    calls = _pool.calls()
    got = a @ b
print(_pool.calls() - calls, np.array_equal(got, want))
"""


@needs_pool
def test_four_jobs_on_four_numba_threads():
    """Each job on its own thread with its own number (OpenBLAS's buffer for it)."""
    code = _PRODUCTS.format(jobs=4, before="")
    assert _run(code, NUMBA_NUM_THREADS="4") == ["1", "True"]


@needs_pool
def test_more_jobs_than_numba_threads_run_on_started_threads():
    """OpenBLAS on four threads, numba on two: the jobs wait for each other, so they run on
    threads started for the call, all at once, and the product is OpenBLAS's."""
    code = _PRODUCTS.format(jobs=4, before="")
    assert _run(code, NUMBA_NUM_THREADS="2") == ["1", "True"]


@needs_pool
def test_a_caller_on_fewer_numba_threads_gets_enough_for_the_call():
    """numba.set_num_threads(1) in the calling thread: the call raises it to the job count for
    itself (two jobs on one thread would wait for each other) and puts it back."""
    before = "import numba; numba.set_num_threads(1)"
    after = "\nprint(numba.get_num_threads())"
    code = _PRODUCTS.format(jobs=2, before=before) + after
    assert _run(code, NUMBA_NUM_THREADS="2") == ["1", "True", "1"]


@needs_pool
def test_calls_from_several_threads_at_once_each_get_their_product():
    """OpenBLAS indexes its per-thread buffers by job number: concurrent calls take turns.
    Matrix-vector products (level 2), which OpenBLAS does not serialise itself, and matrix
    products."""
    code = """
import threading, numpy as np, threadpoolctl
from rnnlab.kernels import _pool
rng = np.random.default_rng(0)
pairs = [(rng.standard_normal((3000, 1000)), rng.standard_normal(1000)) for _ in range(4)]
pairs += [(rng.standard_normal((600, 500)), rng.standard_normal((500, 400))) for _ in range(4)]
_pool.share(False)
want = [a @ b for a, b in pairs]
assert _pool.share(True)
ok = []
def work(i):
    a, b = pairs[i]
    ok.append(all(np.array_equal(a @ b, want[i]) for _ in range(20)))
with threadpoolctl.threadpool_limits(2, user_api="blas"):
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
print(all(ok), len(ok), _pool.calls() >= 160)
"""
    assert _run(code) == ["True", "8", "True"]


@needs_pool
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_openblas_own_threads_back():
    """GNU OpenMP terminates a forked child that uses it; the child's products run on
    OpenBLAS's own threads and still equal the parent's."""
    code = """
import os, numpy as np, threadpoolctl
from rnnlab.kernels import _packed, _pool
rng = np.random.default_rng(0)
a = rng.standard_normal((800, 800))
with threadpoolctl.threadpool_limits(2, user_api="blas"):
    assert _pool.share(True)
    want = a @ a
    pid = os.fork()
    if pid == 0:
        calls = _pool.calls()
        got = a @ a
        ok = not _pool.shared() and not _packed.usable() and _pool.calls() == calls
        os._exit(0 if ok and np.array_equal(got, want) else 3)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""
    assert _run(code) == ["0"]


def test_outside_shared_pool_the_pools_stay_apart():
    code = """
from rnnlab import kernels
from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.kernels import _pool
import numpy as np
way = kernels.path_of(LSTMCellConfig(256), 50, 32, np.float32, True)
print(_pool.shared(), way.backward != "packed", _pool.shared())
"""
    assert _run(code) == ["False", "True", "False"]


def test_openmp_that_may_shrink_teams_keeps_the_pools_apart():
    """With OMP_DYNAMIC a team may get fewer threads than jobs, which would wait forever."""
    code = "from rnnlab.kernels import _pool; print(_pool.share(True))"
    assert _run(code, OMP_DYNAMIC="true") == ["False"]


@needs_pool
def test_packed_training_beside_two_openblas_threads_matches_one_thread():
    """The default: OpenBLAS on two threads, its jobs on numba's, the LSTM's packed loops; the
    same gradients as with OpenBLAS on one thread (test_packed checks those against the
    float64 reference steps)."""
    problem = _gradient_problem(4, 6, 5, 128)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        one = _training(*problem)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        way = kernels.path_of(LSTMCellConfig(128), 4, 6, np.float32, True)
        assert _blas.threads() == 2 and _packed.usable() and way.backward == "packed"
        calls = _pool.calls()
        two = _training(*problem)
        assert _pool.calls() > calls                           # dW on two threads, via the pool
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * (1 + np.abs(b).max()))


@needs_pool
@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/self/maps")
def test_numba_threads_start_on_torchs_openmp_where_torch_is_installed():
    """torch on the system's libgomp (loaded first by numba's OpenMP layer, under the same
    name as torch's own) ran a GRU ~30x slower: rnnlab's threads start on torch's copy."""
    pytest.importorskip("torch")
    code = """
import ctypes
from rnnlab.kernels import _pool
_pool.launch()
import sys; assert "torch" not in sys.modules
at = ctypes.cast(ctypes.CDLL(None).GOMP_parallel, ctypes.c_void_p).value   # what GOMP calls bind to
for line in open("/proc/self/maps"):
    span, *rest = line.split()
    lo, hi = (int(v, 16) for v in span.split("-"))
    if lo <= at < hi:
        print("torch" if "/torch/lib/" in rest[-1] else rest[-1])
"""
    assert _run(code) == ["torch"]
