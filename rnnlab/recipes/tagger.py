"""Sequence labelling: part-of-speech tags from CoNLL-U files, named entities from two-column
CoNLL files (IOB2), Chinese word segmentation from segmented text (characters tagged B/M/E/S).

What a file holds is read from the tagging `scheme`: "none" reads CoNLL-U (`column`) or
token<TAB>tag files, "iob2" token<TAB>tag files, "bmes" segmented sentences
(data.segmentation.read_segmented), whose characters become the tokens. Scores beside token
accuracy: entity precision/recall/F1 by seqeval for "iob2", word precision/recall/F1 (SIGHAN)
for "bmes" (rnnlab.metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _checks as check
from ..data import DataError, Vocab, bucket_batches, read_conll_columns, read_conllu, read_text, split_lines
from ..data.segmentation import bmes, read_segmented, words_from_bmes
from ..errors import ConfigError
from ..layers.crf import CRFParams, allowed_transitions
from ..metrics import entities, entity_scores, segmentation_scores
from ..models.base import RecurrentConfig, Regularisers
from ..models.tagger import Tagger, TaggerConfig, best_tags, bigram_keys
from ..train import TrainConfig, TrainResult, evaluate, train

Sentences = list[tuple[list[str], list[str]]]


@dataclass
class TaggerTask:
    model: Tagger
    train_sents: Sentences
    valid_sents: Sentences
    batch_size: int
    carries_state: bool = False

    def _batches(self, sents, size, rng=None):
        lengths = np.array([len(w) for w, _ in sents])
        return [self.model.make_batch([sents[i][0] for i in b], [sents[i][1] for i in b])
                for b in bucket_batches(lengths, size, rng)]

    def train_batches(self, rng):
        return self._batches(self.train_sents, self.batch_size, rng)

    def valid_batches(self):
        return self._batches(self.valid_sents, 256)

    def valid_metrics(self, model: Tagger) -> dict[str, float]:
        """Entity ("iob2") or word ("bmes") scores of the validation sentences (the trainer's
        `monitor` may pick one, e.g. entity_f1)."""
        return scheme_scores(model, self.valid_sents)


def read_tagged(path: str | Path, scheme: str = "none", column: str = "upos") -> Sentences:
    """(tokens, tags) per sentence of a file, read as `scheme` says (see the module)."""
    if scheme == "bmes":
        return [bmes(words) for words in read_segmented(path)]
    if scheme not in ("none", "iob2"):
        raise ConfigError(f"scheme: expected 'iob2', 'bmes' or 'none', got {scheme!r}")
    if _is_conllu(path):
        if scheme == "iob2":
            raise DataError(f"{path}: a CoNLL-U file; scheme 'iob2' reads token<TAB>tag files")
        return read_conllu(path, column)
    return read_conll_columns(path)


def _is_conllu(path: str | Path) -> bool:
    """A .conllu name, or a first token line of CoNLL-U's 10 tab-separated columns."""
    if str(path).endswith(".conllu"):
        return True
    first = next((line for line in split_lines(read_text(path)) if line.strip() and not line.startswith("#")), "")
    return len(first.split("\t")) == 10


def check_tags(model: Tagger, sents, what: str) -> None:
    unseen = sorted({t for _, tags in sents for t in tags if t not in model.tags})
    if unseen:
        raise DataError(f"{what}: tags {unseen} were not seen in training (known: {model.tags.itos})")


