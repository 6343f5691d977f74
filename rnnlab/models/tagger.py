"""Sequence tagger (one label per word): word embeddings plus a character-level BiLSTM over
each word's letters (so unknown words still get a representation; Plank et al. 2016), then a
bidirectional recurrent net over the sentence and a softmax per word."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks as check
from ..data.batching import pad_sequences
from ..data.vocab import Vocab
from ..init import make_rng
from ..layers import Dense, Dropout, Embedding
from ..losses import softmax_cross_entropy
from ..networks import LSTM
from .base import (Model, RecurrentConfig, config_from_dict, dataclass_dict, make_rnn,
                   rnn_parameter_floor)


@dataclass
class TaggerConfig:
    word_dim: int = 100
    char_dim: int = 32
    char_hidden: int = 32                     # 0: no character model
    rnn: RecurrentConfig = field(default_factory=lambda: RecurrentConfig("lstm", 128, 1, bidirectional=True))
    dropout: float = 0.25

    def __post_init__(self) -> None:
        if not isinstance(self.rnn, RecurrentConfig):
            self.rnn = config_from_dict(RecurrentConfig, self.rnn, "rnn")
        check.probability(self.dropout, "dropout")
        check.positive_int(self.word_dim, "word_dim")
        check.positive_int(self.char_dim, "char_dim")
        check.positive_int(self.char_hidden, "char_hidden", allow_zero=True)


@dataclass
class TagBatch:
    words: np.ndarray                         # (T, B) word ids
    lengths: np.ndarray                       # (B,)
    tags: np.ndarray                          # (T, B) tag ids (0 on padding)
    chars: np.ndarray | None = None           # (Tc, W) char ids of the batch's distinct words
    char_lengths: np.ndarray | None = None    # (W,)
    word_index: np.ndarray | None = None      # (T, B) row of each token in `chars`


class Tagger(Model):
    kind = "tagger"

    def __init__(self, words: Vocab, chars: Vocab, tags: Vocab, cfg: TaggerConfig, *,
                 dtype: object = np.float32, rng: np.random.Generator | int | None = None) -> None:
        self.words, self.chars, self.tags, self.cfg = words, chars, tags, cfg
        self.dtype = check.as_dtype(dtype)
        self.rng = make_rng(rng)
        self.word_emb = Embedding(len(words), cfg.word_dim, padding_idx=words.pad_id, dtype=self.dtype, rng=self.rng)
        d_in = cfg.word_dim
        self.char_emb = self.char_rnn = None
        if cfg.char_hidden:
            self.char_emb = Embedding(len(chars), cfg.char_dim, padding_idx=chars.pad_id, dtype=self.dtype, rng=self.rng)
            self.char_rnn = LSTM(cfg.char_dim, cfg.char_hidden, bidirectional=True, dtype=self.dtype, rng=self.rng)
            d_in += 2 * cfg.char_hidden
        self.rnn = make_rnn(cfg.rnn, d_in, self.dtype, self.rng)
        width = cfg.rnn.hidden_size * (2 if cfg.rnn.bidirectional else 1)
        self.head = Dense(width, len(tags), dtype=self.dtype, rng=self.rng)
        self.dropouts = (Dropout(cfg.dropout, self.rng), Dropout(cfg.dropout, self.rng))

    def modules(self):
        mods = [("word_embedding", self.word_emb)]
        if self.char_rnn is not None:
            mods += [("char_embedding", self.char_emb), ("char_rnn", self.char_rnn)]
        return mods + [("rnn", self.rnn), ("head", self.head)]

    def config(self) -> dict:
        return {"model": dataclass_dict(self.cfg), "words": self.words.to_json(),
                "chars": self.chars.to_json(), "tags": self.tags.to_json()}

    @classmethod
    def from_config(cls, config: dict, dtype: object = np.float32) -> "Tagger":
        return cls(Vocab.from_json(config["words"]), Vocab.from_json(config["chars"]),
                   Vocab.from_json(config["tags"]), config_from_dict(TaggerConfig, config["model"], "model"),
                   dtype=dtype, rng=0)

    @classmethod
    def parameter_floor(cls, config: dict) -> int:
        cfg = config_from_dict(TaggerConfig, config["model"], "model")
        words, chars, tags = (len(Vocab.from_json(config[k])) for k in ("words", "chars", "tags"))
        Hc, rc = cfg.char_hidden, cfg.rnn
        char = (chars * cfg.char_dim + 2 * Hc * (cfg.char_dim + Hc)) if Hc else 0
        width = rc.hidden_size * (2 if rc.bidirectional else 1)
        return words * cfg.word_dim + char + rnn_parameter_floor(rc, cfg.word_dim + 2 * Hc) + width * tags

    def make_batch(self, sentences: list[list[str]], tags: list[list[str]] | None = None) -> TagBatch:
        """Ids, lengths and the character view of a list of tokenised sentences."""
        words, lengths = pad_sequences([self.words.encode(s, "words") for s in sentences],
                                       pad=self.words.pad_id or 0)
        tag_ids = (pad_sequences([self.tags.encode(t, "tags") for t in tags], pad=0)[0]
                   if tags is not None else np.zeros_like(words))
        batch = TagBatch(words, lengths, tag_ids)
        if self.char_rnn is not None:
            distinct = sorted({w for s in sentences for w in s})
            row = {w: i for i, w in enumerate(distinct)}
            batch.chars, batch.char_lengths = pad_sequences(
                [self.chars.encode(w, "characters") for w in distinct], pad=self.chars.pad_id or 0)
            index = np.zeros(words.shape, dtype=np.int64)
            for b, s in enumerate(sentences):
                index[:len(s), b] = [row[w] for w in s]
            batch.word_index = index
        return batch

    def _features(self, batch: TagBatch, keep_cache: bool) -> np.ndarray:
        e = self.word_emb(batch.words)                                   # (T, B, Ew)
        if self.char_rnn is None:
            return e
        _, (h, _) = self.char_rnn.forward(self.char_emb(batch.chars), None, batch.char_lengths,
                                          keep_cache=keep_cache)         # h (2, W, Hc)
        per_word = np.concatenate([h[0], h[1]], axis=-1)                 # (W, 2Hc)
        return np.concatenate([e, per_word[batch.word_index]], axis=-1)  # (T, B, Ew + 2Hc)

    def _logits(self, batch: TagBatch, keep_cache: bool) -> np.ndarray:
        x = self.dropouts[0](self._features(batch, keep_cache))
        out, _ = self.rnn.forward(x, None, batch.lengths, keep_cache=keep_cache)
        return self.head(self.dropouts[1](out))                          # (T, B, K)

    def forward_backward(self, batch: TagBatch, carry=None):
        logits = self._logits(batch, True)
        mask = np.arange(len(logits))[:, None] < batch.lengths[None, :]  # (T, B)
        loss, dlogits = softmax_cross_entropy(logits, batch.tags, mask)
        dx, _ = self.rnn.backward(self.dropouts[1].backward(self.head.backward(dlogits)))
        dx = self.dropouts[0].backward(dx)
        Ew = self.cfg.word_dim
        self.word_emb.backward(dx[..., :Ew])
        if self.char_rnn is not None:
            Hc = self.cfg.char_hidden
            dword = np.zeros((len(batch.char_lengths), 2 * Hc), dtype=self.dtype)
            np.add.at(dword, batch.word_index[mask], dx[..., Ew:][mask])   # tokens -> distinct words
            dh = np.stack([dword[:, :Hc], dword[:, Hc:]])                 # (2, W, Hc)
            dchars, _ = self.char_rnn.backward(None, (dh, np.zeros_like(dh)))
            self.char_emb.backward(dchars)
        n = int(mask.sum())
        return loss * n, n, None

    def evaluate_batch(self, batch: TagBatch, carry=None):
        logits = self._logits(batch, False)
        mask = np.arange(len(logits))[:, None] < batch.lengths[None, :]
        loss, _ = softmax_cross_entropy(logits, batch.tags, mask, grad=False)
        n = int(mask.sum())
        correct = float(((logits.argmax(-1) == batch.tags) & mask).sum())
        return {"loss": loss * n, "accuracy": correct}, n, None

    def predict(self, sentences: list[list[str]]) -> list[list[str]]:
        batch = self.make_batch(sentences)
        best = self._logits(batch, False).argmax(-1)                     # (T, B)
        return [self.tags.decode(best[:len(s), b]) for b, s in enumerate(sentences)]
