import numpy as np
import pytest

import rnnlab
from rnnlab import backends
from rnnlab.optim import SGD, Adagrad, Adam, AdamW, RMSprop, clip_grad_norm
from rnnlab.optim.schedules import CosineAnnealing, Exponential, ReduceOnPlateau, StepDecay

torch = pytest.importorskip("torch")

CASES = [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1, weight_decay=0.1)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9)),
    (Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
]


LEVELS = ["numpy"] + (["compiled"] if backends.numba_installed() else [])   # Adam: NumPy passes
TOL = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=1e-6, atol=1e-6)}


@pytest.mark.parametrize("level", LEVELS)                 # or one compiled pass (optim._fused)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("ours,theirs,kw", CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_updates_match_torch_optim(ours, theirs, kw, dtype, level):
    rng = np.random.default_rng(0)
    p0 = {"a": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(5).astype(dtype)}
    params = {k: v.copy() for k, v in p0.items()}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
    opt = ours(params.items(), **kw)
    topt = theirs(list(tparams.values()), **kw)
    with rnnlab.backend(level):
        for _ in range(5):
            grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in p0.items()}
            for k, t in tparams.items():
                t.grad = torch.tensor(grads[k])
            topt.step()
            opt.step(grads)
    for k in params:
        assert params[k].dtype == dtype
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), **TOL[dtype])


def test_optimizer_state_round_trip_gives_identical_steps():
    rng = np.random.default_rng(1)
    a = {"w": rng.standard_normal(4)}
    b = {"w": a["w"].copy()}
    oa = Adam(a.items(), lr=0.1)
    g = [{"w": rng.standard_normal(4)} for _ in range(4)]
    oa.step(g[0]); oa.step(g[1])
    ob = Adam(b.items(), lr=0.1)
    b["w"][...] = a["w"]
    ob.load_state_arrays({k: v.copy() for k, v in oa.state_arrays().items()})
    for gi in g[2:]:
        oa.step(gi); ob.step(gi)
    np.testing.assert_array_equal(a["w"], b["w"])


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(2)
    grads = {"a": rng.standard_normal((3, 3)) * 5, "b": rng.standard_normal(4)}
    ts = [torch.tensor(g.copy(), requires_grad=True) for g in grads.values()]
    for t, g in zip(ts, grads.values()):
        t.grad = torch.tensor(g.copy())
    ref = torch.nn.utils.clip_grad_norm_(ts, 1.0)
    norm = clip_grad_norm(grads, 1.0)
    assert abs(norm - ref.item()) < 1e-12
    for t, g in zip(ts, grads.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    small = {"a": np.array([0.1, 0.2])}
    clip_grad_norm(small, 1.0)
    np.testing.assert_array_equal(small["a"], [0.1, 0.2])     # under the limit: untouched


def test_schedules():
    assert [StepDecay(0.5, 1, 4)(1.0, e) for e in range(6)] == [1, 1, 1, 0.5, 0.25, 0.125]
    assert Exponential(0.5)(2.0, 0) == 1.0
    c = CosineAnnealing(total_epochs=4)
    assert c(1.0, 3) == pytest.approx(0.0) and c(1.0, 1) == pytest.approx(0.5)
    r = ReduceOnPlateau(factor=0.1, patience=1)
    lrs = [r(1.0, e, v) for e, v in enumerate([3.0, 2.0, 2.5, 2.4, 1.0])]
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1])


@pytest.mark.parametrize("max_norm", [-1.0, float("nan"), float("inf"), "5"])
def test_clip_refuses_a_negative_or_non_finite_norm(max_norm):
    from rnnlab.errors import RnnlabError
    g = {"w": np.ones(3)}
    with pytest.raises(RnnlabError, match="max_norm"):
        clip_grad_norm(g, max_norm)
    assert (g["w"] == 1).all()                   # untouched: a negative norm would flip the sign


@pytest.mark.skipif(not backends.numba_installed(), reason="numba not installed")
def test_compiled_level_takes_the_one_pass_updates():
    a = np.zeros((3, 4), np.float32)
    with rnnlab.backend("compiled"):
        fused = rnnlab.optim.optimizers._compiled(a, a.copy())
        assert fused is not None and all(callable(getattr(fused, f)) for f in ("sgd", "adagrad", "rmsprop", "adam"))
        assert rnnlab.optim.optimizers._compiled(a, a.T.copy().T) is None     # not C-contiguous
        assert rnnlab.optim.optimizers._compiled(a, a.astype(np.float64)) is None
    with rnnlab.backend("numpy"):
        assert rnnlab.optim.optimizers._compiled(a, a.copy()) is None
