"""Attention: float64 finite differences over several decoder steps sharing one memory, the same
equations in torch (autograd) to 1e-6, and padding that gets exactly no weight."""

import numpy as np
import pytest

from rnnlab.errors import ConfigError, ShapeError
from rnnlab.layers.attention import (SCORES, Attention, attention_backward, attention_forward,
                                     attention_keys, keys_backward)
from rnnlab.testing import numeric_grad
from tests.helpers import check_close

B, S, Q, M, STEPS = 3, 5, 4, 6, 3


def _setup(score, seed=0):
    rng = np.random.default_rng(seed)
    Qs = M if score == "dot" else Q
    att = Attention(score, Qs, M, 7, dtype=np.float64, rng=rng)
    memory = rng.standard_normal((B, S, M))
    hs = rng.standard_normal((STEPS, B, Qs))
    mask = np.arange(S)[None, :] < np.array([5, 2, 4])[:, None]     # (B, S) ragged sources
    R = rng.standard_normal((STEPS, B, M))                           # loss = sum R * contexts
    return att, memory, hs, mask, R


def _loss_and_grads(att, memory, hs, mask, R):
    """sum_t R_t . context_t over STEPS queries; gradients of every input and parameter."""
    keys = attention_keys(att.score, att.p, memory)
    out = [attention_forward(att.score, att.p, h, memory, keys, mask) for h in hs]
    loss = float(sum((r * c).sum() for r, (c, _, _) in zip(R, out)))
    grads = att.zero_grads()
    dmemory = np.zeros_like(memory)
    dkeys = np.zeros_like(keys) if att.score == "additive" else dmemory
    dhs = np.stack([attention_backward(att.score, att.p, memory, keys, r, cache, grads, dmemory, dkeys)
                    for r, (_, _, cache) in zip(R, out)])
    dmemory = dmemory + (keys_backward(att.score, att.p, memory, dkeys, grads) if att.score == "additive" else 0)
    return loss, dhs, dmemory, grads, out


@pytest.mark.parametrize("score", SCORES)
def test_gradients_match_finite_differences(score):
    att, memory, hs, mask, R = _setup(score)
    _, dhs, dmemory, grads, _ = _loss_and_grads(att, memory, hs, mask, R)
    f = lambda: _loss_and_grads(att, memory, hs, mask, R)[0]
    check_close(dhs, numeric_grad(f, hs), "queries")
    check_close(dmemory, numeric_grad(f, memory), "memory")
    names = [k for k, _ in att.named_parameters()]
    assert names == {"dot": [], "general": ["w"], "additive": ["w_query", "w_key", "v"]}[score]
    for k, a in att.named_parameters():
        check_close(getattr(grads, k), numeric_grad(f, a), k)


@pytest.mark.parametrize("score", SCORES)
def test_matches_the_same_equations_in_torch(score):
    torch = pytest.importorskip("torch")
    att, memory, hs, mask, R = _setup(score, seed=1)
    loss, dhs, dmemory, grads, out = _loss_and_grads(att, memory, hs, mask, R)
    t = {k: torch.tensor(a, requires_grad=True) for k, a in att.named_parameters()}
    tm, th = torch.tensor(memory, requires_grad=True), torch.tensor(hs, requires_grad=True)
    tmask = torch.tensor(mask)
    total, weights = 0, []
    for step in range(STEPS):
        h = th[step]
        if score == "dot":
            s = torch.einsum("bsm,bm->bs", tm, h)
        elif score == "general":
            s = torch.einsum("bsm,bm->bs", tm, h @ t["w"])
        else:
            e = torch.tanh(tm @ t["w_key"].T + (h @ t["w_query"].T)[:, None, :])
            s = e @ t["v"]
        a = torch.softmax(s.masked_fill(~tmask, float("-inf")), dim=1)
        weights.append(a)
        total = total + (torch.tensor(R[step]) * torch.einsum("bs,bsm->bm", a, tm)).sum()
    total.backward()
    close = lambda x, y: np.testing.assert_allclose(x, y.detach().numpy(), rtol=1e-6, atol=1e-9)
    assert loss == pytest.approx(total.item(), rel=1e-12)
    for (_, w, _), tw in zip(out, weights):
        close(w, tw)
    close(dhs, th.grad)
    close(dmemory, tm.grad)
    for k, a in t.items():
        close(getattr(grads, k), a.grad)


@pytest.mark.parametrize("score", SCORES)
def test_padding_gets_no_weight_and_no_gradient(score):
    att, memory, hs, mask, R = _setup(score, seed=2)
    _, _, dmemory, _, out = _loss_and_grads(att, memory, hs, mask, R)
    for _, w, _ in out:
        assert (w[~mask] == 0).all()
        np.testing.assert_allclose(w.sum(1), 1.0)
    assert (dmemory[~mask] == 0).all()
    changed = memory.copy()
    changed[~mask] = 1e6                                           # what padding holds is irrelevant
    keys = attention_keys(score, att.p, changed)
    for h, (c, _, _) in zip(hs, out):
        np.testing.assert_array_equal(attention_forward(score, att.p, h, changed, keys, mask)[0], c)


def test_bad_configurations_are_named():
    with pytest.raises(ConfigError, match="score: 'dot' needs the query size"):
        Attention("dot", 4, 6)
    with pytest.raises(ConfigError, match="score: expected one of"):
        Attention("concat", 4, 6)
    att = Attention("general", 4, 6)
    with pytest.raises(ShapeError, match="memory: expected"):
        att.check_memory(np.zeros((2, 3, 5), np.float32), None)
    with pytest.raises(ShapeError, match="at least one real source step"):
        att.check_memory(np.zeros((2, 3, 6), np.float32), np.array([[True, False, False], [False] * 3]))
