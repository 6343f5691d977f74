"""Pretraining a bidirectional encoder as a language model on unlabelled sentences, before a
classifier is trained on top of it (Dai & Le 2015, "Semi-supervised sequence learning").

The encoder is a model's own embedding and bidirectional network, shared in place: the forward
direction's output at step t predicts token t+1, the backward direction's predicts token t-1
(the two directions of ELMo; Peters et al. 2018). Two softmax heads are used only here and are
thrown away afterwards. They predict the `out_words` most frequent words and `<unk>` for the
rest: a full softmax over SST's 16k words costs ~5x the whole encoder.
"""

from __future__ import annotations

import numpy as np

from .. import _checks as check
from ..data.vocab import Vocab
from ..errors import ConfigError
from ..layers import Dense, Dropout, Embedding
from ..losses import softmax_cross_entropy
from .base import Model


class BidirectionalLM(Model):
    """`forward_backward((x (T, B) ids, lengths (B,)))`: the mean of the two directions' next-
    and previous-token losses over the valid positions; gradients reach the shared encoder."""

    kind = "bidirectional_lm"
    batch_axes = (1, 0)                       # x (T, B), lengths (B,)

    def __init__(self, vocab: Vocab, embedding: Embedding, rnn, *, out_words: int = 3000,
                 dropout: float = 0.0, rng: np.random.Generator) -> None:
        if rnn.num_directions != 2:
            raise ConfigError("rnn: a bidirectional LM needs a bidirectional network, got one direction")
        if vocab.unk_id is None:
            raise ConfigError("vocab: a bidirectional LM needs an <unk> token for the words past out_words")
        check.positive_int(out_words, "out_words")
        check.probability(dropout, "dropout")
        self.vocab, self.embedding, self.rnn, self.rng = vocab, embedding, rnn, rng
        self.out_words, self.dropout = min(out_words, len(vocab)), dropout
        H, K, dt = rnn.hidden_size, self.out_words, embedding.dtype
        self.head_forward = Dense(H, K, dtype=dt, rng=rng)          # h_fwd(t) -> token t+1
        self.head_backward = Dense(H, K, dtype=dt, rng=rng)         # h_bwd(t) -> token t-1
        self.dropouts = (Dropout(dropout, rng), Dropout(dropout, rng))

    def modules(self):
        return [("embedding", self.embedding), ("rnn", self.rnn),
                ("head_forward", self.head_forward), ("head_backward", self.head_backward)]

    def config(self) -> dict:
        return {"out_words": self.out_words, "dropout": self.dropout, "vocab": self.vocab.to_json()}

    def _losses(self, batch, keep_cache: bool):
        x, lengths = batch
        T, H = x.shape[0], self.rnn.hidden_size
        if T < 2:
            raise ConfigError(f"x: a bidirectional LM needs sequences of at least 2 steps, got T={T}")
        y = np.where(x < self.out_words, x, self.vocab.unk_id)              # rare words -> <unk>
        pairs = np.arange(1, T)[:, None] < lengths[None, :]                 # (T-1, B): both ends valid
        e = self.dropouts[0](self.embedding(x))                              # (T, B, E)
        out, _ = self.rnn.forward(e, None, lengths, keep_cache=keep_cache)   # (T, B, 2H)
        out = self.dropouts[1](out)
        lf = self.head_forward(np.ascontiguousarray(out[:-1, :, :H]))       # (T-1, B, K) -> x[1:]
        lb = self.head_backward(np.ascontiguousarray(out[1:, :, H:]))       # (T-1, B, K) -> x[:-1]
        loss_f, dlf = softmax_cross_entropy(lf, y[1:], pairs)
        loss_b, dlb = softmax_cross_entropy(lb, y[:-1], pairs)
        return (loss_f + loss_b) / 2, int(pairs.sum()), dlf, dlb, out

    def forward_backward(self, batch, carry=None):
        loss, n, dlf, dlb, out = self._losses(batch, True)
        H = self.rnn.hidden_size
        dout = np.zeros_like(out)                                           # (T, B, 2H)
        dout[:-1, :, :H] = self.head_forward.backward(dlf / 2)              # mean of the two losses
        dout[1:, :, H:] = self.head_backward.backward(dlb / 2)
        de, _ = self.rnn.backward(self.dropouts[1].backward(dout))
        self.embedding.backward(self.dropouts[0].backward(de))
        return loss * n, n, None

    def evaluate_batch(self, batch, carry=None):
        loss, n, *_ = self._losses(batch, False)
        return {"loss": loss * n}, n, None
