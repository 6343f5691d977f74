"""Character or word language models: train, evaluate, sample."""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import Vocab, read_text, stream_batches
from ..data.readers import DataError
from ..models.base import RecurrentConfig, Regularisers
from ..models.language_model import LanguageModel, LanguageModelConfig
from ..train import TrainConfig, TrainResult, evaluate, train

DEFAULT_CORPUS_CHARS = 400_000


def stdlib_corpus(max_chars: int = DEFAULT_CORPUS_CHARS) -> str:
    """The built-in default corpus: Python's own standard-library sources, which every Python
    installation has (files in sorted order, until `max_chars`)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, n = [], 0
    for p in sorted(root.glob("*.py")):
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(text)
        n += len(text)
        if n >= max_chars:
            break
    corpus = "".join(parts)[:max_chars]
    if not corpus:
        raise DataError(f"{root}: no Python sources found for the default corpus")
    return corpus


def tokenize(text: str, level: str) -> list[str]:
    return list(text) if level == "char" else text.split()


@dataclass
class StreamTask:
    """Truncated BPTT over `batch_size` parallel streams, state carried across batches."""
    train_ids: np.ndarray
    valid_ids: np.ndarray
    batch_size: int
    bptt: int
    carries_state: bool = True

    def train_batches(self, rng: np.random.Generator):
        offset = int(rng.integers(self.bptt))                  # a new cut of the streams each epoch
        return list(stream_batches(self.train_ids[offset:], self.batch_size, self.bptt))

    def valid_batches(self):
        return list(stream_batches(self.valid_ids, min(self.batch_size, max(1, len(self.valid_ids) // (self.bptt + 1))), self.bptt))


def train_language_model(text_path: str | Path | None = None, run_dir: str | Path = "runs/lm", *,
                         level: str = "char", cell: str = "lstm", hidden_size: int = 128,
                         num_layers: int = 2, embedding_dim: int = 32, dropout: float = 0.0,
                         batch_size: int = 32, bptt: int = 64, valid_fraction: float = 0.1,
                         min_freq: int = 1, train_config: TrainConfig | None = None,
                         resume: bool = True, progress: bool = True,
                         max_chars: int | None = None, regularisers: Regularisers | None = None) -> TrainResult:
    """Train a language model on a text file (default: Python's standard-library sources),
    first (1 - valid_fraction) for training, the rest for validation."""
    text = read_text(text_path) if text_path is not None else stdlib_corpus()
    if max_chars is not None:
        text = text[:max_chars]
    tokens = tokenize(text, level)
    cut = int(len(tokens) * (1 - valid_fraction))
    if cut < 2 * bptt or len(tokens) - cut < bptt + 1:
        raise DataError(f"{text_path or 'default corpus'}: {len(tokens)} tokens are too few for "
                        f"bptt={bptt} with valid_fraction={valid_fraction}")
    vocab = Vocab.build(tokens[:cut], min_freq=min_freq, specials=("<unk>",))
    ids = vocab.encode(tokens)
    cfg = LanguageModelConfig(level, embedding_dim,
                              RecurrentConfig.make(cell, hidden_size, num_layers, dropout, regularisers=regularisers), dropout)
    tc = train_config or TrainConfig()
    model = LanguageModel(vocab, cfg, rng=tc.seed)
    task = StreamTask(ids[:cut], ids[cut:], batch_size, bptt)
    return train(model, task, tc, run_dir, resume=resume, progress=progress)


def sample_text(checkpoint: str | Path, prime: str = "\n", length: int = 300, *,
                temperature: float = 0.8, top_k: int | None = None, seed: int | None = None) -> str:
    from .common import load_model
    model, _ = load_model(checkpoint, expect_kind=LanguageModel.kind)
    if model.cfg.level == "char":
        return prime + "".join(model.sample(prime, length, temperature=temperature, top_k=top_k, rng=seed))
    return " ".join(prime.split() + model.sample(prime, length, temperature=temperature, top_k=top_k, rng=seed))


def evaluate_language_model(checkpoint: str | Path, text_path: str | Path, *, bptt: int = 64,
                            batch_size: int = 32) -> dict[str, float]:
    """Mean loss (nats per token) and perplexity of a checkpoint on a text file."""
    from .common import load_model
    model, _ = load_model(checkpoint, expect_kind=LanguageModel.kind)
    ids = model.vocab.encode(tokenize(read_text(text_path), model.cfg.level), "text")
    batch_size = max(1, min(batch_size, (len(ids) - 1) // (bptt + 1)))
    metrics = evaluate(model, list(stream_batches(ids, batch_size, bptt)), True)
    return {"loss": metrics["loss"], "perplexity": float(np.exp(metrics["loss"])), "tokens": len(ids)}
