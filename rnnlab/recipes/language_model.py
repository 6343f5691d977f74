"""Character or word language models: train, evaluate, sample."""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _checks as check
from ..data import Vocab, read_text, split_lines, stream_batches
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


EOS = "<eos>"


def tokenize(text: str, level: str, eos: bool = False) -> list[str]:
    """Characters, or words; with `eos` each line's words end with an <eos> token (as PyTorch's
    word_language_model example and the Penn Treebank setups), so sentence ends survive."""
    if level == "char":
        return list(text)
    if not eos:
        return text.split()
    return [w for line in split_lines(text) if line.strip() for w in line.split() + [EOS]]


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
                         valid_path: str | Path | None = None, eos: bool | None = None,
                         init_range: float | None = None,
                         min_freq: int = 1, train_config: TrainConfig | None = None,
                         resume: bool = True, progress: bool = True,
                         max_chars: int | None = None, regularisers: Regularisers | None = None) -> TrainResult:
    """Train a language model on a text file (default: Python's standard-library sources):
    on all of it, validated on `valid_path`, or, without one, on its first (1 - valid_fraction),
    validated on the rest. Word-level models end each line with <eos> (`eos`, default on for
    words); `init_range` draws every parameter from U(-r, r) as Zaremba et al. 2014.

    The loss is the mean over tokens (as PyTorch's word_language_model example), so the paper's
    lr 1 / clip 5 (a loss summed over the BPTT steps) is lr 20 / clip 0.25 here."""
    level = check.choice(level, "level", ("char", "word"))
    check.positive_int(batch_size, "batch_size")
    check.positive_int(bptt, "bptt")
    if valid_path is None:
        check.number(valid_fraction, "valid_fraction", 0.0, open_min=True, maximum=1.0, open_max=True)
    eos = level == "word" if eos is None else bool(eos)
    text = read_text(text_path) if text_path is not None else stdlib_corpus()
    if max_chars is not None:
        text = text[:max_chars]
    tokens = tokenize(text, level, eos)
    if valid_path is not None:
        valid_tokens = tokenize(read_text(valid_path), level, eos)
        tokens, cut = tokens + valid_tokens, len(tokens)
        where = f"{text_path or 'default corpus'} with {valid_path}"
    else:
        cut = int(len(tokens) * (1 - valid_fraction))
        where = f"{text_path or 'default corpus'} with valid_fraction={valid_fraction}"
    if cut < 2 * bptt or len(tokens) - cut < bptt + 1:
        raise DataError(f"{where}: {cut} training and {len(tokens) - cut} validation tokens are too "
                        f"few for bptt={bptt}")
    vocab = Vocab.build(tokens[:cut], min_freq=min_freq, specials=("<unk>",))
    ids = vocab.encode(tokens)
    cfg = LanguageModelConfig(level, embedding_dim,
                              RecurrentConfig.make(cell, hidden_size, num_layers, dropout, regularisers=regularisers),
                              dropout, eos, init_range)
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
    words = " ".join(prime.split() + model.sample(prime, length, temperature=temperature, top_k=top_k, rng=seed))
    return words.replace(f" {EOS} ", "\n").replace(EOS, "\n") if model.cfg.eos else words


def evaluate_language_model(checkpoint: str | Path, text_path: str | Path, *, bptt: int = 64,
                            batch_size: int = 32) -> dict[str, float]:
    """Mean loss (nats per token) and perplexity of a checkpoint on a text file."""
    from .common import load_model
    model, _ = load_model(checkpoint, expect_kind=LanguageModel.kind)
    ids = model.vocab.encode(tokenize(read_text(text_path), model.cfg.level, model.cfg.eos), "text")
    batch_size = max(1, min(batch_size, (len(ids) - 1) // (bptt + 1)))
    metrics = evaluate(model, list(stream_batches(ids, batch_size, bptt)), True)
    return {"loss": metrics["loss"], "perplexity": float(np.exp(metrics["loss"])), "tokens": len(ids)}
