"""Acoustic model for speech recognition with CTC (Graves et al. 2006; Graves, Mohamed and
Hinton 2013): normalised audio features, optionally `stack` consecutive frames side by side
(which also keeps every stack-th step: T -> ceil(T / stack)), a stacked bidirectional LSTM/GRU,
a dense layer to the labels plus a blank (class 0), log-softmax, and the CTC loss.

Letters: T frames, B batch, D feature dims, H hidden size, C = labels + 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks as check
from ..ctc import ctc_loss, greedy_decode, log_softmax_backward, prefix_beam_search
from ..data.audio import FeatureConfig, Normaliser
from ..errors import ConfigError
from ..init import make_rng
from ..layers import Dense, Dropout
from ..losses import log_softmax
from ..metrics import edit_distance
from .base import (Model, RecurrentConfig, config_from_dict, dataclass_dict, make_rnn, rnn_parameter_floor,
                   shard_dataclass)


@dataclass
class SpeechConfig:
    labels: list[str] = field(default_factory=lambda: [str(d) for d in range(10)])   # class i + 1
    features: FeatureConfig = field(default_factory=FeatureConfig)
    normaliser: Normaliser = field(default_factory=Normaliser)
    rnn: RecurrentConfig = field(default_factory=lambda: RecurrentConfig("lstm", 128, 2, bidirectional=True))
    stack: int = 1                            # frames side by side (and the stride)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.features, FeatureConfig):
            self.features = config_from_dict(FeatureConfig, self.features, "features")
        if not isinstance(self.normaliser, Normaliser):
            self.normaliser = config_from_dict(Normaliser, self.normaliser, "normaliser")
        if not isinstance(self.rnn, RecurrentConfig):
            self.rnn = config_from_dict(RecurrentConfig, self.rnn, "rnn")
        check.positive_int(self.stack, "stack")
        check.probability(self.dropout, "dropout")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels: expected distinct labels, got {self.labels!r}")


@dataclass
class SpeechBatch:
    x: np.ndarray                             # (T, B, D) normalised features, zero-padded
    lengths: np.ndarray                       # (B,) frames
    targets: np.ndarray                       # (B, S) label classes (1..C-1), padded with 0
    target_lengths: np.ndarray                # (B,)


def stack_frames(x: np.ndarray, lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, B, D) -> (ceil(T / k), B, k D): every k frames side by side (zeros past the end)."""
    if k == 1:
        return x, lengths
    T, B, D = x.shape
    Tk = -(-T // k)
    padded = np.zeros((Tk * k, B, D), dtype=x.dtype)
    padded[:T] = x
    stacked = padded.reshape(Tk, k, B, D).transpose(0, 2, 1, 3).reshape(Tk, B, k * D)
    return stacked, -(-lengths // k)


class SpeechRecognizer(Model):
    kind = "speech"

    def __init__(self, cfg: SpeechConfig, *, dtype: object = np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        self.cfg = cfg
        self.dtype = check.as_dtype(dtype)
        self.rng = make_rng(rng)
        self.rnn = make_rnn(cfg.rnn, cfg.features.dims * cfg.stack, self.dtype, self.rng)
        width = cfg.rnn.hidden_size * (2 if cfg.rnn.bidirectional else 1)
        self.head = Dense(width, len(cfg.labels) + 1, dtype=self.dtype, rng=self.rng)
        self.dropouts = (Dropout(cfg.dropout, self.rng), Dropout(cfg.dropout, self.rng))

    def modules(self):
        return [("rnn", self.rnn), ("head", self.head)]

    def config(self) -> dict:
        return {"model": dataclass_dict(self.cfg)}

    @classmethod
    def from_config(cls, config: dict, dtype: object = np.float32) -> "SpeechRecognizer":
        return cls(config_from_dict(SpeechConfig, config["model"], "model"), dtype=dtype, rng=0)

    @classmethod
    def parameter_floor(cls, config: dict) -> int:
        cfg = config_from_dict(SpeechConfig, config["model"], "model")
        width = cfg.rnn.hidden_size * (2 if cfg.rnn.bidirectional else 1)
        return rnn_parameter_floor(cfg.rnn, cfg.features.dims * cfg.stack) + width * (len(cfg.labels) + 1)

    def make_batch(self, feats: list[np.ndarray], labels: list[list[str]] | None = None) -> SpeechBatch:
        """A batch of (frames, D) raw features (normalised here) and their label sequences."""
        lengths = np.array([len(f) for f in feats], dtype=np.int64)
        x = np.zeros((int(lengths.max()), len(feats), self.cfg.features.dims), dtype=self.dtype)
        for b, f in enumerate(feats):
            x[:len(f), b] = self.cfg.normaliser(f)
        x, lengths = stack_frames(x, lengths, self.cfg.stack)
        targets, tl = self.encode(labels if labels is not None else [[] for _ in feats])
        return SpeechBatch(x, lengths, targets, tl)

    def encode(self, labels: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(B, S) padded label ids (1.. : 0 is the blank) of label sequences, and their (B,) lengths."""
        index = {lab: i + 1 for i, lab in enumerate(self.cfg.labels)}
        unknown = sorted({lab for seq in labels for lab in seq if lab not in index})
        if unknown:
            raise ConfigError(f"labels: {unknown} are not among the model's labels {self.cfg.labels}")
        tl = np.array([len(seq) for seq in labels], dtype=np.int64)
        targets = np.zeros((len(labels), max(int(tl.max(initial=0)), 1)), dtype=np.int64)
        for b, seq in enumerate(labels):
            targets[b, :len(seq)] = [index[lab] for lab in seq]
        return targets, tl

    def shard_batch(self, batch: SpeechBatch, comm) -> SpeechBatch | None:
        """This rank's utterances of a batch."""
        return shard_dataclass(batch, comm, {"x": 1, "lengths": 0, "targets": 0, "target_lengths": 0}, "lengths", ("x",))

    def log_probs(self, batch: SpeechBatch, keep_cache: bool = False) -> np.ndarray:
        """(T', B, C) log-probabilities of the blank (0) and the labels at every (stacked) frame."""
        out, _ = self.rnn.forward(self.dropouts[0](batch.x), None, batch.lengths, keep_cache=keep_cache)
        return log_softmax(self.head(self.dropouts[1](out)))

    def forward_backward(self, batch: SpeechBatch, carry=None):
        lp = self.log_probs(batch, keep_cache=True)
        # mean over the batch of each sequence's loss per label; impossible alignments count 0
        loss, dlp = ctc_loss(lp, batch.targets, batch.lengths, batch.target_lengths, reduction="mean",
                             zero_infinity=True)
        dlogits = log_softmax_backward(lp, dlp)                               # through the log-softmax
        self.rnn.backward(self.dropouts[1].backward(self.head.backward(dlogits)))
        B = len(batch.lengths)
        return loss * B, B, None

    def evaluate_batch(self, batch: SpeechBatch, carry=None):
        lp = self.log_probs(batch)
        loss, _ = ctc_loss(lp, batch.targets, batch.lengths, batch.target_lengths, reduction="mean",
                           zero_infinity=True, grad=False)
        B = len(batch.lengths)
        hyps = greedy_decode(lp, batch.lengths)
        refs = [batch.targets[b, :n].tolist() for b, n in enumerate(batch.target_lengths)]
        edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
        right = sum(r == h for r, h in zip(refs, hyps))
        labels = max(int(batch.target_lengths.sum()), 1)
        # per-sequence sums, as the trainer averages them: "errors" is the label error rate
        # weighted by each batch's share of sequences (exact over a whole set in evaluate_speech)
        return {"loss": loss * B, "accuracy": float(right), "errors": edits / labels * B}, B, None

    def frame_log_probs(self, feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(T', B, C) log-probabilities of raw feature arrays (dropout off) and their (B,) frames."""
        batch = self.make_batch(feats)
        training = self.training
        self.eval()
        try:
            return self.log_probs(batch), batch.lengths
        finally:
            self.train(training)

    def decode(self, lp: np.ndarray, lengths: np.ndarray, beam: int = 1) -> list[list[str]]:
        """Label sequences of `frame_log_probs`: best path (`beam` 1) or prefix beam search."""
        ids = greedy_decode(lp, lengths) if beam == 1 else prefix_beam_search(lp, lengths, beam)
        return [[self.cfg.labels[i - 1] for i in seq] for seq in ids]

    def log_likelihood(self, lp: np.ndarray, lengths: np.ndarray, labels: list[list[str]]) -> np.ndarray:
        """(B,) log p(labels | frames) of one label sequence per utterance: CTC's sum over every
        path that collapses to it (-inf when the frames are too few)."""
        targets, tl = self.encode(labels)
        loss, _ = ctc_loss(lp, targets, lengths, tl, reduction="none", grad=False)
        return -np.asarray(loss, dtype=np.float64)

    def transcribe(self, feats: list[np.ndarray], beam: int = 1) -> list[list[str]]:
        """Label sequences of raw feature arrays: best path (`beam` 1) or prefix beam search."""
        return self.decode(*self.frame_log_probs(feats), beam)
