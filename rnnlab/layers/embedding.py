"""Embedding: integer ids (...) -> vectors (..., E), as torch.nn.Embedding (key `weight`)."""

from __future__ import annotations

import numpy as np

from .. import _checks as check
from ..errors import DTypeError, OrderError, ValueRangeError
from ..init import make_rng


def embedding_forward(weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return weight[ids]                                         # (..., E)


def embedding_backward(weight: np.ndarray, ids: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """dW (V, E): the rows of dout (..., E) summed by id: the ids sorted (stably) and each run
    summed with one reduceat (np.add.at's sums to rounding; its unbuffered loop took ~10x as
    long)."""
    dw = np.zeros_like(weight)                                 # (V, E)
    flat = ids.reshape(-1)                                     # (N,)
    if flat.size == 0:
        return dw
    order = np.argsort(flat, kind="stable")
    sorted_ids = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])   # each id's first
    rows = dout.reshape(-1, weight.shape[1])[order]            # (N, E) grouped by id
    dw[sorted_ids[starts]] = np.add.reduceat(rows, starts, axis=0)   # rows seen twice add up
    return dw


class Embedding:
    """`num_embeddings` x `embedding_dim` table, N(0, init_std^2) init (torch: N(0, 1));
    `padding_idx` row is zero and gets no gradient.

    A small `init_std` (e.g. 0.05, about Keras' U(-0.05, 0.05)) lets Adam-sized updates move the
    vectors early: on SST-2 it takes a BiLSTM from ~74% to ~80-82% test accuracy."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
                 dtype: object = np.float32, rng: np.random.Generator | int | None = None,
                 init_std: float = 1.0) -> None:
        V = check.positive_int(num_embeddings, "num_embeddings")
        E = check.positive_int(embedding_dim, "embedding_dim")
        self.dtype = check.as_dtype(dtype)
        if not (isinstance(init_std, (int, float)) and init_std > 0):
            raise ValueRangeError(f"init_std: expected a positive number, got {init_std!r}")
        self.weight = (make_rng(rng).standard_normal((V, E)) * init_std).astype(self.dtype)
        if padding_idx is not None and not 0 <= padding_idx < V:
            raise ValueRangeError(f"padding_idx: expected an index in [0, {V}), got {padding_idx}")
        self.padding_idx = padding_idx
        if padding_idx is not None:
            self.weight[padding_idx] = 0
        self.grad: np.ndarray | None = None
        self._ids: np.ndarray | None = None

    def named_parameters(self):
        yield "weight", self.weight

    def named_grads(self):
        yield "weight", self.grad

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise DTypeError(f"ids: expected integer token ids, got dtype {ids.dtype}")
        V = self.weight.shape[0]
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueRangeError(f"ids: expected ids in [0, {V}) (the vocabulary size), "
                                  f"got min {ids.min()} and max {ids.max()}")
        self._ids = ids
        return embedding_forward(self.weight, ids)

    def backward(self, dout: np.ndarray) -> None:
        """Embedding has no input gradient; sets `grad`."""
        if self._ids is None:
            raise OrderError("backward: no forward call to go back through")
        self.grad = embedding_backward(self.weight, self._ids, dout)
        if self.padding_idx is not None:
            self.grad[self.padding_idx] = 0
