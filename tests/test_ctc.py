"""CTC: loss and logits gradient equal torch's to 1e-6 in float64 (repeated labels, blanks,
S = 0, T = S, impossible alignments, padded and concatenated targets, every reduction),
float64 finite differences of the log-probabilities, brute force over every path on a tiny
case; best-path and prefix beam search decoding; edit distance and error rates."""

import itertools

import numpy as np
import pytest

from rnnlab.ctc import greedy_decode, log_softmax_backward, prefix_beam_search
from rnnlab.errors import ConfigError, ShapeError, ValueRangeError
from rnnlab.losses import ctc_loss, log_softmax
from rnnlab.metrics import edit_distance, label_error_rate
from rnnlab.testing import numeric_grad
from tests.helpers import ctc_brute_log_likelihood, ctc_collapse

T, B, C = 12, 6, 5


def _case(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((T, B, C)) * 2
    Tb = np.array([12, 10, 7, 3, 12, 4])
    Sb = np.array([4, 3, 0, 3, 5, 4])
    tg = rng.integers(1, C, (B, 6))
    tg[0, :4] = [2, 2, 3, 3]                 # repeats: need blanks between
    tg[3, :3] = [1, 2, 3]                    # T = S: one path
    tg[4, :5] = [1, 1, 1, 1, 1]              # 9 frames at least
    tg[5, :4] = [2, 2, 2, 2]                 # 7 frames needed, 4 given: impossible
    return logits, Tb, Sb, tg


def test_brute_force_over_every_path():
    rng = np.random.default_rng(1)
    lp = log_softmax(rng.standard_normal((4, 1, 3)))
    for target in ([1], [1, 1], [1, 2], [], [2, 1, 2]):
        total = ctc_brute_log_likelihood(lp[:, 0], target)
        loss, _ = ctc_loss(lp, np.array([target + [1] * (3 - len(target))]), [4], [len(target)], reduction="sum")
        assert loss == pytest.approx(-total, abs=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("concatenated", [False, True])
def test_same_loss_and_gradients_as_torch(reduction, zero_infinity, concatenated):
    torch = pytest.importorskip("torch")
    logits, Tb, Sb, tg = _case()
    lp = log_softmax(logits)
    targets = np.concatenate([tg[b, :n] for b, n in enumerate(Sb)]) if concatenated else tg
    x = torch.tensor(logits, requires_grad=True)
    lp_t = x.log_softmax(2)
    lp_t.retain_grad()
    ref = torch.nn.functional.ctc_loss(lp_t, torch.tensor(targets), torch.tensor(Tb), torch.tensor(Sb),
                                       reduction=reduction, zero_infinity=zero_infinity)
    ref.sum().backward()
    loss, dlp = ctc_loss(lp, targets, Tb, Sb, reduction=reduction, zero_infinity=zero_infinity)
    np.testing.assert_allclose(loss, ref.detach().numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(log_softmax_backward(lp, dlp), x.grad.numpy(), atol=1e-9)   # NaN where torch's is
    # torch's log_probs gradient is ours plus exp(log_probs), weighted, over each sequence's frames
    w = {"none": np.ones(B), "sum": np.ones(B), "mean": 1 / (np.maximum(Sb, 1) * B)}[reduction]
    frames = (np.arange(T)[:, None] < Tb[None, :]) & np.isfinite(dlp).all(-1)
    np.testing.assert_allclose((dlp + np.exp(lp) * w[None, :, None] * (dlp != 0).any(-1, keepdims=True))[frames],
                               lp_t.grad.numpy()[frames], atol=1e-9)
    infinite = ~np.isfinite(np.asarray(ctc_loss(lp, targets, Tb, Sb, reduction="none")[0]))
    assert infinite.tolist() == [False] * 5 + [True]


def test_gradient_matches_finite_differences_of_log_probs():
    logits, Tb, Sb, tg = _case(2)
    lp = logits.copy()                        # not normalised: the gradient is of log_probs as given
    keep = [0, 1, 2, 3, 4]                    # the impossible one has no finite gradient
    _, dlp = ctc_loss(lp[:, keep], tg[keep], Tb[keep], Sb[keep], reduction="mean")
    sub = lp[:, keep].copy()

    def g():
        return ctc_loss(sub, tg[keep], Tb[keep], Sb[keep], reduction="mean")[0]
    np.testing.assert_allclose(dlp, numeric_grad(g, sub), atol=1e-7)
    assert np.all(dlp[np.arange(T)[:, None] >= Tb[keep][None, :]] == 0)     # frames past the end


def test_one_sequence_float32_and_no_gradient():
    logits, Tb, Sb, tg = _case(3)
    lp = log_softmax(logits)
    loss, d = ctc_loss(lp[:, 0], tg[0, :Sb[0]], Tb[0], Sb[0], reduction="none")
    full, dfull = ctc_loss(lp, tg, Tb, Sb, reduction="none")
    assert loss == pytest.approx(full[0]) and np.allclose(d, dfull[:, 0])
    l32, d32 = ctc_loss(lp.astype(np.float32), tg, Tb, Sb, reduction="mean", zero_infinity=True)
    assert d32.dtype == np.float32 and l32 == pytest.approx(ctc_loss(lp, tg, Tb, Sb, zero_infinity=True)[0], rel=1e-5)
    assert ctc_loss(lp, tg, Tb, Sb, grad=False)[1] is None


def test_bad_input_is_one_clear_error():
    logits, Tb, Sb, tg = _case()
    lp = log_softmax(logits)
    with pytest.raises(ConfigError, match="reduction"):
        ctc_loss(lp, tg, Tb, Sb, reduction="avg")
    with pytest.raises(ValueRangeError, match="input_lengths: expected lengths in"):
        ctc_loss(lp, tg, Tb + 1, Sb)
    with pytest.raises(ValueRangeError, match="blank .0. cannot be a target"):
        ctc_loss(lp, np.zeros_like(tg), Tb, Sb)
    with pytest.raises(ShapeError, match="sum.target_lengths."):
        ctc_loss(lp, np.ones(3, dtype=np.int64), Tb, Sb)
    with pytest.raises(ValueRangeError, match="blank: expected a class id"):
        ctc_loss(lp, tg, Tb, Sb, blank=C)


def test_decoders():
    lp = np.log(np.full((6, 2, 3), 0.01))
    for t, c in enumerate([1, 1, 0, 1, 2, 2]):
        lp[t, 0, c] = np.log(0.98)
    for t, c in enumerate([0, 2, 2, 0, 0, 0]):
        lp[t, 1, c] = np.log(0.98)
    assert greedy_decode(lp, [6, 6]) == [[1, 1, 2], [2]]
    assert prefix_beam_search(lp, [6, 6], beam=4) == [[1, 1, 2], [2]]
    assert greedy_decode(lp, [0, 2]) == [[], [2]]
    # the likeliest labelling is not the best path's: "1" over 3 frames by many paths
    p = np.array([[0.4, 0.6, 0.0], [0.4, 0.6, 0.0], [0.4, 0.6, 0.0]]) + 1e-12
    lp = np.log(p)[:, None, :]
    assert greedy_decode(lp, [3]) == [[1]]
    three = np.log(np.array([[0.45, 0.55], [0.45, 0.55]]))[:, None, :]  # best path "1"; p("1") = .3025+2*.2475
    assert prefix_beam_search(three, [2], beam=3) == [[1]]
    rng = np.random.default_rng(0)
    lp = log_softmax(rng.standard_normal((8, 3, 4)) * 3)
    for b, path in enumerate(prefix_beam_search(lp, [8, 8, 8], beam=64)):   # a wide beam finds the best labelling
        scores = {}
        for seq in itertools.product(range(4), repeat=8):
            key = tuple(ctc_collapse(seq))
            scores[key] = np.logaddexp(scores.get(key, -np.inf), sum(lp[t, b, c] for t, c in enumerate(seq)))
        assert tuple(path) == max(scores, key=scores.get)
    with pytest.raises(ConfigError, match="beam"):
        prefix_beam_search(lp, [8, 8, 8], beam=0)


def test_edit_distance_and_error_rates():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2 and edit_distance([1, 2, 3], [1, 3]) == 1
    r = label_error_rate([[1, 2, 3], [4, 5]], [[1, 3], [4, 5]])
    assert r == {"error_rate": 20.0, "sequence_accuracy": 50.0}
