"""Backends: one ladder, chosen by a network's own argument, a scoped context or one
environment variable; every level computes the same thing; net.plan says what a call runs."""

import contextlib
import threading

import numpy as np
import pytest

import rnnlab
from rnnlab import backends
from rnnlab.errors import ConfigError
from tests.helpers import python_output

LEVELS = [b for b in backends.LEVELS if b in ("reference", "numpy") or backends.numba_installed()]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("B", [1, 8])
def test_every_level_computes_the_same_thing(kind, B):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, B, 64)).astype(np.float32)
    outs = {}
    for level in LEVELS:
        net = getattr(rnnlab, kind)(64, 64, rng=0, backend=level)
        y, _ = net(x)
        dx, _ = net.backward(np.ones_like(y))
        outs[level] = (y, dx, net.grads["weight_hh_l0"])
    for level in LEVELS:
        for a, b in zip(outs[level], outs["reference"]):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=level)


def test_precedence_network_then_context_then_environment():
    net, auto = rnnlab.GRU(3, 4, backend="numpy"), rnnlab.GRU(3, 4)
    with rnnlab.backend("reference"):
        assert net.plan(batch_size=2).backend == "numpy"
        assert auto.plan(batch_size=2).backend == "reference"
        with rnnlab.backend("numpy"):
            assert auto.plan(batch_size=2).backend == "numpy"
        assert auto.plan(batch_size=2).backend == "reference"
    assert auto.plan(batch_size=2).backend == backends.highest()
    code = "import rnnlab; print(rnnlab.GRU(3, 4).plan(batch_size=2).backend)"
    assert python_output(code, RNNLAB_BACKEND="reference") == ["reference"]


def test_the_context_is_scoped_to_its_thread():
    seen = []
    with rnnlab.backend("reference"):
        t = threading.Thread(target=lambda: seen.append(backends.current()))
        t.start()
        t.join()
        assert backends.current() == "reference"
    assert seen == [backends.highest()]


def test_bad_backends_are_one_clear_error():
    with pytest.raises(ConfigError, match="backend: expected one of 'auto', 'reference'"):
        rnnlab.LSTM(3, 4, backend="fast")
    with pytest.raises(ConfigError, match="backend"):
        with rnnlab.backend("gpu"):
            pass
    out = python_output("import rnnlab, numpy as np\ntry:\n    rnnlab.GRU(3, 4)(np.zeros((2, 1, 3), np.float32))\n"
                        "except rnnlab.RnnlabError as e:\n    print(e)", RNNLAB_BACKEND="turbo")
    assert " ".join(out).startswith("RNNLAB_BACKEND: expected one of")


def _loops_run(monkeypatch) -> list[str]:
    """The loop names (as backends.Path's) of every forward and backward loop run from now on."""
    from rnnlab.kernels import _buffers, _jit, _packed
    seen: list[str] = []

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            seen.append(name(args) if callable(name) else name)
            return fn(*args, **kwargs)
        return wrapped
    for attr in ("lstm_forward", "lstm_forward_cols", "lstm_backward", "lstm_backward_cols",
                 "gru_forward", "gru_backward", "rnn_forward", "rnn_backward"):
        monkeypatch.setattr(_packed, attr, spy("packed", getattr(_packed, attr)))
    for attr in ("lstm_forward_loop", "lstm_backward_loop"):
        monkeypatch.setattr(_jit, attr, spy(lambda a: "own" if a[0] is None else "blas", getattr(_jit, attr)))
    monkeypatch.setattr(_buffers.ForwardSteps, "run", spy("steps", _buffers.ForwardSteps.run))
    monkeypatch.setattr(_buffers.BackwardSteps, "run", spy("steps", _buffers.BackwardSteps.run))
    return seen


@pytest.mark.skipif(not backends.numba_installed(), reason="numba not installed")
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("H, B", [(8, 2), (64, 1), (64, 8), (256, 1), (256, 32)])
@pytest.mark.parametrize("pool", [False, True], ids=["default", "shared_pool"])
def test_a_call_runs_the_loops_its_plan_names(kind, H, B, pool, monkeypatch):
    """net.plan(x) names the loops the call then runs (spied on), forward and backward."""
    net = getattr(rnnlab, kind)(H, H, rng=0)
    x = np.random.default_rng(0).standard_normal((10, B, H)).astype(np.float32)
    with rnnlab.threads.shared_pool() if pool else contextlib.nullcontext():
        plan = net.plan(x, training=True)
        seen = _loops_run(monkeypatch)
        y, _ = net(x)
        net.backward(np.ones_like(y))
    assert seen == [plan.forward, plan.backward], plan
    assert plan.family == kind.lower() and str(plan).startswith(f"backend {plan.backend!r}")
    reference = rnnlab.LSTM(H, H, peephole=True).plan(batch_size=B)
    assert reference.forward == "reference" and "no fused kernel" in str(reference)


def _choose(cell, B, dtype=np.float32, training=False, streaming=False, level="packed",
            packed=True, blas=("float32", "float64"), T=50, **kw):
    machine = backends.Machine(compiled=True, blas=frozenset(blas), packed=packed)
    return backends.choose(cell, T, B, dtype, training, streaming, level, machine, **kw)


