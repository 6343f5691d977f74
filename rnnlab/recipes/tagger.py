"""Sequence labelling (POS tagging) from CoNLL-U files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _checks as check
from ..data import DataError, Vocab, bucket_batches, read_conllu
from ..models.base import RecurrentConfig, Regularisers
from ..models.tagger import Tagger, TaggerConfig
from ..train import TrainConfig, TrainResult, evaluate, train


@dataclass
class TaggerTask:
    model: Tagger
    train_sents: list[tuple[list[str], list[str]]]
    valid_sents: list[tuple[list[str], list[str]]]
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


def check_tags(model: Tagger, sents, what: str) -> None:
    unseen = sorted({t for _, tags in sents for t in tags if t not in model.tags})
    if unseen:
        raise DataError(f"{what}: tags {unseen} were not seen in training (known: {model.tags.itos})")


def train_tagger(train_path: str | Path, valid_path: str | Path, run_dir: str | Path = "runs/tagger", *,
                 column: str = "upos", cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1,
                 word_dim: int = 100, char_dim: int = 32, char_hidden: int = 32, dropout: float = 0.25,
                 min_freq: int = 2, batch_size: int = 32, train_config: TrainConfig | None = None,
                 resume: bool = True, progress: bool = True,
                 regularisers: Regularisers | None = None) -> TrainResult:
    """BiLSTM tagger on CoNLL-U files; words seen fewer than `min_freq` times become <unk>
    (the character model still reads them)."""
    check.positive_int(batch_size, "batch_size")
    train_sents = read_conllu(train_path, column)
    valid_sents = read_conllu(valid_path, column)
    words = Vocab.build((w for ws, _ in train_sents for w in ws), min_freq=min_freq)
    chars = Vocab.build(c for ws, _ in train_sents for w in ws for c in w)
    tags = Vocab.build((t for _, ts in train_sents for t in ts), specials=())
    cfg = TaggerConfig(word_dim, char_dim, char_hidden,
                       RecurrentConfig.make(cell, hidden_size, num_layers, 0.0, True, regularisers), dropout)
    tc = train_config or TrainConfig()
    model = Tagger(words, chars, tags, cfg, rng=tc.seed)
    check_tags(model, valid_sents, str(valid_path))
    return train(model, TaggerTask(model, train_sents, valid_sents, batch_size), tc, run_dir,
                 resume=resume, progress=progress)


def evaluate_tagger(model: Tagger, data_path: str | Path) -> dict[str, float]:
    sents = read_conllu(data_path, "upos")
    check_tags(model, sents, str(data_path))
    return evaluate(model, TaggerTask(model, [], sents, 256).valid_batches(), False)


def predict_tagger(model: Tagger, lines: list[str]) -> list[str]:
    sents = [line.split() for line in lines if line.strip()]
    if not sents:
        raise DataError("predict: no sentences in the input")
    return [" ".join(f"{w}/{t}" for w, t in zip(s, tags)) for s, tags in zip(sents, model.predict(sents))]
