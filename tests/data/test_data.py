import json
from pathlib import Path

import numpy as np
import pytest

from rnnlab.data import (DataError, Vocab, bucket_batches, pad_sequences, read_conllu, read_csv_series,
                         read_jsb_chorales, read_sst, read_text, read_ts, stream_batches)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (a fresh clone has no ../shared)")


def test_vocab_round_trip_unknown_and_cutoff():
    v = Vocab.build("a b a c a b d".split(), min_freq=2)
    assert v.itos == ["<pad>", "<unk>", "a", "b"]
    assert v.decode(v.encode(["a", "b", "zzz"])) == ["a", "b", "<unk>"]
    assert Vocab.from_json(json.loads(json.dumps(v.to_json()))).itos == v.itos
    strict = Vocab.build("xy", specials=())
    with pytest.raises(ValueError, match=r"labels: 'z' is not in the vocabulary"):
        strict.encode("z", "labels")


def test_pad_sequences_and_lengths():
    x, lengths = pad_sequences([np.array([1, 2, 3]), np.array([4])], pad=0)
    assert x.shape == (3, 2) and lengths.tolist() == [3, 1]
    assert x[:, 1].tolist() == [4, 0, 0]


def test_bucket_batches_cover_every_index_once_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, 103)
    batches = bucket_batches(lengths, 10, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(103))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 3                   # similar lengths together
    again = bucket_batches(lengths, 10, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_stream_batches_continue_across_batches():
    ids = np.arange(101)
    batches = list(stream_batches(ids, batch_size=4, bptt=7))
    x = np.concatenate([b[0] for b in batches])           # (25, 4): each column one stream
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (25, 4)
    np.testing.assert_array_equal(y, x + 1)                # next token
    np.testing.assert_array_equal(x[:, 1], np.arange(25, 50))  # a stream is contiguous text


def test_read_text_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "latin1.txt").write_bytes("ok\ncaf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="empty"):
        read_text(tmp_path / "empty.txt")
    with pytest.raises(DataError, match=r"not UTF-8 text \(byte 6, line 2\)"):
        read_text(tmp_path / "latin1.txt")
    with pytest.raises(DataError, match="no such file"):
        read_text(tmp_path / "missing.txt")


def test_conllu_reader_skips_multiword_and_reports_malformed_lines(tmp_path):
    good = ("# text = Don't go\n1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
            "1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n"
            "2.1\tx\tx\tX\tX\t_\t_\t_\t_\t_\n3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\n\n")
    (tmp_path / "a.conllu").write_text(good)
    assert read_conllu(tmp_path / "a.conllu") == [(["Do", "n't", "go"], ["AUX", "PART", "VERB"])]
    (tmp_path / "b.conllu").write_text(good + "1\tdog\tdog\tNOUN\n")
    with pytest.raises(DataError, match=r"b.conllu:8: expected 10 tab-separated columns, got 4"):
        read_conllu(tmp_path / "b.conllu")
    (tmp_path / "c.conllu").write_text("x\ta\tb\tc\td\te\tf\tg\th\ti\n")
    with pytest.raises(DataError, match=r"c.conllu:1: expected a token id"):
        read_conllu(tmp_path / "c.conllu")


def test_small_format_errors(tmp_path):
    (tmp_path / "s.txt").write_text("1 good film\nnolabel\n")
    with pytest.raises(DataError, match=r"s.txt:2: expected '<label> <tokens...>'"):
        read_sst(tmp_path / "s.txt")
    (tmp_path / "c.csv").write_text("Month,Value\n1,2.5\n2,abc\n")
    with pytest.raises(DataError, match=r"c.csv:3: expected a number"):
        read_csv_series(tmp_path / "c.csv")
    (tmp_path / "t.ts").write_text("@problemName x\n@data\n1,2:3:a\n")
    with pytest.raises(DataError, match=r"t.ts:3: expected channels of equal length"):
        read_ts(tmp_path / "t.ts")
    (tmp_path / "j.json").write_text('{"train": [[[60]]], "valid": [], "test": [[[200]]]}')
    with pytest.raises(DataError, match=r"test\[0\]\[0\]: pitch 200 outside"):
        read_jsb_chorales(tmp_path / "j.json")


@needs_shared
def test_real_datasets_have_their_documented_sizes():
    assert len(read_text(SHARED / "tinyshakespeare/input.txt")) == 1_115_394
    assert len(read_conllu(SHARED / "ud_english_ewt/en_ewt-ud-train.conllu")) == 12_544
    sents, labels = read_sst(SHARED / "sst/stsa.binary.train")
    assert len(sents) == 6_920 and set(labels.tolist()) == {0, 1}
    assert read_csv_series(SHARED / "timeseries/monthly-sunspots.csv").shape == (2_820,)
    series, labels = read_ts(SHARED / "japanese_vowels/JapaneseVowels_TRAIN.ts")
    assert len(series) == 270 and all(s.shape[1] == 12 for s in series) and len(set(labels)) == 9
    jsb = read_jsb_chorales(SHARED / "jsb_chorales/jsb-chorales-quarter.json")
    assert [len(jsb[k]) for k in ("train", "valid", "test")] == [229, 76, 77]


def test_lines_split_at_line_feeds_only(tmp_path):
    """A review corpus converted from Latin-1 can hold U+0085 (NEL) inside a sentence."""
    from rnnlab.data import read_sst, split_lines
    p = tmp_path / "s.txt"
    p.write_text("1 a fine\u0085 film\r\n0 a dull\u2028 one\n", encoding="utf-8")
    sents, labels = read_sst(p)
    assert labels.tolist() == [1, 0] and sents == [["a", "fine", "film"], ["a", "dull", "one"]]
    assert split_lines("a\nb\n") == ["a", "b"] and split_lines("a\x0cb") == ["a\x0cb"]
