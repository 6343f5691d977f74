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
    with pytest.raises(RnnlabError, match="transcripts: only speech models take them"):
        evaluate_checkpoint(result.best_checkpoint, data, transcripts=data)
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