def train_tagger(train_path: str | Path, valid_path: str | Path, run_dir: str | Path = "runs/tagger", *,
                 column: str = "upos", scheme: str = "none", crf: bool = False, cell: str = "lstm",
                 hidden_size: int = 128, num_layers: int = 1, word_dim: int = 100, char_dim: int = 32,
                 char_hidden: int | None = None, bigram_dim: int = 0, lowercase: bool = False, case_dim: int = 0,
                 word_dropout: float = 0.0, dropout: float = 0.25, min_freq: int = 2,
                 embedding_init_std: float = 1.0, batch_size: int = 32, train_config: TrainConfig | None = None,
                 resume: bool = True, progress: bool = True, regularisers: Regularisers | None = None) -> TrainResult:
    """BiLSTM tagger, with a softmax or a CRF (`crf`) on top; words seen fewer than `min_freq`
    times become <unk> (the character model still reads them). `char_hidden` None: 32, or 0
    (no character model) for "bmes", whose tokens are single characters. `bigram_dim` > 0 adds
    embeddings of each token's left and right bigrams (those seen `min_freq` times); `lowercase`,
    `case_dim` and `word_dropout` as models.tagger says; the embeddings start at
    N(0, `embedding_init_std`^2)."""
    check.positive_int(batch_size, "batch_size")
    train_sents = read_tagged(train_path, scheme, column)
    valid_sents = read_tagged(valid_path, scheme, column)
    if char_hidden is None:
        char_hidden = 0 if scheme == "bmes" else 32
    words = Vocab.build(((w.lower() if lowercase else w) for ws, _ in train_sents for w in ws), min_freq=min_freq)
    chars = Vocab.build(c for ws, _ in train_sents for w in ws for c in w)
    tags = Vocab.build((t for _, ts in train_sents for t in ts), specials=())
    if scheme != "none":
        allowed_transitions(tags.itos, scheme)               # every tag of the scheme's form
    cfg = TaggerConfig(word_dim, char_dim, char_hidden,
                       RecurrentConfig.make(cell, hidden_size, num_layers, 0.0, True, regularisers), dropout,
                       crf, scheme, bigram_dim, lowercase, case_dim, word_dropout, embedding_init_std)
    bigrams = (Vocab.build((k for ws, _ in train_sents for k in bigram_keys(ws)), min_freq=min_freq)
               if bigram_dim else None)
    tc = train_config or TrainConfig()
    model = Tagger(words, chars, tags, cfg, bigrams=bigrams, rng=tc.seed)
    check_tags(model, valid_sents, str(valid_path))
    return train(model, TaggerTask(model, train_sents, valid_sents, batch_size), tc, run_dir,
                 resume=resume, progress=progress)


def _predict_all(model: Tagger | list[Tagger], sents: list[list[str]], size: int = 256) -> list[list[str]]:
    """Tags of every sentence by one model or an ensemble (`predict_ensemble`), in batches of
    similar lengths."""
    predict = model.predict if isinstance(model, Tagger) else lambda s: predict_ensemble(model, s)
    out: list[list[str] | None] = [None] * len(sents)
    for b in bucket_batches(np.array([len(s) for s in sents]), size):
        for i, tags in zip(b, predict([sents[i] for i in b])):
            out[i] = tags
    return out


def _check_members(models: list[Tagger]) -> Tagger:
    """The first of several taggers that share their tags, scheme and output layer."""
    if not models:
        raise DataError("models: expected at least one tagger, got none")
    first = models[0]
    for m in models[1:]:
        if (m.tags.itos, m.cfg.scheme, m.crf is None) != (first.tags.itos, first.cfg.scheme, first.crf is None):
            raise DataError(f"models: members must share their tags, scheme and CRF or softmax head; got "
                            f"{first.tags.itos} {first.cfg.scheme!r} crf={first.crf is not None} and "
                            f"{m.tags.itos} {m.cfg.scheme!r} crf={m.crf is not None}")
    return first


def predict_ensemble(models: list[Tagger], sentences: list[list[str]]) -> list[list[str]]:
    """Tags of each sentence by the members' normalised geometric mean. CRF taggers: their
    emissions and transition scores averaged, then one Viterbi path (the product of linear-chain
    CRFs' path distributions, renormalised, is the CRF with the averaged scores). Softmax
    taggers: each token's log-probabilities averaged."""
    first = _check_members(models)
    scored = [m.tag_scores(sentences) for m in models]
    mean = np.mean([e for e, _ in scored], axis=0)                    # (T, B, K)
    lengths = scored[0][1]
    crf = None
    if first.crf is not None:                                           # the CRF scores averaged too
        params = [m.crf.params() for m in models]
        crf = CRFParams(*(np.mean([getattr(p, f) for p in params], axis=0) for f in ("start", "end", "trans")))
    best = best_tags(mean, lengths, crf)                                # (T, B)
    return [first.tags.decode(best[:len(s), b]) for b, s in enumerate(sentences)]


