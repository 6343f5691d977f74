"""Many-to-one classification: sentences (SST format) or multivariate series (.ts format)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _checks as check
from ..data import DataError, Vocab, bucket_batches, pad_sequences, read_sst, read_ts
from ..errors import ConfigError
from ..models.base import RecurrentConfig, Regularisers
from ..models.bilm import BidirectionalLM
from ..models.classifier import ClassifierConfig, SequenceClassifier
from ..train import TrainConfig, TrainResult, evaluate, train


@dataclass
class Examples:
    seqs: list[np.ndarray]                   # token ids (T,) or features (T, C)
    labels: np.ndarray                       # (N,) class ids


def read_examples(path: str | Path) -> tuple[list, list[str]]:
    """(sequences, label strings) from an SST-style file or a .ts file (by extension)."""
    if str(path).endswith(".ts"):
        series, labels = read_ts(path)
        return series, labels
    sents, labels = read_sst(path)
    return sents, [str(v) for v in labels]


def encode(model: SequenceClassifier, seqs: list, labels: list[str] | None, what: str) -> Examples:
    cfg = model.cfg
    if cfg.input_size:
        if not all(isinstance(s, np.ndarray) and s.ndim == 2 for s in seqs):
            raise DataError(f"{what}: this classifier reads feature series (.ts), got token sentences")
        bad = [s.shape[1] for s in seqs if s.shape[1] != cfg.input_size]
        if bad:
            raise DataError(f"{what}: expected {cfg.input_size} channels, got {bad[0]}")
        mean, std = np.asarray(cfg.feature_mean), np.asarray(cfg.feature_std)
        xs = [((s - mean) / std).astype(model.dtype) for s in seqs]
    else:
        if any(isinstance(s, np.ndarray) for s in seqs):
            raise DataError(f"{what}: this classifier reads sentences, got feature series")
        xs = [model.vocab.encode(s, what) for s in seqs]
    if any(len(x) == 0 for x in xs):
        raise DataError(f"{what}: contains an empty sequence")
    y = np.zeros(len(xs), np.int64)
    if labels is not None:
        index = {lab: i for i, lab in enumerate(model.labels)}
        unseen = sorted({lab for lab in labels if lab not in index})
        if unseen:
            raise DataError(f"{what}: labels {unseen} were not seen in training "
                            f"(known: {model.labels})")
        y = np.array([index[lab] for lab in labels], np.int64)
    return Examples(xs, y)


def batch(model: SequenceClassifier, ex: Examples, idx: np.ndarray):
    x, lengths = pad_sequences([ex.seqs[i] for i in idx],
                               pad=0 if model.vocab is None else model.vocab.pad_id)
    return x, lengths, ex.labels[idx]


def buckets(seqs: list, size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Index batches of sequences of similar length (shuffled with `rng`)."""
    return bucket_batches(np.array([len(s) for s in seqs]), size, rng)


@dataclass
class ClassifierTask:
    model: SequenceClassifier
    train_ex: Examples
    valid_ex: Examples
    batch_size: int
    carries_state: bool = False

    def train_batches(self, rng):
        return [batch(self.model, self.train_ex, b) for b in buckets(self.train_ex.seqs, self.batch_size, rng)]

    def valid_batches(self):
        return [batch(self.model, self.valid_ex, b) for b in buckets(self.valid_ex.seqs, 256)]


@dataclass
class SentencesTask:
    """Unlabelled sentences (of 2+ tokens) as (x, lengths) batches, for LM pretraining."""
    train_seqs: list[np.ndarray]
    valid_seqs: list[np.ndarray]
    batch_size: int
    pad: int
    carries_state: bool = False

    def _batches(self, seqs, size, rng=None):
        return [pad_sequences([seqs[i] for i in b], pad=self.pad) for b in buckets(seqs, size, rng)]

    def train_batches(self, rng):
        return self._batches(self.train_seqs, self.batch_size, rng)

    def valid_batches(self):
        return self._batches(self.valid_seqs, 256)


PRETRAIN_LR, PRETRAIN_DROPOUT, PRETRAIN_OUT_WORDS = 2e-3, 0.3, 3000


def pretrain_encoder(model: SequenceClassifier, task: ClassifierTask, epochs: int, run_dir: Path,
                     seed: int, resume: bool, progress: bool) -> TrainResult:
    """Train the classifier's embedding and bidirectional network in place as a bidirectional
    LM on the training sentences (labels unused; Dai & Le 2015), keeping the last epoch's weights."""
    if model.embedding is None or not model.cfg.rnn.bidirectional:
        raise DataError("pretrain_epochs: pretraining needs a bidirectional classifier of token "
                        "sentences (bidirectional=True, an SST-style file)")
    lm = BidirectionalLM(model.vocab, model.embedding, model.rnn, out_words=PRETRAIN_OUT_WORDS,
                         dropout=PRETRAIN_DROPOUT, rng=model.rng)
    long_enough = [s for s in task.train_ex.seqs if len(s) > 1]
    valid = [s for s in task.valid_ex.seqs if len(s) > 1]
    if not long_enough or not valid:
        raise DataError("pretrain_epochs: pretraining needs sentences of 2 or more tokens in both "
                        "the training and the validation data")
    cfg = TrainConfig(epochs=epochs, optimizer="adam", lr=PRETRAIN_LR, clip=5.0, seed=seed)
    return train(lm, SentencesTask(long_enough, valid, task.batch_size, model.vocab.pad_id), cfg,
                 run_dir, resume=resume, progress=progress)


