"""Chinese word segmentation as tagging: words <-> characters with B/M/E/S tags, and the
segmented files it trains on.

A segmented file is one of: CoNLL-U (the FORM column gives the words; multiword-token ranges
and empty nodes skipped), the Universal NER / UD-style columns `id<TAB>word<TAB>...` with `#`
comments, or one sentence a line with its words separated by spaces (the SIGHAN bakeoff
format).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .readers import DataError, read_conllu, read_text, split_lines


def bmes(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """Characters and their B/M/E/S tags: a word's Begin, Middle, End, or a Single character."""
    chars, tags = [], []
    for w in words:
        chars.extend(w)
        tags.extend(["S"] if len(w) == 1 else ["B", *["M"] * (len(w) - 2), "E"])
    return chars, tags


def words_from_bmes(chars: Sequence[str], tags: Sequence[str]) -> list[str]:
    """Words from characters and BMES tags; a word starts at every B or S (and at M or E after
    E or S, which a softmax may predict), and ends after every E or S."""
    if len(chars) != len(tags):
        raise DataError(f"tags: expected one tag per character ({len(chars)}), got {len(tags)}")
    words, current, closed = [], "", True
    for c, t in zip(chars, tags):
        if t in ("B", "S") or closed:
            if current:
                words.append(current)
            current = ""
        current += c
        closed = t in ("E", "S")
    if current:
        words.append(current)
    return words


def read_segmented(path: str | Path) -> list[list[str]]:
    """The words of every sentence of a segmented file (see the module's formats)."""
    if str(path).endswith(".conllu"):
        return [words for words, _ in read_conllu(path, column=None)]
    lines = split_lines(read_text(path))
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    if body and "\t" in body[0]:                                # id TAB word TAB ...
        sentences, words = [], []
        for n, line in enumerate(lines, start=1):
            if line.startswith("#"):
                continue
            if not line.strip():
                if words:
                    sentences.append(words)
                words = []
                continue
            cols = line.split("\t")
            if len(cols) < 2 or not cols[1].strip():
                raise DataError(f"{path}:{n}: expected id<TAB>word<TAB>..., got {line[:60]!r}")
            if "-" in cols[0] or "." in cols[0]:               # multiword ranges, empty nodes
                continue
            words.append(cols[1].strip())
        if words:
            sentences.append(words)
    else:
        sentences = [line.split() for line in body]
    if not sentences:
        raise DataError(f"{path}: no sentences")
    return sentences
