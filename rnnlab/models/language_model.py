"""Language model (character or word level): embedding -> recurrent stack -> softmax over V.

Trained with truncated BPTT on parallel streams: the final state of one batch is the initial
state of the next (char-rnn; Zaremba et al. 2014), gradients stop at the batch boundary.
Dropout on the embeddings and on the recurrent output as Zaremba et al.; between layers via
the network's own `dropout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks as check
from ..data.vocab import Vocab
from ..errors import ConfigError, ValueRangeError
from ..layers import Dense, Dropout, Embedding
from ..losses import log_softmax, softmax_cross_entropy
from .base import (Model, RecurrentConfig, config_from_dict, dataclass_dict, make_rnn,
                   rnn_parameter_floor)


@dataclass
class LanguageModelConfig:
    level: str = "char"                       # "char" or "word"
    embedding_dim: int = 64
    rnn: RecurrentConfig = field(default_factory=RecurrentConfig)
    dropout: float = 0.0                      # on embeddings and on the recurrent output
    eos: bool = False                         # word level: every line ends with an <eos> token
    init_range: float | None = None           # every parameter ~ U(-r, r) (Zaremba et al. 2014)

    def __post_init__(self) -> None:
        if not isinstance(self.rnn, RecurrentConfig):
            self.rnn = config_from_dict(RecurrentConfig, self.rnn, "rnn")
        check.choice(self.level, "level", ("char", "word"))
        check.positive_int(self.embedding_dim, "embedding_dim")
        check.probability(self.dropout, "dropout")
        if self.init_range is not None and not (isinstance(self.init_range, (int, float))
                                                 and 0 < self.init_range < float("inf")):
            raise ConfigError(f"init_range: expected a number > 0, got {self.init_range!r}")
        if self.rnn.bidirectional:
            raise ConfigError("rnn.bidirectional: a language model predicts the next token and "
                             "cannot read the future; expected False")


class LanguageModel(Model):
    kind = "language_model"
    batch_axes = (1, 1, 0)                    # x, y (T, B); lengths (B,)

    def __init__(self, vocab: Vocab, cfg: LanguageModelConfig, *, dtype: object = np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        from ..init import make_rng
        self.vocab, self.cfg = vocab, cfg
        self.dtype = check.as_dtype(dtype)
        self.rng = make_rng(rng)
        V = len(vocab)
        self.embedding = Embedding(V, cfg.embedding_dim, dtype=self.dtype, rng=self.rng)
        self.rnn = make_rnn(cfg.rnn, cfg.embedding_dim, self.dtype, self.rng)
        self.head = Dense(cfg.rnn.hidden_size, V, dtype=self.dtype, rng=self.rng)
        self.dropouts = (Dropout(cfg.dropout, self.rng), Dropout(cfg.dropout, self.rng))
        if cfg.init_range is not None:
            for _, a in self.named_parameters():
                a[...] = self.rng.uniform(-cfg.init_range, cfg.init_range, a.shape)

    def modules(self):
        return [("embedding", self.embedding), ("rnn", self.rnn), ("head", self.head)]

    def config(self) -> dict:
        return {"model": dataclass_dict(self.cfg), "vocab": self.vocab.to_json()}

    @classmethod
    def from_config(cls, config: dict, dtype: object = np.float32) -> "LanguageModel":
        return cls(Vocab.from_json(config["vocab"]),
                   config_from_dict(LanguageModelConfig, config["model"], "model"), dtype=dtype, rng=0)

    @classmethod
    def parameter_floor(cls, config: dict) -> int:
        cfg = config_from_dict(LanguageModelConfig, config["model"], "model")
        V, E = len(Vocab.from_json(config["vocab"])), cfg.embedding_dim
        return V * E + rnn_parameter_floor(cfg.rnn, E) + cfg.rnn.hidden_size * V

    def logits(self, x: np.ndarray, carry=None, keep_cache: bool = True, lengths=None):
        """x (T, B) ids -> logits (T, B, V), final state."""
        e = self.dropouts[0](self.embedding(x))                    # (T, B, E)
        out, state = self.rnn.forward(e, carry, lengths, keep_cache=keep_cache)  # (T, B, H)
        return self.head(self.dropouts[1](out)), state             # (T, B, V)

    @staticmethod
    def _mask(batch) -> np.ndarray | None:
        """Batches are (x, y) streams, or (x, y, lengths) padded sequences."""
        if len(batch) == 2:
            return None
        return np.arange(len(batch[0]))[:, None] < batch[2][None, :]   # (T, B)

    def forward_backward(self, batch, carry=None):
        x, y = batch[:2]                                           # (T, B) ids each
        mask = self._mask(batch)
        logits, state = self.logits(x, carry, lengths=None if mask is None else batch[2])
        loss, dlogits = softmax_cross_entropy(logits, y, mask)
        dout = self.dropouts[1].backward(self.head.backward(dlogits))
        de, _ = self.rnn.backward(dout)
        self.embedding.backward(self.dropouts[0].backward(de))
        n = y.size if mask is None else int(mask.sum())
        return loss * n, n, state

    def evaluate_batch(self, batch, carry=None):
        x, y = batch[:2]
        mask = self._mask(batch)
        logits, state = self.logits(x, carry, keep_cache=False, lengths=None if mask is None else batch[2])
        loss, _ = softmax_cross_entropy(logits, y, mask, grad=False)
        n = y.size if mask is None else int(mask.sum())
        correct = (logits.argmax(-1) == y) if mask is None else (logits.argmax(-1) == y) & mask
        return {"loss": loss * n, "accuracy": float(correct.sum())}, n, state

    def sample(self, prime: str | list[str], length: int, *, temperature: float = 1.0,
               top_k: int | None = None, rng: np.random.Generator | int | None = None) -> list[str]:
        """Generate `length` tokens after `prime`, one step at a time with carried state.

        `temperature` divides the logits (lower: safer, higher: more varied); `top_k` keeps
        only the k most likely tokens before sampling."""
        from ..init import make_rng
        if not temperature > 0:
            raise ValueRangeError(f"temperature: expected a number > 0, got {temperature}")
        if top_k is not None and not 1 <= top_k <= len(self.vocab):
            raise ValueRangeError(f"top_k: expected 1..{len(self.vocab)}, got {top_k}")
        tokens = list(prime) if self.cfg.level == "char" and isinstance(prime, str) else (
            prime.split() if isinstance(prime, str) else list(prime))
        if not tokens:
            raise ValueRangeError("prime: expected at least one token to start from, got none")
        g = make_rng(rng)
        was_training = self.training
        self.eval()
        ids = self.vocab.encode(tokens, "prime")
        logits, state = self.logits(ids[:, None], None, keep_cache=False)
        last = logits[-1, 0]
        out = []
        for _ in range(length):
            z = last.astype(np.float64) / temperature
            if top_k is not None:
                cut = np.partition(z, -top_k)[-top_k]
                z = np.where(z >= cut, z, -np.inf)
            p = np.exp(log_softmax(z))
            nxt = int(g.choice(len(p), p=p / p.sum()))
            out.append(self.vocab.itos[nxt])
            logits, state = self.logits(np.array([[nxt]]), state, keep_cache=False)
            last = logits[-1, 0]
        self.train(was_training)
        return out
