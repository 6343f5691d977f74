"""The encoder-decoder with attention: float64 finite differences of every parameter (attention
kinds, cells, bridge, input feeding, tied output, label smoothing), padding kept out of the
attention and the loss, 20 pairs learnt to exact outputs, decoding batched and beam 1 = greedy."""

import numpy as np
import pytest

from rnnlab.data.vocab import Vocab
from rnnlab.errors import ConfigError
from rnnlab.models import MODEL_KINDS
from rnnlab.models.base import RecurrentConfig
from rnnlab.models.translator import TranslationBatch, Translator, TranslatorConfig
from rnnlab.optim import Adam, clip_grad_norm
from tests.helpers import gradcheck_model

SRC = Vocab(["<pad>", "<unk>"] + list("abcdefgh"))
TGT = Vocab(["<pad>", "<unk>", "<bos>", "<eos>"] + list("stuvwxyz"))


def _padded(rows, pad=0):
    T = max(len(r) for r in rows)
    out = np.full((T, len(rows)), pad, dtype=np.int64)
    for b, r in enumerate(rows):
        out[:len(r), b] = r
    return out, np.array([len(r) for r in rows])


def make_batch(pairs):
    """(source ids, target ids) pairs -> a TranslationBatch with <bos>/<eos> around the targets."""
    bos, eos = TGT.stoi["<bos>"], TGT.stoi["<eos>"]
    src, src_len = _padded([s for s, _ in pairs])
    tgt_in, tgt_len = _padded([[bos] + list(t) for _, t in pairs])
    tgt_out, _ = _padded([list(t) + [eos] for _, t in pairs])
    return TranslationBatch(src, src_len, tgt_in, tgt_out, tgt_len)


def random_pairs(rng, n, longest=5):
    return [(list(rng.integers(2, len(SRC), rng.integers(1, longest + 1))),
             list(rng.integers(4, len(TGT), rng.integers(1, longest + 1)))) for _ in range(n)]


CONFIGS = {  # cell, attention, bidirectional, decoder_hidden, input feeding, tied, layers, smoothing
    "lstm-general-bi": ("lstm", "general", True, 0, True, False, 1, 0.0),
    "gru-additive-bridge-2layers": ("gru", "additive", True, 5, True, False, 2, 0.1),
    "lstm-dot-uni-2layers": ("lstm", "dot", False, 0, False, False, 2, 0.0),
    "gru-none-tied": ("gru", "none", True, 4, False, True, 1, 0.0),
    "rnn-additive-tied": ("rnn", "additive", False, 4, True, True, 1, 0.2),
    "lstm-general-bridge-2layers": ("lstm", "general", True, 6, True, False, 2, 0.0),
    "gru_reset_before-dot": ("gru_reset_before", "dot", True, 0, True, False, 1, 0.0),
}


def make(name, dtype=np.float64, dropout=0.0):
    cell, att, bi, dh, feed, tie, L, eps = CONFIGS[name]
    E = dh if tie else 4
    cfg = TranslatorConfig(E, RecurrentConfig(cell, 3, L, bidirectional=bi), dh, att, 0, feed, tie, dropout, eps)
    return Translator(SRC, TGT, cfg, dtype=dtype, rng=1)


@pytest.mark.parametrize("name", CONFIGS)
def test_gradients_match_finite_differences(name):
    batch = make_batch(random_pairs(np.random.default_rng(0), 3))
    gradcheck_model(make(name), batch)


def test_gradients_with_dropout_match_finite_differences():
    gradcheck_model(make("lstm-general-bi", dropout=0.3), make_batch(random_pairs(np.random.default_rng(1), 3)))


