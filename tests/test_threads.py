"""rnnlab does not change its user's process unless asked (rnnlab.threads): after every cell
on every backend, NumPy's OpenBLAS has no callback, no OpenMP runtime was loaded and torch
imported afterwards finds only its own; inside shared_pool() the packed loops run, and leaving
it gives OpenBLAS its threads back. Threaded callers never hang. Each check runs in a fresh
interpreter with a time limit."""

import os
import subprocess
import sys

import pytest

from rnnlab import backends

needs_numba = pytest.mark.skipif(not backends.numba_installed(), reason="numba not installed")

EVERY_PATH = """
import sys, numpy as np, rnnlab
from rnnlab import backends
nets = [lambda **k: rnnlab.LSTM(64, 64, **k), lambda **k: rnnlab.GRU(64, 64, **k),
        lambda **k: rnnlab.RNN(64, 64, **k), lambda **k: rnnlab.GRU(64, 64, reset_after=False, **k),
        lambda **k: rnnlab.LSTM(64, 64, peephole=True, **k), lambda **k: rnnlab.LSTM(64, 64, layer_norm=True, **k),
        lambda **k: rnnlab.ClockworkRNN(64, 64, **k), lambda **k: rnnlab.DepthGatedLSTM(64, 64, **k),
        lambda **k: rnnlab.LSTM(64, 64, num_layers=2, bidirectional=True, **k)]
levels = [b for b in backends.LEVELS if b in ("reference", "numpy") or backends.numba_installed()]
for make in nets:
    for level in levels:
        for dtype in (np.float32, np.float64):
            for B in (1, 8):
                net = make(backend=level, dtype=dtype, rng=0)
                x = np.ones((6, B, 64), dtype)
                y, _ = net(x)
                net.backward(np.ones_like(y))
                net.forward(x, keep_cache=False)
                if not isinstance(net, rnnlab.DepthGatedLSTM) and not net.bidirectional:
                    net.stream(batch_size=B).step(x[0])
a = np.ones((500, 500))
a @ a
"""

PROCESS_STATE = """
from rnnlab.kernels import _pool
maps = open("/proc/self/maps").read()
print(_pool.shared(), _pool.calls(), "numba.np.ufunc.omppool" in sys.modules,
      any(name in maps for name in ("libgomp", "libomp", "libiomp")))
"""


def _run(code: str, timeout: int = 300) -> list[str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/self/maps")
def test_every_cell_on_every_backend_leaves_the_process_as_it_was():
    # not shared, no OpenBLAS job through a callback, numba's OpenMP layer not loaded, no
    # OpenMP runtime mapped
    assert _run(EVERY_PATH + PROCESS_STATE) == ["False", "0", "False", "False"]


@needs_numba
@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/self/maps")
def test_torch_imported_after_rnnlab_finds_only_its_own_openmp():
    pytest.importorskip("torch")
    code = EVERY_PATH + """
import torch
torch.ones(300, 300) @ torch.ones(300, 300)
libs = {line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}
print(len(libs), all("/torch/lib/" in lib for lib in libs))
"""
    assert _run(code) == ["1", "True"]


@needs_numba
def test_shared_pool_runs_the_packed_loops_and_gives_openblas_its_threads_back():
    code = """
import numpy as np, rnnlab
from rnnlab.kernels import _packed, _pool
net = rnnlab.LSTM(64, 64, rng=0)
x = np.ones((6, 8, 64), np.float32)
print(net.plan(x).forward.startswith("packed"))
with rnnlab.threads.shared_pool():
    with rnnlab.threads.shared_pool():                      # blocks nest
        print(net.plan(x).forward.startswith("packed"))
        y, _ = net(x)
        net.backward(np.ones_like(y))
    print(_packed.usable())
print(_pool.shared(), _packed.usable(), net.plan(x).forward.startswith("packed"))
calls = _pool.calls()
a = np.ones((500, 500)); a @ a
print(_pool.calls() == calls)
"""
    assert _run(code) == ["False", "True", "True", "False", "False", "False", "True"]


THREADED = """
import threading, numpy as np, rnnlab
def train(k):
    net = rnnlab.LSTM(64, 64, rng=k)
    gru = rnnlab.GRU(64, 64, rng=k)
    x = np.random.default_rng(k).standard_normal((20, 16, 64)).astype(np.float32)
    a = np.random.default_rng(k).standard_normal((300, 300)).astype(np.float32)
    for _ in range({rounds}):
        for n in (net, gru):
            y, _ = n(x)
            n.backward(np.ones_like(y))
        a @ a
def run():
    ts = [threading.Thread(target=train, args=(k,)) for k in range(3)]
    [t.start() for t in ts]
    [t.join() for t in ts]
{call}
print("done")
"""


@pytest.mark.parametrize("opted", [False, pytest.param(True, marks=needs_numba)], ids=["default", "shared_pool"])
def test_threads_training_and_multiplying_side_by_side_never_hang(opted):
    call = "with rnnlab.threads.shared_pool():\n    run()" if opted else "run()"
    for _ in range(3):
        assert _run(THREADED.format(rounds=40, call=call), timeout=240) == ["done"]
