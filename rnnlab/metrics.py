"""Scores of labelled sequences beyond token accuracy.

- Named entities: entity-level precision, recall and F1 over IOB2 spans, by `seqeval` (the
  conlleval definition every NER paper reports; an optional extra, `pip install rnnlab[ner]`).
- Word segmentation: word-level precision, recall and F1 as the SIGHAN bakeoff scores them: a
  predicted word is right when both its boundaries are those of a gold word (Emerson 2005),
  and the recall of the gold words unseen in training (OOV recall).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .data import DataError
from .errors import ConfigError


def _seqeval():
    try:
        import seqeval.metrics
    except ImportError:
        raise ConfigError("entity spans and scores need seqeval: pip install 'rnnlab[ner]'") from None
    return seqeval.metrics


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """{"precision", "recall", "f1"} (in %) of the entities in IOB2 tag sequences, by seqeval."""
    m = _seqeval()
    _same_lengths(gold, predicted)
    gold, predicted = [list(g) for g in gold], [list(p) for p in predicted]
    return {"precision": 100 * float(m.precision_score(gold, predicted, zero_division=0)),
            "recall": 100 * float(m.recall_score(gold, predicted, zero_division=0)),
            "f1": 100 * float(m.f1_score(gold, predicted, zero_division=0))}


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first, last) token index of each entity of an IOB2 sequence, as seqeval reads it."""
    return [(kind, a, b) for kind, a, b in _seqeval().sequence_labeling.get_entities(list(tags))]


def _same_lengths(gold: Sequence[Sequence], predicted: Sequence[Sequence]) -> None:
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise DataError(f"predicted: expected {len(gold)} sequences as long as the gold ones, "
                        f"got {len(predicted)} of other lengths")


def _spans(words: Sequence[str]) -> list[tuple[int, int]]:
    """Each word's (start, end) character offsets."""
    out, at = [], 0
    for w in words:
        out.append((at, at + len(w)))
        at += len(w)
    return out


def segmentation_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                        known: Iterable[str] | None = None) -> dict[str, float]:
    """Word precision, recall and F1 (in %) of segmentations of the same sentences; with
    `known` (the training words) also the recall of the unknown gold words, "oov_recall"."""
    known = set(known) if known is not None else None
    right = n_gold = n_pred = oov = oov_right = 0
    if len(gold) != len(predicted):
        raise DataError(f"predicted: expected {len(gold)} sentences, got {len(predicted)}")
    for g, p in zip(gold, predicted):
        if "".join(g) != "".join(p):
            raise DataError(f"predicted: a segmentation of {''.join(g)!r} expected, got one of {''.join(p)!r}")
        ps = set(_spans(p))
        for w, span in zip(g, _spans(g)):
            hit = span in ps
            right += hit
            if known is not None and w not in known:
                oov, oov_right = oov + 1, oov_right + hit
        n_gold, n_pred = n_gold + len(g), n_pred + len(p)
    precision = 100 * right / max(n_pred, 1)
    recall = 100 * right / max(n_gold, 1)
    out = {"precision": precision, "recall": recall,
           "f1": 2 * precision * recall / (precision + recall) if right else 0.0}
    if known is not None:
        out["oov_recall"] = 100 * oov_right / max(oov, 1)
        out["oov_rate"] = 100 * oov / max(n_gold, 1)
    return out


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions between them."""
    prev = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, start=1):
        cur = [i]
        for j, h in enumerate(hypothesis, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))   # delete, insert, substitute
        prev = cur
    return prev[-1]


def label_error_rate(references: Sequence[Sequence], hypotheses: Sequence[Sequence]) -> dict[str, float]:
    """Edit distance over labels (digits, characters) summed and divided by the reference
    labels ("error_rate", in %), and the share of sequences exactly right ("sequence_accuracy")."""
    if len(references) != len(hypotheses):
        raise DataError(f"hypotheses: expected {len(references)} sequences, got {len(hypotheses)}")
    edits = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    labels = sum(len(r) for r in references)
    exact = sum(list(r) == list(h) for r, h in zip(references, hypotheses))
    return {"error_rate": 100 * edits / max(labels, 1), "sequence_accuracy": 100 * exact / max(len(references), 1)}