@pytest.mark.parametrize("name", ["lstm-general-bi", "gru-additive-bridge-2layers"])
def test_padding_stays_out_of_attention_and_loss(name):
    rng = np.random.default_rng(2)
    batch = make_batch(random_pairs(rng, 4))
    m = make(name)
    loss, n, _ = m.forward_backward(batch)
    grads = {k: g.copy() for k, g in m.named_grads()}
    other = TranslationBatch(batch.src.copy(), batch.src_lengths, batch.tgt_in.copy(), batch.tgt_out.copy(),
                             batch.tgt_lengths)
    S, T = batch.src.shape[0], batch.tgt_in.shape[0]
    other.src[np.arange(S)[:, None] >= batch.src_lengths] = 5          # padding replaced by words
    other.tgt_in[np.arange(T)[:, None] >= batch.tgt_lengths] = 6
    other.tgt_out[np.arange(T)[:, None] >= batch.tgt_lengths] = 7
    loss2, n2, _ = m.forward_backward(other)
    assert n2 == n == int(batch.tgt_lengths.sum()) and loss2 == pytest.approx(loss, rel=1e-12)
    for k, g in m.named_grads():
        if "embedding" in k:                                           # only real rows are read
            rows = [5] if "source" in k else [6]
            keep = np.ones(len(g), bool)
            keep[rows] = False
            np.testing.assert_allclose(g[keep], grads[k][keep], rtol=1e-10, atol=1e-12, err_msg=k)
        else:
            np.testing.assert_allclose(g, grads[k], rtol=1e-10, atol=1e-12, err_msg=k)


def _train(m, batch, steps, lr=0.02):
    opt = Adam(m.named_parameters(), lr=lr)
    for _ in range(steps):
        m.forward_backward(batch)
        g = dict(m.named_grads())
        clip_grad_norm(g, 5.0)
        opt.step(g)


@pytest.mark.parametrize("attention", ["general", "additive"])
def test_learns_twenty_pairs_to_exact_outputs(attention):
    """Each source word maps to a target word and the order is reversed: attention must look
    back at the right source word at each step."""
    rng = np.random.default_rng(3)
    pairs = []
    for _ in range(20):
        s = list(rng.integers(2, len(SRC), rng.integers(2, 7)))
        pairs.append((s, [w + 2 for w in reversed(s)]))                # a -> s, b -> t, ...
    cfg = TranslatorConfig(16, RecurrentConfig("gru", 16, 1, bidirectional=True), 0, attention)
    m = Translator(SRC, TGT, cfg, rng=0)
    batch = make_batch(pairs)
    _train(m, batch, 400)
    got = m.translate_ids(batch.src, batch.src_lengths)
    assert got == [t for _, t in pairs]
    assert m.translate_ids(batch.src, batch.src_lengths, beam=4) == got
    # one sentence at a time (no padding beside it) gives the same
    for b in (0, 7):
        L = batch.src_lengths[b]
        assert m.translate_ids(batch.src[:L, b:b + 1], batch.src_lengths[b:b + 1]) == [got[b]]


def test_beam_one_is_greedy_on_an_untrained_model():
    m = make("lstm-general-bi", dtype=np.float32)
    batch = make_batch(random_pairs(np.random.default_rng(4), 6))
    a = m.translate_ids(batch.src, batch.src_lengths, max_len_a=2, max_len_b=3)
    b = m.translate_ids(batch.src, batch.src_lengths, beam=1, max_len_a=2, max_len_b=3)
    from rnnlab.models.decoding import beam_search, max_lengths
    step, state = m.stepper(batch.src, batch.src_lengths, 1)
    hyps = beam_search(step, state, 2, 3, max_lengths(batch.src_lengths, 2, 3), beam=1)
    assert a == b == [h[0].tokens for h in hyps]
    assert all(len(h[0].align) == len(h[0].tokens) and all(0 <= i < L for i in h[0].align)
               for h, L in zip(hyps, batch.src_lengths))          # attended real source steps
    assert all(len(t) <= 2 * L + 3 for t, L in zip(a, batch.src_lengths))


def test_registered_and_refuses_bad_configurations():
    assert MODEL_KINDS["translator"] is Translator
    with pytest.raises(ConfigError, match="tie_embeddings"):
        TranslatorConfig(8, RecurrentConfig("gru", 3, 1, bidirectional=True), 0, "general", tie_embeddings=True)
    with pytest.raises(ConfigError, match="'dot' needs decoder_hidden"):
        TranslatorConfig(8, RecurrentConfig("gru", 3, 1, bidirectional=True), 5, "dot")
    with pytest.raises(ConfigError, match="encoder.cell"):
        TranslatorConfig(8, RecurrentConfig("clockwork", 3, 1))
    with pytest.raises(ConfigError, match="<bos>"):
        Translator(SRC, SRC, TranslatorConfig(), rng=0)
