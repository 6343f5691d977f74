"""Sentence pairs: reading, tokens, the PyTorch tutorial's filter on the real file, a split that
keeps every translation of one English sentence on one side, batches."""

from pathlib import Path

import numpy as np
import pytest

from rnnlab.data import DataError
from rnnlab.data.pairs import (Pair, detokenize, read_pairs, split_pairs, tokenize, translation_batch,
                               tutorial_filter)

FULL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tatoeba_eng_fra_full" / "eng-fra.txt"


def test_reads_columns_in_either_direction(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("Go.\tVa !\tattribution\nI see.\tJe comprends.\n\n", encoding="utf-8")
    assert read_pairs(f) == [Pair("Go.", "Va !", "go."), Pair("I see.", "Je comprends.", "i see.")]
    assert read_pairs(f, reverse=True)[0] == Pair("Va !", "Go.", "go.")      # the group stays English
    f.write_text("Go.\tVa !\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 .* expected source<TAB>target"):
        read_pairs(f)
    f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="UTF-8"):
        read_pairs(f)


def test_tokens_and_back():
    assert tokenize("J'ai vu l'homme aujourd'hui, peut-être.") == \
        ["j'", "ai", "vu", "l'", "homme", "aujourd'hui", ",", "peut-être", "."]
    assert tokenize("I'm sure it's Tom’s!") == ["i'm", "sure", "it's", "tom's", "!"]
    assert detokenize(["j'", "ai", "vu", "l'", "homme", ",", "peut-être", "."]) == "j'ai vu l'homme, peut-être."
    assert detokenize(["qu'", "est-ce", "?"]) == "qu'est-ce?"


@pytest.mark.skipif(not FULL.exists(), reason="../shared/data/tatoeba_eng_fra_full is not here")
def test_tutorial_filter_keeps_the_tutorials_pairs():
    pairs = read_pairs(FULL, reverse=True)                                   # French -> English
    assert len(pairs) == 135842
    assert len(tutorial_filter(pairs, english_side="target")) == 10599     # as the tutorial says


def test_split_keeps_each_english_sentence_on_one_side():
    pairs = [Pair(f"e{i % 40}", f"f{i}", f"e{i % 40}") for i in range(200)]   # 5 translations each
    train, valid, test = split_pairs(pairs, (0.1, 0.2), seed=3)
    groups = [{p.group for p in part} for part in (train, valid, test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert (len(groups[1]), len(groups[2])) == (4, 8) and len(train) + len(valid) + len(test) == 200
    assert split_pairs(pairs, (0.1, 0.2), seed=3) == (train, valid, test)    # seeded


def test_batch_puts_bos_and_eos_around_targets():
    b = translation_batch([(np.array([5, 6, 7]), np.array([8])), (np.array([5]), np.array([9, 10]))], 2, 3)
    assert b.src.T.tolist() == [[5, 6, 7], [5, 0, 0]] and b.src_lengths.tolist() == [3, 1]
    assert b.tgt_in.T.tolist() == [[2, 8, 0], [2, 9, 10]] and b.tgt_out.T.tolist() == [[8, 3, 0], [9, 10, 3]]
    assert b.tgt_lengths.tolist() == [2, 3]
