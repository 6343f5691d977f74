"""Backends: one ladder, chosen by a network's own argument, a scoped context or one
environment variable; every level computes the same thing; net.plan says what a call runs."""

import threading

import numpy as np
import pytest

import rnnlab
from rnnlab import backends, kernels
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


@pytest.mark.skipif(not backends.numba_installed(), reason="numba not installed")
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("H, B", [(8, 2), (64, 1), (64, 8), (256, 1), (256, 32)])
def test_plan_says_what_the_call_runs(kind, H, B):
    """plan's words agree with the kernel the call builds (packed, or NumPy's BLAS loop)."""
    net = getattr(rnnlab, kind)(H, H, rng=0)
    p, cell = net.layers[0][0], net.cell
    XP = np.zeros((10, B, cell.gates * H), np.float32)
    carry = tuple(np.zeros((B, s), np.float32) for s in cell.carry_sizes())
    kern = kernels.forward_kernel(cell, p, XP, carry, keep_cache=True)
    plan = net.plan(batch_size=B, training=True)
    assert plan.forward.startswith("packed") == kern.packed, plan
    if kind == "LSTM":
        assert ("NumPy's BLAS" in plan.forward) == (kern.gemm is not None and not kern.packed), plan
    reference = rnnlab.LSTM(H, H, peephole=True).plan(batch_size=B)
    assert reference.forward.startswith("reference steps")
