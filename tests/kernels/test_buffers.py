"""kernels._buffers.Scratch, and the networks' inference calls that write into it."""

import copy
import threading

import numpy as np
import pytest

import rnnlab
from rnnlab.kernels._buffers import Scratch


def test_take_reuses_the_given_memory():
    s = Scratch()
    a = s.take(12, np.float32)
    assert a.shape == (12,) and a.dtype == np.float32
    s.give(a.reshape(3, 4)[1:])                        # a view: its root's memory is kept
    b = s.take(10, np.float64)                         # 80 bytes of the 48 kept: too small
    assert not np.shares_memory(a, b)
    s.give(b)                                          # the larger one stays
    c = s.take(6, np.float32)
    assert np.shares_memory(b, c) and c.dtype == np.float32 and c.shape == (6,)
    d = s.take(6, np.float32)                          # c is out: a new one
    assert not np.shares_memory(c, d)


def test_foreign_or_readonly_memory_is_not_kept():
    s = Scratch()
    ro = np.zeros(8)
    ro.flags.writeable = False
    s.give(ro)
    s.give(np.frombuffer(bytearray(64), dtype=np.float64))   # memory NumPy does not own
    assert not np.shares_memory(s.take(8, np.float64), ro)
    assert s._buf is None


def test_deepcopy_starts_empty_and_threads_never_share_a_buffer():
    s = Scratch()
    s.give(np.empty(100, np.float32))
    assert copy.deepcopy(s)._buf is None and s._buf is not None
    taken, lock = [], threading.Lock()

    def grab():
        a = s.take(100, np.float32)
        with lock:
            taken.append(a)
    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared = sum(np.shares_memory(a, b) for i, a in enumerate(taken) for b in taken[i + 1:])
    assert shared == 0


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_inference_calls_reuse_it_and_keep_their_results(kind):
    """A second keep_cache=False call writes its projections where the first one did, and the
    first call's outputs and state are untouched by it; both match the cached path."""
    rng = np.random.default_rng(0)
    net = getattr(rnnlab, kind)(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=1)
    x1, x2 = rng.standard_normal((2, 7, 5, 3))
    lengths = np.array([7, 3, 5, 1, 7])
    y1, s1 = net.forward(x1, lengths=lengths, keep_cache=False)
    kept = net._scratch._buf.ctypes.data
    states = s1 if isinstance(s1, tuple) else (s1,)
    saved = y1.copy(), [a.copy() for a in states]
    y2, _ = net.forward(x2, lengths=lengths, keep_cache=False)
    assert net._scratch._buf.ctypes.data == kept       # the same memory, taken and given back
    np.testing.assert_array_equal(y1, saved[0])
    for a, b in zip(states, saved[1]):
        np.testing.assert_array_equal(a, b)
    for x, y in ((x1, y1), (x2, y2)):
        y_ref, _ = net.forward(x, lengths=lengths)     # keeps a cache: no scratch
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    assert net._scratch._buf.ctypes.data == kept


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "DepthGatedLSTM"])
def test_release_memory_lets_the_kept_buffers_go(kind):
    """release_memory drops the inference buffer and the saved activations; later calls
    allocate again and give the same results, and a backward without a new forward says why."""
    rng = np.random.default_rng(0)
    net = getattr(rnnlab, kind)(3, 4, num_layers=2, dtype=np.float64, rng=1)
    stack = getattr(net, "stack", net)                 # DepthGatedLSTM runs one inner network
    fused = kind != "DepthGatedLSTM"                   # its cell has no fused kernel: no buffer
    x = rng.standard_normal((6, 5, 3))
    y1, _ = net.forward(x, keep_cache=False)
    assert (stack._scratch.nbytes >= 6 * 5 * 3 * 4 * 8) == fused   # a layer's projections
    y, _ = net(x)
    net.release_memory()
    assert stack._scratch.nbytes == 0 and stack._cache is None
    with pytest.raises(RuntimeError, match="no forward call"):
        net.backward(np.ones_like(y))
    y2, _ = net.forward(x, keep_cache=False)
    np.testing.assert_array_equal(y1, y2)
    assert (stack._scratch.nbytes > 0) == fused        # allocated again
    net(x)
    net.backward(np.ones_like(y))                      # a new forward: backward works again
