"""Segmentation as tagging: BMES both ways, the segmented formats, the two-column CoNLL reader."""

import pytest

from rnnlab.data import DataError, read_conll_columns
from rnnlab.data.segmentation import bmes, read_segmented, words_from_bmes


def test_bmes_round_trip_and_lenient_decoding():
    words = ["然而", "，", "这样", "的", "处理器", "也"]
    chars, tags = bmes(words)
    assert "".join(chars) == "然而，这样的处理器也"
    assert tags == ["B", "E", "S", "B", "E", "S", "B", "M", "E", "S"]
    assert words_from_bmes(chars, tags) == words
    # what a softmax may predict: M after S starts a word, B after B closes the first
    assert words_from_bmes(list("abcde"), ["S", "M", "E", "B", "B"]) == ["a", "bc", "d", "e"]
    with pytest.raises(DataError, match="one tag per character"):
        words_from_bmes(list("ab"), ["S"])


def test_read_segmented_formats(tmp_path):
    conllu = tmp_path / "a.conllu"
    conllu.write_text("# text = 我们好\n1-2\t我们好\t_\t_\t_\t_\t_\t_\t_\t_\n"
                      "1\t我们\t_\tPRON\t_\t_\t_\t_\t_\t_\n2\t好\t_\tADJ\t_\t_\t_\t_\t_\t_\n\n",
                      encoding="utf-8")
    assert read_segmented(conllu) == [["我们", "好"]]
    columns = tmp_path / "a.iob2"
    columns.write_text("# text = 我们好\n1\t我们\tO\t-\t-\n2\t好\tO\t-\t-\n\n1\t你\tB-PER\t-\t-\n",
                       encoding="utf-8")
    assert read_segmented(columns) == [["我们", "好"], ["你"]]
    plain = tmp_path / "a.txt"
    plain.write_text("我们 好\n\n你 好 吗\n", encoding="utf-8")
    assert read_segmented(plain) == [["我们", "好"], ["你", "好", "吗"]]
    bad = tmp_path / "b.iob2"
    bad.write_text("1\t我们\n2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"b.iob2:2: expected id<TAB>word"):
        read_segmented(bad)


def test_read_conll_columns_separators(tmp_path):
    f = tmp_path / "n.conll"
    f.write_text("-DOCSTART-\tO\n\nEmpire\tB-location\nState\tI-location\n\t\nhi\tO\n  \nx\ty\tO\n")
    assert read_conll_columns(f) == [(["Empire", "State"], ["B-location", "I-location"]), (["hi"], ["O"]),
                                      (["x"], ["O"])]
    f.write_text("the cat sat\n")
    with pytest.raises(DataError, match=r"n.conll:1: expected tab-separated token<TAB>tag"):
        read_conll_columns(f)