def train_classifier(train_path: str | Path, valid_path: str | Path | None = None,
                     run_dir: str | Path = "runs/classifier", *, cell: str = "lstm",
                     hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False,
                     embedding_dim: int = 128, pooling: str = "last", dropout: float = 0.0,
                     word_dropout: float = 0.0, embedding_init_std: float = 0.05, min_freq: int = 1,
                     batch_size: int = 32, valid_fraction: float = 0.1,
                     train_config: TrainConfig | None = None, resume: bool = True,
                     progress: bool = True, regularisers: Regularisers | None = None,
                     pretrain_epochs: int = 0) -> TrainResult:
    """Train on an SST-style file (`<label> <tokens>`) or a `.ts` series file; validation on
    `valid_path` or, without one, on the last `valid_fraction` of the training file.

    `pretrain_epochs` > 0 first trains the embedding and the (bidirectional) network as a
    bidirectional language model on the training sentences (`pretrain_encoder`, in
    `run_dir/pretrain`), then the whole classifier from there."""
    if not (isinstance(pretrain_epochs, int) and pretrain_epochs >= 0):
        raise ConfigError(f"pretrain_epochs: expected a whole number >= 0, got {pretrain_epochs!r}")
    check.positive_int(batch_size, "batch_size")
    seqs, labels = read_examples(train_path)
    if valid_path is not None:
        vseqs, vlabels = read_examples(valid_path)
    else:
        cut = int(len(seqs) * (1 - valid_fraction))
        rng = np.random.default_rng(0)
        order = rng.permutation(len(seqs))
        seqs, labels, vseqs, vlabels = ([seqs[i] for i in order[:cut]], [labels[i] for i in order[:cut]],
                                        [seqs[i] for i in order[cut:]], [labels[i] for i in order[cut:]])
    label_set = sorted(set(labels), key=lambda s: (len(s), s))
    features = isinstance(seqs[0], np.ndarray)
    rc = RecurrentConfig.make(cell, hidden_size, num_layers, dropout, bidirectional, regularisers)
    if features:
        stacked = np.concatenate(seqs)
        cfg = ClassifierConfig(len(label_set), stacked.shape[1], embedding_dim, rc, pooling, dropout,
                               stacked.mean(0).tolist(), (stacked.std(0) + 1e-8).tolist())
        vocab = None
    else:
        cfg = ClassifierConfig(len(label_set), 0, embedding_dim, rc, pooling, dropout, word_dropout=word_dropout,
                               embedding_init_std=embedding_init_std)
        vocab = Vocab.build((t for s in seqs for t in s), min_freq=min_freq)
    tc = train_config or TrainConfig()
    model = SequenceClassifier(vocab, cfg, label_set, rng=tc.seed)
    task = ClassifierTask(model, encode(model, seqs, labels, str(train_path)),
                          encode(model, vseqs, vlabels, str(valid_path or train_path)), batch_size)
    if pretrain_epochs:
        pretrain_encoder(model, task, pretrain_epochs, Path(run_dir) / "pretrain", tc.seed, resume, progress)
    return train(model, task, tc, run_dir, resume=resume, progress=progress)


def evaluate_classifier(model: SequenceClassifier, data_path: str | Path) -> dict[str, float]:
    seqs, labels = read_examples(data_path)
    ex = encode(model, seqs, labels, str(data_path))
    return evaluate(model, [batch(model, ex, b) for b in buckets(ex.seqs, 256)], False)


def predict_classifier(model: SequenceClassifier, lines: list[str]) -> list[str]:
    """Labels for whitespace-tokenised sentences (token models only)."""
    if model.vocab is None:
        raise DataError("predict: this classifier reads feature series; use `evaluate` with a .ts file")
    sents = [line.split() for line in lines if line.strip()]
    if not sents:
        raise DataError("predict: no sentences in the input")
    ex = encode(model, sents, None, "input")
    x, lengths, _ = batch(model, ex, np.arange(len(sents)))
    return [model.labels[i] for i in model.predict_proba(x, lengths).argmax(-1)]


def evaluate_ensemble(models: list[SequenceClassifier], data_path: str | Path) -> dict:
    """Accuracy of the average of the members' class probabilities, and each member's own."""
    if not models:
        raise DataError("models: expected at least one classifier, got none")
    labels = models[0].labels
    if any(m.labels != labels for m in models):
        raise DataError(f"models: members disagree on their labels ({[m.labels for m in models]})")
    seqs, names = read_examples(data_path)
    probs, members = [], []
    for m in models:
        m.eval()
        ex = encode(m, seqs, names, str(data_path))
        p = np.empty((len(ex.seqs), len(labels)))
        for idx in buckets(ex.seqs, 256):
            x, lengths, _ = batch(m, ex, idx)
            p[idx] = m.predict_proba(x, lengths)
        probs.append(p)
        members.append(float((p.argmax(-1) == ex.labels).mean()))
    acc = float((np.mean(probs, axis=0).argmax(-1) == ex.labels).mean())
    return {"accuracy": acc, "members": members}
