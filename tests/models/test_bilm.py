"""Bidirectional LM pretraining of a classifier's encoder: gradients, targets, sharing."""

import numpy as np
import pytest

from rnnlab.data import Vocab
from rnnlab.models import ClassifierConfig, RecurrentConfig, SequenceClassifier
from rnnlab.models.bilm import BidirectionalLM
from tests.helpers import gradcheck_model


def classifier(cell="lstm", bi=True, layers=1):
    vocab = Vocab(["<pad>", "<unk>", "a", "b", "c", "d"])
    cfg = ClassifierConfig(2, 0, 3, RecurrentConfig(cell, 4, layers, 0.0, bi), "max")
    return SequenceClassifier(vocab, cfg, ["0", "1"], rng=0, dtype=np.float64)


@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("gru", 2)])
def test_gradcheck_with_lengths_dropout_and_rare_words(cell, layers):
    clf = classifier(cell, layers=layers)
    lm = BidirectionalLM(clf.vocab, clf.embedding, clf.rnn, out_words=4, dropout=0.2, rng=clf.rng)
    x = np.array([[2, 3, 5], [4, 5, 2], [3, 0, 4], [5, 0, 0]])          # ids 4, 5 are past out_words
    gradcheck_model(lm, (x, np.array([4, 2, 3])))


def test_targets_are_neighbours_and_padding_does_not_count():
    clf = classifier()
    lm = BidirectionalLM(clf.vocab, clf.embedding, clf.rnn, out_words=6, rng=clf.rng)
    lm.eval()
    x = np.array([[2, 3], [3, 4], [4, 0]])
    lengths = np.array([3, 2])
    metrics, n, _ = lm.evaluate_batch((x, lengths))
    loss = metrics["loss"]
    assert n == 3                                                       # (3-1) + (2-1) neighbour pairs
    # the same loss by hand: forward h(t) -> x[t+1], backward h(t) -> x[t-1], per valid pair
    e = clf.embedding(x)
    out, _ = clf.rnn.forward(e, None, lengths, keep_cache=False)
    H = clf.rnn.hidden_size

    def nll(logits, y):
        z = logits - logits.max()
        return np.log(np.exp(z).sum()) - z[y]
    pairs = [(0, 0), (1, 0), (0, 1)]                                    # (t, b) with t+1 < length
    fwd = sum(nll(lm.head_forward.weight @ out[t, b, :H] + lm.head_forward.bias, x[t + 1, b]) for t, b in pairs)
    bwd = sum(nll(lm.head_backward.weight @ out[t + 1, b, H:] + lm.head_backward.bias, x[t, b]) for t, b in pairs)
    assert loss == pytest.approx((fwd + bwd) / 2, rel=1e-12)
    x2 = x.copy()
    x2[2, 1] = 5                                                        # padding changes nothing
    assert lm.evaluate_batch((x2, lengths))[0]["loss"] == pytest.approx(loss, rel=1e-12)


def test_shares_the_encoder_in_place():
    clf = classifier()
    lm = BidirectionalLM(clf.vocab, clf.embedding, clf.rnn, rng=clf.rng)
    params = dict(lm.named_parameters())
    assert params["embedding.weight"] is clf.embedding.weight
    assert all(params[k] is a for k, a in clf.named_parameters() if not k.startswith("head"))


def test_errors():
    clf = classifier(bi=False)
    with pytest.raises(ValueError, match="rnn: a bidirectional LM needs a bidirectional"):
        BidirectionalLM(clf.vocab, clf.embedding, clf.rnn, rng=clf.rng)
    clf = classifier()
    lm = BidirectionalLM(clf.vocab, clf.embedding, clf.rnn, rng=clf.rng)
    with pytest.raises(ValueError, match="at least 2 steps, got T=1"):
        lm.forward_backward((np.array([[2, 3]]), np.array([1, 1])))
    with pytest.raises(ValueError, match="vocab: .*<unk>"):
        BidirectionalLM(Vocab(["<pad>", "a", "b", "c", "d", "e"]), clf.embedding, clf.rnn, rng=clf.rng)
