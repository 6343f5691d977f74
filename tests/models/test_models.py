"""Float64 gradient checks of every model's forward_backward, and their behaviour."""

import numpy as np
import pytest

from rnnlab.data import Vocab
from rnnlab.models import (ClassifierConfig, Forecaster, ForecasterConfig, PianoRollConfig, PianoRollModel,
                           RecurrentConfig, RegressorConfig, SequenceClassifier, SequenceRegressor, Tagger,
                           TaggerConfig)
from tests.helpers import gradcheck_model

F64 = dict(dtype=np.float64)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell,bi", [("lstm", True), ("gru", False), ("rnn", True), ("lstm_ln", False), ("gru_ln", True), ("clockwork", True), ("dg_lstm", False)])
def test_classifier_on_tokens(pooling, cell, bi):
    vocab = Vocab(["<pad>", "<unk>", "a", "b", "c"])
    cfg = ClassifierConfig(3, 0, 3, RecurrentConfig(cell, 3, 2, 0.2, bi), pooling, dropout=0.2)
    m = SequenceClassifier(vocab, cfg, ["x", "y", "z"], rng=0, **F64)
    rng = np.random.default_rng(0)
    lengths = np.array([4, 1, 3])
    x = rng.integers(2, 5, (4, 3))
    gradcheck_model(m, (x, lengths, np.array([0, 2, 1])))


def test_classifier_word_dropout_gradcheck_and_effect():
    vocab = Vocab(["<pad>", "<unk>", "a", "b", "c"])
    cfg = ClassifierConfig(2, 0, 4, RecurrentConfig("gru", 5), "mean", word_dropout=0.5)
    m = SequenceClassifier(vocab, cfg, ["x", "y"], rng=0, **F64)
    x = np.random.default_rng(0).integers(2, 5, (6, 3))
    batch = (x, np.array([6, 4, 2]), np.array([0, 1, 1]))
    gradcheck_model(m, batch)                                       # the dropped words are fixed by the seed
    m.eval()
    a = m.predict_proba(x, batch[1])
    np.testing.assert_array_equal(a, m.predict_proba(x, batch[1]))  # no word dropout in evaluation


def test_classifier_on_features():
    cfg = ClassifierConfig(2, 6, rnn=RecurrentConfig("lstm_peephole", 4), pooling="last")
    m = SequenceClassifier(None, cfg, ["p", "q"], rng=0, **F64)
    x = np.random.default_rng(0).standard_normal((5, 2, 6))
    gradcheck_model(m, (x, np.array([5, 2]), np.array([1, 0])))


def test_classifier_ignores_padding():
    cfg = ClassifierConfig(2, 3, rnn=RecurrentConfig("gru", 4, bidirectional=True), pooling="mean")
    m = SequenceClassifier(None, cfg, ["p", "q"], rng=0, **F64)
    x = np.random.default_rng(0).standard_normal((5, 1, 3))
    a = m.predict_proba(x, np.array([3]))
    x[3:] = 99.0
    np.testing.assert_array_equal(a, m.predict_proba(x, np.array([3])))
    np.testing.assert_allclose(a, m.predict_proba(x[:3], np.array([3])), rtol=1e-12)


def make_tagger(char_hidden=3):
    words = Vocab.build("the cat sat on mat".split())
    chars = Vocab.build("thecatsatonmatdog")
    tags = Vocab(["DET", "NOUN", "VERB", "ADP"])
    cfg = TaggerConfig(3, 3, char_hidden, RecurrentConfig("lstm", 3, 1, 0.0, True), dropout=0.2)
    return Tagger(words, chars, tags, cfg, rng=0, **F64)


@pytest.mark.parametrize("char_hidden", [0, 3])
def test_tagger_gradcheck_with_unknown_word(char_hidden):
    m = make_tagger(char_hidden)
    batch = m.make_batch([["the", "dog", "sat"], ["the", "cat"]], [["DET", "NOUN", "VERB"], ["DET", "NOUN"]])
    assert batch.words[1, 0] == m.words.unk_id                      # "dog" is unknown to words
    gradcheck_model(m, batch)


@pytest.mark.parametrize("scheme", ["none", "iob2"])
def test_tagger_with_crf_gradcheck_and_viterbi_predictions(scheme):
    words = Vocab.build("ann lives in paris now".split())
    chars = Vocab.build("annlivesinparisnow")
    tags = Vocab(["O", "B-PER", "I-PER", "B-LOC"])
    cfg = TaggerConfig(3, 3, 2, RecurrentConfig("gru", 3, 1, 0.0, True), dropout=0.2, crf=True, scheme=scheme)
    m = Tagger(words, chars, tags, cfg, rng=0, **F64)
    assert [k for k, _ in m.named_parameters()][-3:] == ["crf.start_transitions", "crf.end_transitions",
                                                       "crf.transitions"]
    assert (m.crf.allowed is not None) == (scheme == "iob2")
    sents = [["ann", "lives", "in", "paris"], ["paris", "now"]]
    gold = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O"]]
    batch = m.make_batch(sents, gold)
    gradcheck_model(m, batch)
    m.eval()
    emissions = m._logits(batch, False)
    paths = m.crf.decode(emissions, np.arange(4)[:, None] < batch.lengths[None, :])
    assert m.predict(sents) == [tags.decode(p) for p in paths]
    assert Tagger.parameter_floor(m.config()) <= m.num_parameters()