def evaluate_tagger_ensemble(models: list[Tagger], data_path: str | Path, *,
                             known: set[str] | None = None) -> dict:
    """The ensemble's token accuracy and entity or word scores (`predict_ensemble`), and each
    member's own (`evaluate_tagger`) under "members"."""
    first = _check_members(models)
    sents = read_tagged(data_path, first.cfg.scheme)
    check_tags(first, sents, str(data_path))
    predicted = _predict_all(models, [s for s, _ in sents])
    gold = [t for _, t in sents]
    right = sum(p == g for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs))
    out = {"accuracy": right / sum(len(g) for g in gold), **scheme_scores(first, sents, known, predicted)}
    return {**out, "members": [evaluate_tagger(m, data_path, known=known) for m in models]}


def evaluate_tagger(model: Tagger, data_path: str | Path, *, known: set[str] | None = None) -> dict[str, float]:
    """Loss and token accuracy; entity precision/recall/F1 ("iob2") or word precision/recall/F1
    ("bmes", with OOV recall when `known`, the training words, is given)."""
    scheme = model.cfg.scheme
    sents = read_tagged(data_path, scheme)
    check_tags(model, sents, str(data_path))
    out = evaluate(model, TaggerTask(model, [], sents, 256).valid_batches(), False)
    return {**out, **scheme_scores(model, sents, known)}


def scheme_scores(model: Tagger, sents: Sentences, known: set[str] | None = None,
                  predicted: list[list[str]] | None = None) -> dict[str, float]:
    """entity_* ("iob2") or word_* ("bmes") scores of the model's predictions (or of those
    given, an ensemble's); none for "none"."""
    scheme = model.cfg.scheme
    if scheme == "none":
        return {}
    if predicted is None:
        predicted = _predict_all(model, [s for s, _ in sents])
    if scheme == "iob2":
        scores = entity_scores([t for _, t in sents], predicted)
        return {f"entity_{k}": v for k, v in scores.items()}
    gold = [words_from_bmes(c, t) for c, t in sents]
    scores = segmentation_scores(gold, [words_from_bmes(c, t) for (c, _), t in zip(sents, predicted)], known)
    return {f"word_{k}": v for k, v in scores.items()}


def segment(model: Tagger, lines: list[str]) -> list[str]:
    """Raw text -> words separated by spaces; spaces already in a line stay word boundaries."""
    if model.cfg.scheme != "bmes":
        raise ConfigError(f"segment: a word segmenter (scheme 'bmes') is needed, this tagger's scheme is "
                          f"{model.cfg.scheme!r}")
    chunks = [line.split() for line in lines]
    chars = [list("".join(c)) for c in chunks]
    keep = [i for i, c in enumerate(chars) if c]
    tags = _predict_all(model, [chars[i] for i in keep]) if keep else []
    out = [""] * len(lines)
    for i, t in zip(keep, tags):
        words, breaks, at = [], set(), 0
        for c in chunks[i]:
            at += len(c)
            breaks.add(at)
        at = 0
        for w in words_from_bmes(chars[i], t):              # cut again where the input had a space
            start = at
            for k in range(start + 1, start + len(w)):
                if k in breaks:
                    words.append("".join(chars[i][start:k]))
                    start = k
            words.append("".join(chars[i][start:at + len(w)]))
            at += len(w)
        out[i] = " ".join(words)
    return out


def predict_tagger(model: Tagger, lines: list[str]) -> list[str]:
    """Each line's tokens with their tags (`word/TAG`); for "iob2" taggers the line with each
    entity marked `[type: its words]`; for "bmes" the line segmented."""
    if model.cfg.scheme == "bmes":
        return segment(model, lines)
    sents = [line.split() for line in lines if line.strip()]
    if not sents:
        raise DataError("predict: no sentences in the input")
    tagged = _predict_all(model, sents)
    if model.cfg.scheme == "iob2":
        return [_marked(s, tags) for s, tags in zip(sents, tagged)]
    return [" ".join(f"{w}/{t}" for w, t in zip(s, tags)) for s, tags in zip(sents, tagged)]


def _marked(tokens: list[str], tags: list[str]) -> str:
    """The sentence with each entity span bracketed with its type."""
    out, at = [], 0
    for kind, a, b in entities(tags):
        out += tokens[at:a] + [f"[{kind}: {' '.join(tokens[a:b + 1])}]"]
        at = b + 1
    return " ".join(out + tokens[at:])
