"""Named entities and word segmentation end to end on tiny data: a BiLSTM-CRF learns 30
sentences to exact spans, evaluation reports seqeval's entity F1 and the SIGHAN word F1,
predictions come as marked spans and segmented lines, checkpoints load again."""

import numpy as np
import pytest

from rnnlab.errors import ConfigError, RnnlabError
from rnnlab.recipes import evaluate_checkpoint, predict_checkpoint
from rnnlab.recipes.common import load_model
from rnnlab.recipes.tagger import predict_tagger, segment, train_tagger
from rnnlab.train import TrainConfig

PEOPLE = [["Ann"], ["Bob", "Stone"], ["Cy"]]
PLACES = [["Paris"], ["New", "York"], ["Oslo"]]


def _ner_file(path, n=30, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        who, where = PEOPLE[rng.integers(3)], PLACES[rng.integers(3)]
        toks = [*who, "lives", "in", *where, "."]
        tags = (["B-PER"] + ["I-PER"] * (len(who) - 1) + ["O", "O"] + ["B-LOC"]
                + ["I-LOC"] * (len(where) - 1) + ["O"])
        lines += [f"{t}\t{g}" for t, g in zip(toks, tags)] + ["\t"]       # WNUT's tab-only separator
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ner_with_crf_learns_spans_and_reports_entity_f1(tmp_path):
    data = _ner_file(tmp_path / "ner.conll")
    result = train_tagger(data, data, tmp_path / "run", scheme="iob2", crf=True, hidden_size=16,
                          word_dim=16, char_hidden=8, dropout=0.0, min_freq=1, batch_size=8,
                          train_config=TrainConfig(epochs=25, lr=2e-2, seed=0, monitor="entity_f1"), progress=False)
    scores = evaluate_checkpoint(result.best_checkpoint, data)
    assert scores["entity_f1"] == 100.0 and scores["accuracy"] == 1.0
    for wrong in ({"transcripts": data}, {"vtln": True}):
        with pytest.raises(RnnlabError, match="transcripts, vtln: only speech models take them"):
            evaluate_checkpoint(result.best_checkpoint, data, **wrong)
    f1 = [h["val_entity_f1"] for h in result.history]       # the dev set's F1 each epoch picks the best
    assert result.best_score == max(f1) == 100.0 and result.best_epoch == f1.index(100.0) + 1
    model, _ = load_model(result.best_checkpoint)
    assert model.crf is not None and model.cfg.scheme == "iob2"
    assert predict_tagger(model, ["Bob Stone lives in New York ."]) == [
        "[PER: Bob Stone] lives in [LOC: New York] ."]
    assert predict_checkpoint(result.best_checkpoint, ["Cy lives in Oslo ."]) == ["[PER: Cy] lives in [LOC: Oslo] ."]
    with pytest.raises(ConfigError, match="segment: a word segmenter"):
        segment(model, ["x"])


WORDS = ["我们", "是", "学生", "老师", "好", "中国", "人"]


def _segmented_file(path, n=40, seed=0):
    rng = np.random.default_rng(seed)
    path.write_text("".join(" ".join(WORDS[i] for i in rng.integers(0, len(WORDS), rng.integers(3, 7))) + "\n"
                            for _ in range(n)), encoding="utf-8")
    return path


@pytest.mark.parametrize("crf, bigram_dim", [(True, 8), (False, 0)])
def test_segmenter_learns_words_and_keeps_given_spaces(tmp_path, crf, bigram_dim):
    data = _segmented_file(tmp_path / "seg.txt")
    result = train_tagger(data, data, tmp_path / "run", scheme="bmes", crf=crf, hidden_size=16, word_dim=16,
                          bigram_dim=bigram_dim,
                          dropout=0.0, min_freq=1, batch_size=8,
                          train_config=TrainConfig(epochs=25, lr=2e-2, seed=0), progress=False)
    model, _ = load_model(result.best_checkpoint)
    assert model.char_rnn is None                     # tokens are characters: no character model
    assert (model.bigram_emb is not None) == bool(bigram_dim)
    scores = evaluate_checkpoint(result.best_checkpoint, data)
    assert scores["word_f1"] == 100.0
    assert segment(model, ["我们是中国人", "", "我们 是学生好"]) == ["我们 是 中国 人", "", "我们 是 学生 好"]
    assert segment(model, ["我们是老 师"]) == ["我们 是 老 师"]      # a space in the input is a boundary


def test_a_scheme_that_does_not_fit_the_tags_is_one_error(tmp_path):
    conllu = tmp_path / "t.conllu"
    conllu.write_text("1\tthe\t_\tDET\t_\t_\t_\t_\t_\t_\n2\tdog\t_\tNOUN\t_\t_\t_\t_\t_\t_\n\n" * 4)
    with pytest.raises(RnnlabError, match="a CoNLL-U file; scheme 'iob2' reads token<TAB>tag files"):
        train_tagger(conllu, conllu, tmp_path / "r", scheme="iob2", crf=True, progress=False)
    pos = tmp_path / "pos.tsv"
    pos.write_text("the\tDET\ndog\tNOUN\n\n" * 4)
    for crf in (True, False):
        with pytest.raises(RnnlabError, match="'DET' is not a iob2 tag"):
            train_tagger(pos, pos, tmp_path / "r", scheme="iob2", crf=crf, progress=False)


def test_scores_and_predictions_never_use_dropout(tmp_path):
    data = _ner_file(tmp_path / "ner.conll")
    result = train_tagger(data, data, tmp_path / "run", scheme="iob2", crf=True, hidden_size=16, word_dim=16,
                          char_hidden=8, dropout=0.5, word_dropout=0.3, min_freq=1, batch_size=8,
                          train_config=TrainConfig(epochs=3, lr=2e-2, seed=0), progress=False)
    model, _ = load_model(result.best_checkpoint)
    sents = [s.split() for s in ["Bob Stone lives in New York .", "Cy lives in Oslo ."] * 4]
    model.train()                                       # predictions in training mode still skip dropout
    first = predict_tagger(model, [" ".join(s) for s in sents])
    assert model.training and all(predict_tagger(model, [" ".join(s) for s in sents]) == first for _ in range(3))
    from rnnlab.recipes.tagger import evaluate_tagger
    model.eval()
    a, b = evaluate_tagger(model, data), evaluate_tagger(model, data)   # evaluate() left the mode as it was
    assert a == b and not model.training


def _random_taggers(crf, n, scheme="iob2"):
    """n untrained taggers over the same vocabularies, weights drawn from seeds 0..n-1."""
    from rnnlab.data import Vocab
    from rnnlab.models.base import RecurrentConfig
    from rnnlab.models.tagger import Tagger, TaggerConfig
    words = Vocab.build("Ann Bob Stone lives in Paris Oslo .".split())
    tags = Vocab(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    cfg = TaggerConfig(4, 3, 2, RecurrentConfig("lstm", 3, 1, 0.0, True), dropout=0.5, crf=crf, scheme=scheme)
    return [Tagger(words, Vocab.build("AnBobStlivesPariOl."), tags, cfg, rng=seed, dtype=np.float64)
            for seed in range(n)]


SENTS = [["Ann", "lives", "in", "Paris", "."], ["Bob", "Stone", "in", "Oslo"], ["Cy", "lives"]]


@pytest.mark.parametrize("crf", [True, False])
def test_an_ensemble_of_one_predicts_as_the_model_does(crf):
    from rnnlab.recipes.tagger import predict_ensemble
    model, = _random_taggers(crf, 1)
    model.train()                                        # dropout never reaches predictions
    assert predict_ensemble([model], SENTS) == model.predict(SENTS)


def test_a_crf_ensemble_decodes_the_best_path_of_the_members_mean_score():
    """Brute force over every allowed path: the ensemble's path has the highest mean of the
    members' path scores (start + emissions + transitions + end, forbidden moves excluded)."""
    import itertools
    from rnnlab.recipes.tagger import predict_ensemble
    from rnnlab.layers.crf import viterbi
    models = _random_taggers(True, 3)
    for m in models:                                     # scores large enough for members to disagree
        m.crf.transitions *= 30
        m.crf.start_transitions *= 30
        m.crf.end_transitions *= 30
    got = predict_ensemble(models, SENTS)
    assert all(m.predict(SENTS) != got for m in models)                # no member decides alone
    scores = [m.tag_scores(SENTS) for m in models]
    mask = np.arange(len(scores[0][0]))[:, None] < scores[0][1][None, :]
    one_crf = viterbi(models[0].crf.params(), np.mean([e for e, _ in scores], 0), mask)
    assert [models[0].tags.decode(p) for p in one_crf] != got         # the transitions' average matters
    K = len(models[0].tags)
    for b, sent in enumerate(SENTS):
        per = []
        for m in models:
            e, _ = m.tag_scores([sent])
            p = m.crf.params()
            per.append((e[:, 0], p))
        best, best_path = -np.inf, None
        for path in itertools.product(range(K), repeat=len(sent)):
            total = 0.0
            for e, p in per:
                s = p.start[path[0]] + p.end[path[-1]] + sum(e[t, y] for t, y in enumerate(path))
                total += s + sum(p.trans[a, c] for a, c in zip(path, path[1:]))
            if total > best:
                best, best_path = total, path
        assert got[b] == models[0].tags.decode(best_path)


def test_a_softmax_ensemble_averages_log_probabilities():
    """The geometric mean of the members' token distributions, which here differs from the
    arithmetic mean of their probabilities."""
    import torch
    from rnnlab.recipes.tagger import predict_ensemble
    models = _random_taggers(False, 3)
    for m, scale in zip(models, (5, 20, 60)):            # members of different confidence
        m.head.weight *= scale
        m.head.bias *= scale
    got = predict_ensemble(models, SENTS)
    arithmetic = []
    for b, sent in enumerate(SENTS):
        logp = []
        for m in models:
            m.eval()
            logits = m._logits(m.make_batch([sent]), False)[:, 0]
            logp.append(torch.log_softmax(torch.from_numpy(logits), -1).numpy())
        assert got[b] == models[0].tags.decode(np.mean(logp, 0).argmax(-1))
        arithmetic.append(models[0].tags.decode(np.exp(logp).mean(0).argmax(-1)))
    assert arithmetic != got and all(m.predict(SENTS) != got for m in models)


def test_evaluate_tagger_ensemble_scores_the_ensemble_and_each_member(tmp_path):
    from rnnlab.recipes.tagger import evaluate_tagger, evaluate_tagger_ensemble, predict_ensemble
    data = _ner_file(tmp_path / "ner.conll", n=8)
    models = _random_taggers(True, 2)
    one = evaluate_tagger_ensemble(models[:1], data)
    alone = evaluate_tagger(models[0], data)
    assert one["members"] == [alone]
    assert one["accuracy"] == pytest.approx(alone["accuracy"]) and one["entity_f1"] == alone["entity_f1"]
    two = evaluate_tagger_ensemble(models, data)
    from rnnlab.recipes.tagger import read_tagged
    sents = read_tagged(data, "iob2")
    predicted = predict_ensemble(models, [s for s, _ in sents])
    right = sum(p == g for (_, gs), ps in zip(sents, predicted) for p, g in zip(ps, gs))
    assert two["accuracy"] == right / sum(len(s) for s, _ in sents) and len(two["members"]) == 2
    with pytest.raises(RnnlabError, match="models: expected at least one tagger, got none"):
        evaluate_tagger_ensemble([], data)
    softmax, = _random_taggers(False, 1)
    with pytest.raises(RnnlabError, match="models: members must share their tags, scheme and CRF or softmax head"):
        predict_ensemble([models[0], softmax], SENTS)