@pytest.mark.parametrize("char_hidden", [0, 2])
def test_segmenter_with_bigrams_gradcheck(char_hidden):
    from rnnlab.models.tagger import bigram_keys
    sents = [list("我们是学生"), list("好人")]
    chars = Vocab.build(c for s in sents for c in s)
    bigrams = Vocab.build(k for s in sents[:1] for k in bigram_keys(s))      # the second's are unknown
    tags = Vocab(["B", "M", "E", "S"])
    cfg = TaggerConfig(3, 2, char_hidden, RecurrentConfig("lstm", 3, 1, 0.0, True), dropout=0.2, crf=True,
                       scheme="bmes", bigram_dim=2)
    m = Tagger(chars, chars, tags, cfg, bigrams=bigrams, rng=0, **F64)
    assert bigram_keys(["a", "b"]) == ["<s>\x1fa", "a\x1fb", "a\x1fb", "b\x1f</s>"]
    batch = m.make_batch(sents, [["B", "E", "S", "B", "E"], ["S", "S"]])
    assert batch.bigrams.shape == (5, 2, 2) and batch.bigrams[0, 1, 0] == bigrams.unk_id
    gradcheck_model(m, batch)
    assert Tagger.from_config(m.config()).bigrams.itos == bigrams.itos
    assert Tagger.parameter_floor(m.config()) <= m.num_parameters()
    with pytest.raises(ValueError, match="bigrams: expected the bigram vocabulary"):
        Tagger(chars, chars, tags, cfg)


def test_tagger_with_casing_lowercase_and_word_dropout_gradcheck():
    from rnnlab.models.tagger import CASES, casing
    words = Vocab.build("ann lives in paris".split())
    cfg = TaggerConfig(3, 2, 2, RecurrentConfig("lstm", 3, 1, 0.0, True), dropout=0.1, crf=True, scheme="iob2",
                       lowercase=True, case_dim=2, word_dropout=0.3)
    m = Tagger(words, Vocab.build("AnnlivesinParis#@"), Vocab(["O", "B-PER", "B-LOC"]), cfg, rng=0, **F64)
    batch = m.make_batch([["Ann", "lives", "in", "PARIS"], ["#paris", "@ann"]], [["B-PER", "O", "O", "B-LOC"], ["O", "O"]])
    assert batch.words[0, 0] == words.stoi["ann"] and batch.words[3, 0] == words.stoi["paris"]   # looked up lower-cased
    assert [CASES[c] for c in batch.cases[:, 0]] == ["title", "lower", "lower", "upper"]
    assert [CASES[c] for c in batch.cases[:2, 1]] == ["hashtag", "mention"]
    assert [CASES[casing(w)] for w in ("2016", "30s", "B52s", "http://x.io", "iPhone")] == [
        "numeric", "mostly_numeric", "has_digit", "url", "other"]
    gradcheck_model(m, batch)
    assert Tagger.parameter_floor(m.config()) <= m.num_parameters()


def test_tagger_embeddings_start_at_the_configured_scale():
    from rnnlab.models.tagger import bigram_keys
    words, chars = Vocab.build(str(i) for i in range(400)), Vocab.build("abcdefghij")
    bigrams = Vocab.build(bigram_keys(list("abcdefghij")))
    for std in (1.0, 0.05):
        cfg = TaggerConfig(50, 40, 2, RecurrentConfig("lstm", 3, 1, 0.0, True), bigram_dim=30, case_dim=20,
                           embedding_init_std=std)
        m = Tagger(words, chars, Vocab(["X", "Y"]), cfg, bigrams=bigrams, rng=0)
        for emb in (m.word_emb, m.char_emb, m.bigram_emb, m.case_emb):
            rows = np.delete(emb.weight, emb.padding_idx, axis=0)       # the padding row stays 0
            assert abs(rows.std() / std - 1) < 0.1 and not emb.weight[emb.padding_idx].any()
        assert Tagger.from_config(m.config()).cfg.embedding_init_std == std
    with pytest.raises(ValueError, match="embedding_init_std: expected a finite number > 0, got 0"):
        TaggerConfig(embedding_init_std=0)


def test_tagger_rejects_an_unknown_scheme_and_tags_outside_it():
    with pytest.raises(ValueError, match="scheme: expected one of"):
        TaggerConfig(scheme="bio")
    cfg = TaggerConfig(3, 3, 0, RecurrentConfig("lstm", 3, 1, 0.0, True), crf=True, scheme="iob2")
    with pytest.raises(ValueError, match="'NOUN' is not a iob2 tag"):
        Tagger(Vocab.build(["a"]), Vocab.build("a"), Vocab(["O", "NOUN"]), cfg, rng=0)