def test_choose_is_a_pure_function_of_the_call_and_the_machine():
    from rnnlab.cells.gru import GRUCellConfig
    from rnnlab.cells.lstm import LSTMCellConfig
    from rnnlab.cells.rnn import RNNCellConfig
    lstm = LSTMCellConfig
    f64 = np.float64
    # the LSTM, top down: packed, BLAS loop, own matmul, steps
    assert _choose(lstm(256), 32).forward == "packed" and _choose(lstm(256), 32).split == "rows"
    assert _choose(lstm(256), 1).split == "units" and _choose(lstm(256), 1).in_place
    assert _choose(lstm(1024), 1).split == "units" and not _choose(lstm(1024), 1).in_place
    assert _choose(lstm(528), 128, training=True).backward == "packed"             # wide
    assert _choose(lstm(64), 1).forward == "own"                  # tiny inference: one thread
    assert _choose(lstm(64), 2, training=True).forward == "packed"
    assert _choose(lstm(64), 16).forward == "packed"              # B H > 512
    assert _choose(lstm(256), 32, packed=False).forward == "blas"
    assert _choose(lstm(256), 4, packed=False).forward == "own"   # own below B H 512 ... or B 4
    assert _choose(lstm(256), 4, packed=False, training=True).backward == "blas"
    assert _choose(lstm(256), 2, packed=False, training=True).backward == "own"
    assert _choose(lstm(512), 2, packed=False).forward == "steps"
    assert _choose(lstm(512), 32, dtype=f64).forward == "blas"    # float64: no packed loops
    assert _choose(lstm(512), 32, blas=()).forward == "packed"
    assert _choose(lstm(512), 32, blas=(), packed=False).forward == "steps"
    assert _choose(lstm(512), 32, packed=False, strided_weights=True).forward == "steps"
    assert _choose(lstm(256), 32, streaming=True).forward == "steps"
    assert _choose(lstm(256), 32, contiguous=False).forward == "steps"
    for H in (32, 1040):                                          # H < 64, H > 1024
        assert _choose(lstm(H), 32).forward != "packed"
    # H not a multiple of 16: the packed loops at H padded to the next one, where they take it
    assert _choose(lstm(650), 20, training=True).pad == 656 and _choose(lstm(650), 20).forward == "packed"
    assert _choose(lstm(100), 32).pad == 112 and "(H padded to 112)" in str(_choose(lstm(100), 32))
    assert _choose(lstm(256), 32).pad == 0                        # a multiple of 16 already
    assert _choose(GRUCellConfig(200), 8, training=True).pad == 208
    assert _choose(GRUCellConfig(200, reset_after=False), 8).pad == 0   # no packed loop to pad for
    for kw in (dict(level="compiled"), dict(streaming=True), dict(contiguous=False), dict(packed=False),
               dict(dtype=f64)):
        assert _choose(lstm(650), 20, **kw).pad == 0, kw
    assert _choose(lstm(1020), 20).pad == 1024 and _choose(lstm(1030), 20).pad == 0     # to 1024
    assert _choose(RNNCellConfig(50), 8).pad == 64 and _choose(RNNCellConfig(40), 8).pad == 0   # from 64
    # the input projection on the packed GEMM from enough rows
    assert _choose(lstm(512), 32, T=4).projection == "packed"
    assert _choose(lstm(512), 1, T=50).projection == "numpy"
    assert _choose(lstm(1024), 32, T=32).projection == "packed"
    assert _choose(lstm(1024), 32, T=31).projection == "numpy"
    # the GRU (reset-after) and RNN: packed rows from B = 2, to H = 1024
    for cell in (GRUCellConfig(1024), RNNCellConfig(64)):
        assert _choose(cell, 2).forward == "packed" and _choose(cell, 1).forward == "steps"
    assert _choose(GRUCellConfig(256, reset_after=False), 32).forward == "steps"
    # below the packed level, and without a fused kernel
    assert _choose(lstm(256), 32, level="compiled").forward == "blas"
    assert _choose(lstm(256), 32, level="numpy").forward == "steps"
    assert _choose(lstm(256), 32, level="numpy").gate_math == "numpy"
    ref = _choose(lstm(256), 32, level="reference", training=True)
    assert (ref.family, ref.forward, ref.backward, ref.why) == (None, "reference", "reference", "the backend")
    peep = _choose(lstm(256, peephole=True), 32)
    assert peep.forward == "reference" and "LSTMCellConfig" in peep.why


def test_without_skips_loops_in_its_block_only():
    from rnnlab.cells.lstm import LSTMCellConfig
    with backends.without("packed", "own"):
        assert _choose(LSTMCellConfig(256), 4).forward == "blas"
        assert _choose(LSTMCellConfig(250), 32).pad == 0          # nothing padded for a skipped loop
        with backends.without("blas"):
            assert _choose(LSTMCellConfig(256), 4).forward == "steps"
    assert _choose(LSTMCellConfig(256), 4).forward == "packed"
    with pytest.raises(ConfigError, match="loop: expected one of"):
        with backends.without("fast"):
            pass
