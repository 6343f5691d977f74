"""Padding with lengths, bucketing by length, and parallel streams for language models."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import ShapeError, ValueRangeError


def pad_sequences(seqs: Sequence[np.ndarray], pad: float | int = 0, dtype=None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Time-major (T, B, ...) array of the sequences padded to the longest, and lengths (B,)."""
    if not seqs:
        raise ShapeError("seqs: expected at least one sequence, got none")
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    first = np.asarray(seqs[0])
    out = np.full((int(lengths.max()), len(seqs)) + first.shape[1:], pad,
                  dtype=dtype or first.dtype)
    for b, s in enumerate(seqs):
        out[:len(s), b] = s
    return out, lengths


def bucket_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None
                   ) -> list[np.ndarray]:
    """Index batches of similar lengths: sort by length (shuffled ties), cut into batches,
    shuffle the batch order. Less padding than random batches, still a random order."""
    n = len(lengths)
    noise = rng.random(n) if rng is not None else np.zeros(n)
    order = np.lexsort((noise, lengths))                      # by length, random among equals
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def stream_batches(ids: np.ndarray, batch_size: int, bptt: int
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """char-rnn / Zaremba et al. batching: cut the token stream into `batch_size` parallel
    streams and walk them `bptt` steps at a time, so the state of batch k continues into batch
    k+1. Yields (x, y) of shape (T, B), y = x shifted by one token."""
    ids = np.asarray(ids)
    per = (len(ids) - 1) // batch_size                        # tokens per stream
    if per < 1:
        raise ValueRangeError(f"ids: {len(ids)} tokens are too few for {batch_size} streams")
    streams = ids[:per * batch_size + 1]
    x = streams[:-1].reshape(batch_size, per).T               # (per, B)
    y = streams[1:].reshape(batch_size, per).T
    for t in range(0, per, bptt):
        yield x[t:t + bptt], y[t:t + bptt]