def test_tagger_rejects_unseen_tags():
    m = make_tagger()
    with pytest.raises(ValueError, match=r"tags: 'PRON' is not in the vocabulary"):
        m.make_batch([["the"]], [["PRON"]])


def test_forecaster_gradcheck_and_forecast_units():
    cfg = ForecasterConfig(rnn=RecurrentConfig("gru", 4), window=6, horizon=3, mean=10.0, std=2.0)
    m = Forecaster(cfg, rng=0, **F64)
    rng = np.random.default_rng(0)
    gradcheck_model(m, (rng.standard_normal((6, 4)), rng.standard_normal((4, 3))))
    f = m.forecast(10 + 2 * rng.standard_normal(20))
    assert f.shape == (3,)
    with pytest.raises(ValueError, match="history: expected a 1-D series of at least window=6"):
        m.forecast(np.ones(3))


@pytest.mark.parametrize("cell,bi", [("lstm", True), ("rnn", False), ("lstm_ln", True)])
def test_sequence_regressor_gradcheck(cell, bi):
    m = SequenceRegressor(RegressorConfig(2, 1, RecurrentConfig(cell, 3, 2, bidirectional=bi)), rng=0, **F64)
    rng = np.random.default_rng(0)
    gradcheck_model(m, (rng.standard_normal((5, 3, 2)), rng.standard_normal((3, 1))))


def test_piano_roll_gradcheck_with_lengths():
    m = PianoRollModel(PianoRollConfig(7, RecurrentConfig("lstm", 4)), rng=0, **F64)
    rng = np.random.default_rng(0)
    rolls = (rng.random((5, 3, 7)) > 0.6).astype(float)
    gradcheck_model(m, (rolls, np.array([5, 3, 2])))


def float32_cases():
    rng = np.random.default_rng(0)
    vocab = Vocab(["<pad>", "<unk>", "a", "b", "c"])
    lengths = np.array([4, 1, 3])
    x = rng.integers(2, 5, (4, 3))
    for pooling in ("last", "mean", "max"):
        cfg = ClassifierConfig(3, 0, 4, RecurrentConfig("lstm", 5, 2, 0.2, True), pooling, dropout=0.2)
        yield f"classifier-{pooling}", SequenceClassifier(vocab, cfg, ["x", "y", "z"], rng=0), (x, lengths, np.array([0, 2, 1]))
    yield "forecaster", Forecaster(ForecasterConfig(rnn=RecurrentConfig("gru", 4), window=6, horizon=2), rng=0), \
        (rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32))
    yield "regressor", SequenceRegressor(RegressorConfig(2, 1, RecurrentConfig("rnn", 4)), rng=0), \
        (rng.standard_normal((5, 3, 2)).astype(np.float32), rng.standard_normal((3, 1)).astype(np.float32))
    yield "piano_roll", PianoRollModel(PianoRollConfig(7, RecurrentConfig("lstm", 4)), rng=0), \
        ((rng.random((5, 3, 7)) > 0.6).astype(np.float32), np.array([5, 3, 2]))


@pytest.mark.parametrize("name,model,batch", list(float32_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_float32_training_step_keeps_float32(name, model, batch):
    loss, n, _ = model.forward_backward(batch)
    assert np.isfinite(loss) and n > 0
    grads = dict(model.named_grads())
    assert all(g.dtype == np.float32 for g in grads.values()), name
    model.eval()
    metrics, _, _ = model.evaluate_batch(batch)
    assert np.isfinite(metrics["loss"])


def test_float32_tagger_step():
    words = Vocab.build("the cat sat".split())
    tagger = Tagger(words, Vocab.build("thecatsdog"), Vocab(["DET", "NOUN", "VERB"]),
                    TaggerConfig(4, 3, 3, RecurrentConfig("lstm", 5, 1, 0.0, True)), rng=0)
    batch = tagger.make_batch([["the", "dog", "sat"], ["the", "cat"]], [["DET", "NOUN", "VERB"], ["DET", "NOUN"]])
    tagger.forward_backward(batch)
    assert all(g.dtype == np.float32 for _, g in tagger.named_grads())


def test_eval_reaches_inside_every_submodule():
    """A Depth-Gated LSTM's stack sits inside it: eval() must reach it, or zoneout keeps
    drawing masks and two evaluation calls differ (issue 34)."""
    from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig
    from rnnlab.data import Vocab
    m = LanguageModel(Vocab(list("abcd")), LanguageModelConfig("char", 4, RecurrentConfig("dg_lstm", 6, 2, zoneout=0.3)),
                      rng=0)
    m.eval()
    x = np.array([[0, 1, 2, 3, 1]]).T
    a, _ = m.logits(x, keep_cache=False)
    b, _ = m.logits(x, keep_cache=False)
    np.testing.assert_array_equal(a, b)
    assert not m.rnn.stack.training
    m.train()
    assert m.rnn.stack.training
