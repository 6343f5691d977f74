"""Sentence pairs for translation: reading, tokenising, the PyTorch tutorial's filter, a split
that keeps every translation of one sentence on the same side, and batches.

Tokens are words and punctuation marks (`tokenize`): lower-cased, accents kept, apostrophes
and hyphens inside words kept ("aujourd'hui", "peut-être", "i'm"), French elided forms ("j'",
"l'", "qu'", ...) split off as tokens of their own. Detokenising (`detokenize`) joins them back the way sacrebleu's
13a tokenizer splits them again, so BLEU on detokenised output scores the words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batching import bucket_batches, pad_sequences
from .readers import DataError
from .vocab import Vocab

# the PyTorch tutorial's English prefixes ("translation with a sequence to sequence network")
TUTORIAL_PREFIXES = ("i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ",
                     "we are", "we re ", "they are", "they re ")
_TOKEN = re.compile(r"\w+(?:[-']\w+)*'?|[^\w\s]", re.UNICODE)
_ELIDED = re.compile(r"^((?:j|l|d|m|t|s|n|c|qu|jusqu|lorsqu|puisqu)')(\w.*)$", re.UNICODE)  # j'ai -> j' ai


@dataclass
class Pair:
    source: str
    target: str
    group: str                                   # pairs of one group stay on one side of a split


def read_pairs(path: str | Path, reverse: bool = False, limit: int | None = None) -> list[Pair]:
    """`source<TAB>target[<TAB>...]` lines (the Tatoeba/manythings format); `reverse` swaps the
    columns. The group of a pair is its English side, the first column, lower-cased."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"pairs: cannot read {p} as UTF-8 text ({exc.__class__.__name__})") from None
    pairs = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            raise DataError(f"pairs: line {n} of {p}: expected source<TAB>target, got {line[:60]!r}")
        a, b = cols[0].strip(), cols[1].strip()
        pairs.append(Pair(b, a, a.lower()) if reverse else Pair(a, b, a.lower()))
        if limit is not None and len(pairs) >= limit:
            break
    if not pairs:
        raise DataError(f"pairs: no sentence pairs in {p}")
    return pairs


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks; elided forms (j', l', qu') split off."""
    text = unicodedata.normalize("NFC", text.replace("\u2019", "'")).lower()
    out = []
    for tok in _TOKEN.findall(text):
        m = _ELIDED.match(tok)
        out += [m.group(1), m.group(2)] if m else [tok]
    return out


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens back to a sentence: no space before . , ! ? ; : ) or after ( and elisions."""
    out = ""
    for tok in tokens:
        if out and not (tok in ".,!?;:)%" or out.endswith(("'", "(")) or tok == "'"):
            out += " "
        out += tok
    return out


def tutorial_filter(pairs: list[Pair], max_tokens: int = 10, english_side: str = "target") -> list[Pair]:
    """The PyTorch tutorial's pairs: both sides under `max_tokens` tokens (its own tokens: ASCII
    words and . ! ?) and the English side starting with one of TUTORIAL_PREFIXES. This is the
    tutorial's filter that leaves 10,599 of eng-fra.txt's 135,842 pairs; its current version
    also drops "." (11,445 pairs)."""
    def norm(s: str) -> str:                                     # its normalizeString
        s = "".join(c for c in unicodedata.normalize("NFD", s.lower().strip()) if unicodedata.category(c) != "Mn")
        s = re.sub(r"([.!?])", r" \1", s)
        return re.sub(r"[^a-zA-Z.!?]+", r" ", s).strip()
    kept = []
    for p in pairs:
        src, tgt = norm(p.source), norm(p.target)
        english = tgt if english_side == "target" else src
        if len(src.split(" ")) < max_tokens and len(tgt.split(" ")) < max_tokens and english.startswith(TUTORIAL_PREFIXES):
            kept.append(p)
    return kept


def split_pairs(pairs: list[Pair], fractions: tuple[float, float] = (0.1, 0.1), seed: int = 0
                ) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(train, valid, test): whole groups (every translation of one English sentence) go to one
    side, drawn by a seeded shuffle of the groups; `fractions` of the groups for valid and test."""
    groups = sorted({p.group for p in pairs})
    order = np.random.default_rng(seed).permutation(len(groups))
    n_valid, n_test = (int(round(f * len(groups))) for f in fractions)
    side = {}
    for rank, i in enumerate(order):
        side[groups[i]] = 1 if rank < n_valid else 2 if rank < n_valid + n_test else 0
    parts: tuple[list, list, list] = ([], [], [])
    for p in pairs:
        parts[side[p.group]].append(p)
    return parts


def pair_vocabs(tokenised: list[tuple[list[str], list[str]]], min_freq: int = 1,
                max_size: int | None = None) -> tuple[Vocab, Vocab]:
    """Source vocabulary (<pad>, <unk>, words) and target vocabulary (<pad>, <unk>, <bos>,
    <eos>, words), by falling frequency."""
    src = Vocab.build((t for s, _ in tokenised for t in s), min_freq, max_size)
    tgt = Vocab.build((t for _, s in tokenised for t in s), min_freq, max_size,
                      specials=("<pad>", "<unk>", "<bos>", "<eos>"))
    return src, tgt


def encode_pairs(tokenised: list[tuple[list[str], list[str]]], src: Vocab, tgt: Vocab):
    """Token lists -> (source ids, target ids) arrays per pair."""
    return [(src.encode(s, "source tokens"), tgt.encode(t, "target tokens")) for s, t in tokenised]


def translation_batch(pairs_ids, bos: int, eos: int):
    """A TranslationBatch of (source ids, target ids) pairs, padded with 0."""
    from ..models.translator import TranslationBatch
    src, src_len = pad_sequences([s for s, _ in pairs_ids])
    tgt_in, tgt_len = pad_sequences([np.r_[bos, t] for _, t in pairs_ids])
    tgt_out, _ = pad_sequences([np.r_[t, eos] for _, t in pairs_ids])
    return TranslationBatch(src, src_len, tgt_in, tgt_out, tgt_len)


def bucketed_batches(pairs_ids, bos: int, eos: int, size: int, rng: np.random.Generator | None = None):
    """TranslationBatches of `size` pairs of similar source lengths (shuffled with `rng`)."""
    lengths = np.array([len(s) for s, _ in pairs_ids])
    return [translation_batch([pairs_ids[i] for i in b], bos, eos) for b in bucket_batches(lengths, size, rng)]
