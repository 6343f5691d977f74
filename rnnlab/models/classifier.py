"""Many-to-one sequence classifier: tokens (or feature vectors) -> recurrent net over each
sequence's own length -> last state or pooled outputs -> class scores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks as check
from ..data.vocab import Vocab
from ..init import make_rng
from ..layers import Dense, Dropout, Embedding
from ..losses import softmax_cross_entropy
from ..errors import ConfigError
from .base import (Model, RecurrentConfig, config_from_dict, dataclass_dict, last_layer_state,
                   last_layer_state_grad, make_rnn, rnn_parameter_floor)

POOLINGS = ("last", "mean", "max")


@dataclass
class ClassifierConfig:
    num_classes: int = 2
    input_size: int = 0                       # > 0: feature vectors of this size; 0: token ids
    embedding_dim: int = 128
    rnn: RecurrentConfig = field(default_factory=RecurrentConfig)
    pooling: str = "last"
    dropout: float = 0.0                      # on embeddings and on the pooled vector
    feature_mean: list[float] | None = None   # feature input: normalisation from training data
    feature_std: list[float] | None = None
    word_dropout: float = 0.0                 # training: each token becomes <unk> with this probability
    embedding_init_std: float = 1.0           # N(0, std^2) embeddings (torch's default: 1)

    def __post_init__(self) -> None:
        if not isinstance(self.rnn, RecurrentConfig):
            self.rnn = config_from_dict(RecurrentConfig, self.rnn, "rnn")
        check.choice(self.pooling, "pooling", POOLINGS)
        check.positive_int(self.num_classes, "num_classes")
        check.positive_int(self.input_size, "input_size", allow_zero=True)
        check.positive_int(self.embedding_dim, "embedding_dim")
        check.probability(self.dropout, "dropout")
        check.probability(self.word_dropout, "word_dropout")


def pool_forward(out: np.ndarray, lengths: np.ndarray, how: str):
    """out (T, B, F) over valid steps -> (B, F), and what backward needs."""
    T = out.shape[0]
    valid = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]      # (T, B, 1)
    if how == "mean":
        return out.sum(0) / np.maximum(lengths, 1).astype(out.dtype)[:, None], valid
    masked = np.where(valid, out, -np.inf)
    arg = masked.argmax(0)                                              # (B, F)
    return np.take_along_axis(out, arg[None], 0)[0], arg


def pool_backward(dpooled: np.ndarray, saved, lengths: np.ndarray, how: str, T: int) -> np.ndarray:
    B, F = dpooled.shape
    if how == "mean":
        n = np.maximum(lengths, 1).astype(dpooled.dtype)[:, None]       # (B, 1)
        return saved * (dpooled / n)[None]                              # spread over valid steps
    dout = np.zeros((T, B, F), dtype=dpooled.dtype)
    np.put_along_axis(dout, saved[None], dpooled[None], 0)              # only the max step
    return dout


class SequenceClassifier(Model):
    kind = "sequence_classifier"
    batch_axes = (1, 0, 0)                    # x (T, B[, C]), lengths (B,), y (B,)

    def __init__(self, vocab: Vocab | None, cfg: ClassifierConfig, labels: list[str], *,
                 dtype: object = np.float32, rng: np.random.Generator | int | None = None) -> None:
        self.vocab, self.cfg, self.labels = vocab, cfg, list(labels)
        self.dtype = check.as_dtype(dtype)
        self.rng = make_rng(rng)
        if (vocab is None) == (cfg.input_size == 0):
            raise ConfigError("vocab: give a vocabulary for token input (input_size=0), none for features")
        d_in = cfg.input_size or cfg.embedding_dim
        self.embedding = Embedding(len(vocab), cfg.embedding_dim, padding_idx=vocab.pad_id,
                                   dtype=self.dtype, rng=self.rng,
                                   init_std=cfg.embedding_init_std) if vocab is not None else None
        self.rnn = make_rnn(cfg.rnn, d_in, self.dtype, self.rng)
        width = cfg.rnn.hidden_size * (2 if cfg.rnn.bidirectional else 1)
        self.head = Dense(width, cfg.num_classes, dtype=self.dtype, rng=self.rng)
        self.dropouts = (Dropout(cfg.dropout, self.rng), Dropout(cfg.dropout, self.rng))

    def modules(self):
        mods = [("rnn", self.rnn), ("head", self.head)]
        return ([("embedding", self.embedding)] + mods) if self.embedding is not None else mods

    def config(self) -> dict:
        return {"model": dataclass_dict(self.cfg), "labels": self.labels,
                "vocab": self.vocab.to_json() if self.vocab is not None else None}

    @classmethod
    def from_config(cls, config: dict, dtype: object = np.float32) -> "SequenceClassifier":
        vocab = Vocab.from_json(config["vocab"]) if config.get("vocab") is not None else None
        return cls(vocab, config_from_dict(ClassifierConfig, config["model"], "model"),
                   config["labels"], dtype=dtype, rng=0)

    @classmethod
    def parameter_floor(cls, config: dict) -> int:
        cfg = config_from_dict(ClassifierConfig, config["model"], "model")
        rc = cfg.rnn
        V = len(Vocab.from_json(config["vocab"])) if config.get("vocab") is not None else 0
        width = rc.hidden_size * (2 if rc.bidirectional else 1)
        return (V * cfg.embedding_dim + rnn_parameter_floor(rc, cfg.input_size or cfg.embedding_dim)
                + width * cfg.num_classes)

    def _encode(self, x: np.ndarray, lengths: np.ndarray, keep_cache: bool):
        if self.embedding is not None and self.training and self.cfg.word_dropout > 0:
            drop = self.rng.random(x.shape) < self.cfg.word_dropout          # whole words -> <unk>
            x = np.where(drop, self.vocab.unk_id, x)
        e = self.embedding(x) if self.embedding is not None else x        # (T, B, E)
        e = self.dropouts[0](e)
        out, state = self.rnn.forward(e, None, lengths, keep_cache=keep_cache)  # (T, B, F)
        if self.cfg.pooling == "last":                                   # last layer, both directions
            pooled, saved = last_layer_state(self.rnn, state), None     # (B, Dn*H)
        else:
            pooled, saved = pool_forward(out, lengths, self.cfg.pooling)
        return self.head(self.dropouts[1](pooled)), saved, out.shape[0]   # (B, C)

    def forward_backward(self, batch, carry=None):
        x, lengths, y = batch
        logits, saved, T = self._encode(x, lengths, True)
        loss, dlogits = softmax_cross_entropy(logits, y)
        dpooled = self.dropouts[1].backward(self.head.backward(dlogits))
        if self.cfg.pooling == "last":
            de, _ = self.rnn.backward(None, last_layer_state_grad(self.rnn, dpooled))
        else:
            de, _ = self.rnn.backward(pool_backward(dpooled, saved, lengths, self.cfg.pooling, T))
        de = self.dropouts[0].backward(de)
        if self.embedding is not None:
            self.embedding.backward(de)
        return loss * len(y), len(y), None

    def predict_proba(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        from ..losses import log_softmax
        logits, _, _ = self._encode(x, lengths, False)
        return np.exp(log_softmax(logits))

    def evaluate_batch(self, batch, carry=None):
        x, lengths, y = batch
        logits, _, _ = self._encode(x, lengths, False)
        loss, _ = softmax_cross_entropy(logits, y, grad=False)
        return {"loss": loss * len(y), "accuracy": float((logits.argmax(-1) == y).sum())}, len(y), None
