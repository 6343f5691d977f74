"""Span and word scores: seqeval's entity F1 on hand cases, SIGHAN word F1 and OOV recall."""

import pytest

from rnnlab.data import DataError
from rnnlab.metrics import entities, entity_scores, segmentation_scores


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-PER"], ["O", "O"]]          # 1 right of 2 predicted, 3 gold
    s = entity_scores(gold, pred)
    assert s["precision"] == pytest.approx(50.0) and s["recall"] == pytest.approx(100 / 3)
    assert s["f1"] == pytest.approx(40.0)
    assert entity_scores(gold, gold)["f1"] == 100.0
    assert entity_scores([["O"]], [["O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert entities(["B-x", "I-x", "O", "B-y"]) == [("x", 0, 1), ("y", 3, 3)]
    with pytest.raises(DataError, match="as long as the gold"):
        entity_scores(gold, [["O"]])


def test_segmentation_scores_count_words_with_both_boundaries_right():
    gold = [["我们", "是", "学生"]]
    pred = [["我们", "是学", "生"]]                                  # 1 of 3 right either way
    s = segmentation_scores(gold, pred, known={"我们", "是"})
    assert s["precision"] == pytest.approx(100 / 3) and s["recall"] == pytest.approx(100 / 3)
    assert s["f1"] == pytest.approx(100 / 3)
    assert s["oov_recall"] == 0.0 and s["oov_rate"] == pytest.approx(100 / 3)
    s = segmentation_scores(gold, [["我们", "是", "学", "生"]])      # 2 right of 4 predicted, of 3 gold
    assert s["precision"] == 50.0 and s["recall"] == pytest.approx(200 / 3)
    assert s["f1"] == pytest.approx(2 * 50 * 200 / 3 / (50 + 200 / 3))
    assert "oov_recall" not in s
    with pytest.raises(DataError, match="a segmentation of"):
        segmentation_scores(gold, [["我们"]])
