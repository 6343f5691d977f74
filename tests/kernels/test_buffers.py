"""kernels._buffers.Scratch, and the networks' calls that write their input projections into it."""

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
    assert s.nbytes == 0


def test_a_network_with_kept_buffers_pickles_in_memory():
    """The lock inside a Scratch does not stop a network from pickling (multiprocessing sends
    models so); the buffers stay behind."""
    import pickle
    net = rnnlab.LSTM(3, 4, dtype=np.float64, rng=1)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    y, _ = net.forward(x, keep_cache=False)
    back = pickle.loads(pickle.dumps(net))             # bytes made here, never a file
    assert back._scratch.nbytes == 0 and back._scratch.capacity == 1
    np.testing.assert_array_equal(back.forward(x, keep_cache=False)[0], y)


def test_deepcopy_starts_empty_and_threads_never_share_a_buffer():
    s = Scratch()
    s.give(np.empty(100, np.float32))
    assert copy.deepcopy(s).nbytes == 0 and s.nbytes == 400
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
    kept = net._scratch._bufs[0].ctypes.data
    states = s1 if isinstance(s1, tuple) else (s1,)
    saved = y1.copy(), [a.copy() for a in states]
    y2, _ = net.forward(x2, lengths=lengths, keep_cache=False)
    assert net._scratch._bufs[0].ctypes.data == kept   # the same memory, taken and given back
    np.testing.assert_array_equal(y1, saved[0])
    for a, b in zip(states, saved[1]):
        np.testing.assert_array_equal(a, b)
    ref = copy.deepcopy(net)                           # its own (empty) scratch
    for x, y in ((x1, y1), (x2, y2)):
        y_ref, _ = ref.forward(x, lengths=lengths)     # keeps a cache
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    assert net._scratch._bufs[0].ctypes.data == kept


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


def test_the_pool_keeps_the_largest_and_hands_out_the_smallest_that_fits():
    s = Scratch(capacity=2)
    small, big, mid = (np.empty(n, np.uint8) for n in (10, 30, 20))
    for a in (small, big, mid):
        s.give(a)
    s.give(big[5:])                                    # the same memory again: kept once
    assert s.nbytes == 50                              # 30 + 20: the smallest went
    a = s.take(15, np.uint8)
    assert np.shares_memory(a, mid)                    # 20 fits 15 more tightly than 30
    assert np.shares_memory(s.take(15, np.uint8), big)
    assert s.nbytes == 0 and not np.shares_memory(s.take(15, np.uint8), small)


def _train(net, x, lengths, g, lent=None):
    """One training call; `lent(net)` runs between its forward and its backward."""
    y, state = net(x, lengths=lengths)
    if lent is not None:
        lent(net)
    pair = isinstance(state, tuple)                    # LSTM (h, c); RNN, GRU h
    dstate = tuple(np.ones_like(a) for a in state) if pair else np.ones_like(state)
    dx, dstate0 = net.backward(g, dstate)
    both = (state, dstate0) if pair else ((state,), (dstate0,))
    return [y, *both[0], dx, *both[1], *net.grads.values()]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_training_calls_reuse_the_projections_and_match_fresh_memory(kind):
    """A backward gives each layer's input projections back (not the RNN's: its cache keeps
    none of them, so they are freed after its forward, as before); the next training call
    writes into the same memory and computes exactly what a network without the pool does.
    The first call's outputs and gradients are untouched by the second."""
    rng = np.random.default_rng(0)
    T, B, D, H = 7, 5, 3, 4
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    cls = getattr(rnnlab, kind)
    net = cls(D, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=1)
    ref = copy.deepcopy(net)
    ref._scratch = None                                # fresh memory every call
    lengths = np.array([7, 3, 5, 1, 7])
    xs = rng.standard_normal((2, T, B, D))
    gs = rng.standard_normal((2, T, B, 2 * H))
    first = _train(net, xs[0], lengths, gs[0])
    kept = {b.ctypes.data for b in net._scratch._bufs}
    assert net._scratch.nbytes == (0 if kind == "RNN" else 4 * T * B * G * H * 8)
    saved = copy.deepcopy(first)

    def lent(net):                                     # LSTM, GRU: out with the cache
        assert net._scratch.nbytes == 0
    second = _train(net, xs[1], lengths, gs[1], lent)
    assert {b.ctypes.data for b in net._scratch._bufs} == kept   # the same memory came back
    for got, want in ((first, saved), (first, _train(ref, xs[0], lengths, gs[0])),
                      (second, _train(ref, xs[1], lengths, gs[1]))):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_a_backward_through_the_reference_loop_gives_nothing_back():
    """With a state-gradient hook the backward runs the readable loop, which leaves the cache
    whole (a second backward may follow): the projections stay with it until a fused backward
    spends them."""
    net = rnnlab.LSTM(3, 4, dtype=np.float64, rng=1)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    y, _ = net(x)
    seen = []
    dx1, _ = net.backward(np.ones_like(y), on_state_grad=lambda *a: seen.append(a[2]))
    assert len(seen) == 6 and net._scratch.nbytes == 0
    dx2, _ = net.backward(np.ones_like(y))             # the cache is still whole
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12, atol=1e-12)
    assert net._scratch.nbytes == 6 * 2 * 16 * 8       # spent now: given back


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_the_inference_buffer_survives_a_training_call(kind):
    """Validation between training steps keeps reusing its memory: the LSTM's and GRU's
    training call borrows the buffer and gives it back after backward; the RNN's leaves it."""
    net = getattr(rnnlab, kind)(3, 4, dtype=np.float64, rng=1)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    net.forward(x, keep_cache=False)
    kept = net._scratch._bufs[0].ctypes.data
    y, _ = net(x)
    net.backward(np.ones_like(y))
    assert [b.ctypes.data for b in net._scratch._bufs] == [kept]
