"""CRF: log-likelihood and Viterbi against brute force over every path and against pytorch-crf
(float64, 1e-6), gradients of emissions and all three score tables by float64 finite
differences, stability at long sequences and large scores, scheme constraints."""

import itertools

import numpy as np
import pytest

from rnnlab.errors import ConfigError, OrderError, ShapeError, ValueRangeError
from rnnlab.layers.crf import CRF, allowed_transitions
from rnnlab.testing import numeric_grad
from tests.helpers import check_close

T, B, K = 5, 4, 3


def _case(seed=0, lengths=(5, 3, 1, 4), scale=1.0, batch_first=False):
    rng = np.random.default_rng(seed)
    crf = CRF(K, batch_first, dtype=np.float64, rng=rng)
    for _, a in crf.named_parameters():
        a[...] = rng.standard_normal(a.shape)               # away from the small init
    em = rng.standard_normal((T, len(lengths), K)) * scale
    tags = rng.integers(0, K, (T, len(lengths)))
    mask = np.arange(T)[:, None] < np.array(lengths)[None, :]
    if batch_first:
        em, tags, mask = em.transpose(1, 0, 2).copy(), tags.T.copy(), mask.T.copy()
    return crf, em, tags, mask


def _path_score(crf, e, y):
    """s(y) for one sequence e (L, K): the definition, written out."""
    s = crf.start_transitions[y[0]] + e[0, y[0]] + crf.end_transitions[y[-1]]
    return s + sum(crf.transitions[a, b] + e[t + 1, b] for t, (a, b) in enumerate(zip(y, y[1:])))


def test_log_likelihood_and_viterbi_equal_brute_force_over_every_path():
    crf, em, tags, mask = _case()
    llh = crf(em, tags, mask, reduction="none")
    paths = crf.decode(em, mask)
    for b, L in enumerate(mask.sum(0)):
        e = em[:L, b]
        scores = {y: _path_score(crf, e, y) for y in itertools.product(range(K), repeat=int(L))}
        log_z = np.logaddexp.reduce(list(scores.values()))
        assert llh[b] == pytest.approx(_path_score(crf, e, tuple(tags[:L, b])) - log_z, abs=1e-12)
        assert tuple(paths[b]) == max(scores, key=scores.get)


def test_probabilities_of_every_path_sum_to_one():
    crf, em, _, mask = _case(seed=1, lengths=(3, 2, 3, 1))
    for b in range(B):
        L = int(mask[:, b].sum())
        total = 0.0
        for y in itertools.product(range(K), repeat=L):
            tags = np.zeros((T, B), dtype=np.int64)
            tags[:L, b] = y
            total += np.exp(crf(em, tags, mask, reduction="none")[b])
        assert total == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "token_mean"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_gradients_match_finite_differences(reduction, batch_first):
    crf, em, tags, mask = _case(seed=2, batch_first=batch_first)
    w = np.random.default_rng(3).standard_normal(B) if reduction == "none" else 1.7

    def f():
        out = crf(em, tags, mask, reduction=reduction)
        return float(np.sum(out * w))

    f()
    dem = crf.backward(w)
    num = numeric_grad(f, em)
    if batch_first:
        assert dem.shape == em.shape
    check_close(dem, num, "d emissions")
    assert np.all(dem[~mask] == 0)                           # padding steps get nothing
    grads = dict(crf.named_grads())
    for name, a in crf.named_parameters():
        check_close(grads[name], numeric_grad(f, a), name)


def test_constrained_gradients_match_finite_differences_and_skip_forbidden_moves():
    tags_names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    rng = np.random.default_rng(4)
    crf = CRF(5, constraints=allowed_transitions(tags_names, "iob2"), dtype=np.float64, rng=rng)
    em = rng.standard_normal((6, 3, 5))
    tags = np.array([[1, 0, 3], [2, 0, 4], [0, 1, 0], [0, 2, 0], [3, 0, 0], [4, 0, 0]])
    mask = np.arange(6)[:, None] < np.array([6, 4, 2])[None, :]

    def f():
        return crf(em, tags, mask)

    f()
    dem = crf.backward()
    check_close(dem, numeric_grad(f, em), "d emissions")
    grads = dict(crf.named_grads())
    for name, a in crf.named_parameters():
        check_close(grads[name], numeric_grad(f, a), name)
    assert np.all(grads["transitions"][~crf.allowed[2]] == 0)
    em2 = rng.standard_normal((8, 20, 5)) * 5
    for path in crf.decode(em2):
        assert [tags_names[i] for i in path][0][0] != "I"
        for a, b in zip(path, path[1:]):
            assert crf.allowed[2][a, b], (tags_names[a], tags_names[b])


def test_long_sequences_and_large_scores_stay_finite():
    rng = np.random.default_rng(5)
    crf = CRF(6, dtype=np.float64, rng=rng)
    em = rng.standard_normal((2000, 3, 6)) * 300.0
    tags = em.argmax(-1)
    llh = crf(em, tags, reduction="none")
    assert np.all(np.isfinite(llh)) and np.all(llh <= 1e-9)
    assert np.all(np.isfinite(crf.backward(np.ones(3))))
    assert [np.array_equal(p, tags[:, b]) for b, p in enumerate(crf.decode(em))] == [True] * 3


def test_float32_follows_float64():
    crf, em, tags, mask = _case(seed=6)
    crf32 = CRF(K, dtype=np.float32)
    for (_, a), (_, b) in zip(crf32.named_parameters(), crf.named_parameters()):
        a[...] = b
    llh = crf(em, tags, mask, reduction="none")
    llh32 = crf32(em.astype(np.float32), tags, mask, reduction="none")
    assert llh32.dtype == np.float32
    np.testing.assert_allclose(llh32, llh, rtol=1e-5)
    crf32(em.astype(np.float32), tags, mask)
    crf(em, tags, mask)
    np.testing.assert_allclose(crf32.backward(), crf.backward(), atol=1e-5)
    assert crf32.decode(em.astype(np.float32), mask) == crf.decode(em, mask)


def test_allowed_transitions_of_the_schemes():
    start, end, trans = allowed_transitions(["B", "M", "E", "S"], "bmes")
    assert start.tolist() == [True, False, False, True]
    assert end.tolist() == [False, False, True, True]
    assert trans.astype(int).tolist() == [[0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1]]
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    start, end, trans = allowed_transitions(names, "iob2")
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()
    allowed = {(names[i], names[j]) for i, j in zip(*np.nonzero(trans))}
    assert ("O", "I-PER") not in allowed and ("B-LOC", "I-PER") not in allowed
    assert {("B-PER", "I-PER"), ("I-PER", "I-PER"), ("I-PER", "B-LOC"), ("I-LOC", "O")} <= allowed
    with pytest.raises(ConfigError, match="scheme"):
        allowed_transitions(names, "bio")
    with pytest.raises(ConfigError, match="'M-PER' is not a iob2 tag"):
        allowed_transitions(["O", "M-PER"], "iob2")


def test_bad_input_is_one_clear_error():
    crf, em, tags, mask = _case()
    with pytest.raises(ShapeError, match="emissions: expected last dimension 3"):
        crf(em[..., :2], tags, mask)
    with pytest.raises(ValueRangeError, match="first step"):
        crf(em, tags, np.zeros_like(mask))
    gap = mask.copy()
    gap[2, 0] = False
    with pytest.raises(ValueRangeError, match="left-aligned"):
        crf(em, tags, gap)
    with pytest.raises(ValueRangeError, match="tags: expected ids in"):
        crf(em, tags + K, mask)
    with pytest.raises(ConfigError, match="reduction"):
        crf(em, tags, mask, reduction="avg")
    with pytest.raises(OrderError):
        CRF(3).backward()
    with pytest.raises(ShapeError, match="constraints"):
        CRF(3, constraints=(np.ones(2), np.ones(3), np.ones((3, 3))))


def test_same_as_pytorch_crf():
    torch = pytest.importorskip("torch")
    torchcrf = pytest.importorskip("torchcrf")
    rng = np.random.default_rng(7)
    for batch_first in (False, True):
        Tn, Bn, Kn = 9, 6, 5
        ours = CRF(Kn, batch_first, dtype=np.float64, rng=rng)
        theirs = torchcrf.CRF(Kn, batch_first=batch_first).double()
        theirs.load_state_dict({k: torch.from_numpy(a.copy()) for k, a in ours.named_parameters()})
        em = rng.standard_normal((Tn, Bn, Kn)) * 3
        tags = rng.integers(0, Kn, (Tn, Bn))
        mask = np.arange(Tn)[:, None] < rng.integers(1, Tn + 1, Bn)[None, :]
        if batch_first:
            em, tags, mask = em.transpose(1, 0, 2).copy(), tags.T.copy(), mask.T.copy()
        e_t = torch.tensor(em, requires_grad=True)
        for reduction in ("none", "sum", "mean", "token_mean"):
            ref = theirs(e_t, torch.tensor(tags), torch.tensor(mask), reduction=reduction)
            np.testing.assert_allclose(ours(em, tags, mask, reduction=reduction), ref.detach().numpy(),
                                       rtol=1e-6, atol=1e-9)
        ref.backward()                                     # token_mean's gradients
        np.testing.assert_allclose(ours.backward(), e_t.grad.numpy(), atol=1e-9)
        for name, g in ours.named_grads():
            np.testing.assert_allclose(g, getattr(theirs, name).grad.numpy(), atol=1e-9, err_msg=name)
        assert ours.decode(em, mask) == theirs.decode(torch.tensor(em), torch.tensor(mask))
