"""Attention over a memory of encoder outputs, one query (decoder step) at a time.

Letters: B batch, S source steps, Q query size (the decoder's h), M memory size (the encoder's
output), A the additive score's hidden size. The memory is batch-major here, (B, S, M), so each
row's scores and context are one batched product; `mask` (B, S) is True at real source steps.

Scores (Luong et al. 2015, "dot" and "general"; Bahdanau et al. 2015, "additive"):
    dot:      score_s = h . m_s                                   (Q == M)
    general:  score_s = h W m_s            W (Q, M)
    additive: score_s = v . tanh(W_q h + W_k m_s)   W_q (A, Q), W_k (A, M), v (A,)
then weights = softmax over the real steps (padding gets exactly 0) and context = sum_s
weights_s m_s. `keys` is what does not change from step to step: the memory itself, or
W_k m_s for every s (additive), computed once a batch by `attention_keys`; their gradient is
gathered over the steps and taken back to the memory once (`keys_backward`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .. import _checks as check
from ..errors import ConfigError, ShapeError
from ..init import make_rng

SCORES = ("dot", "general", "additive")


@dataclass
class AttentionParams:
    """w (Q, M) for "general"; w_query (A, Q), w_key (A, M), v (A,) for "additive"."""
    w: np.ndarray | None = None
    w_query: np.ndarray | None = None
    w_key: np.ndarray | None = None
    v: np.ndarray | None = None

    def items(self) -> list[tuple[str, np.ndarray]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]


def attention_keys(score: str, p: AttentionParams, memory: np.ndarray) -> np.ndarray:
    """What every step's scores read: memory (B, S, M) itself, or memory W_k^T (B, S, A)."""
    if score == "additive":
        B, S, M = memory.shape
        return (memory.reshape(B * S, M) @ p.w_key.T).reshape(B, S, -1)   # one GEMM
    return memory


def keys_backward(score: str, p: AttentionParams, memory: np.ndarray, dkeys: np.ndarray,
                  grads: AttentionParams) -> np.ndarray:
    """dkeys gathered over all steps -> d memory (B, S, M) from the keys (additive: dW_k too)."""
    if score != "additive":
        return dkeys
    B, S, M = memory.shape
    dk = dkeys.reshape(B * S, -1)                                  # (B*S, A)
    grads.w_key = dk.T @ memory.reshape(B * S, M)                  # (A, M)
    return (dk @ p.w_key).reshape(B, S, M)


def attention_forward(score: str, p: AttentionParams, h: np.ndarray, memory: np.ndarray,
                      keys: np.ndarray, mask: np.ndarray | None):
    """h (B, Q) -> context (B, M), weights (B, S), cache for attention_backward."""
    if score == "dot":
        q = h                                                      # (B, M)
        scores = np.matmul(keys, q[:, :, None])[..., 0]            # (B, S) h . m_s
    elif score == "general":
        q = h @ p.w                                                # (B, M) h W
        scores = np.matmul(keys, q[:, :, None])[..., 0]            # (B, S) h W m_s
    else:
        q = h @ p.w_query.T                                        # (B, A) W_q h
        e = np.tanh(keys + q[:, None, :])                          # (B, S, A)
        scores = e @ p.v                                           # (B, S) v . e_s
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)                   # padding: weight exactly 0
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)                                       # (B, S)
    weights /= weights.sum(axis=1, keepdims=True)                  # softmax over the steps
    context = np.matmul(weights[:, None, :], memory)[:, 0]         # (B, M) sum_s a_s m_s
    cache = (h, q, e if score == "additive" else None, weights)
    return context, weights, cache


def attention_backward(score: str, p: AttentionParams, memory: np.ndarray, keys: np.ndarray,
                       dcontext: np.ndarray, cache, grads: AttentionParams,
                       dmemory: np.ndarray, dkeys: np.ndarray | None) -> np.ndarray:
    """Back through one step: returns dh (B, Q); adds into dmemory (B, S, M) (through the
    context), dkeys (through the scores; additive only, else into dmemory) and `grads`."""
    h, q, e, a = cache
    da = np.matmul(memory, dcontext[:, :, None])[..., 0]           # (B, S) d weights = dc . m_s
    dmemory += a[:, :, None] * dcontext[:, None, :]                # context = sum_s a_s m_s
    ds = a * (da - (a * da).sum(axis=1, keepdims=True))            # back through the softmax
    if score == "additive":
        grads.v += np.einsum("bs,bsa->a", ds, e)                   # scores = e v
        dpre = ds[:, :, None] * p.v * (1 - e * e)                  # (B, S, A) through tanh
        dkeys += dpre                                              # W_k m_s: gathered over steps
        dq = dpre.sum(axis=1)                                      # (B, A)
        grads.w_query += dq.T @ h                                  # q = h W_q^T
        return dq @ p.w_query                                      # (B, Q)
    dq = np.matmul(ds[:, None, :], keys)[:, 0]                     # (B, M) sum_s ds_s m_s
    dmemory += ds[:, :, None] * q[:, None, :]                      # scores read m_s
    if score == "dot":
        return dq
    grads.w += h.T @ dq                                            # q = h W
    return dq @ p.w.T                                              # (B, Q)


class Attention:
    """Scores of `score` kind between a query of `query_size` and a memory of `memory_size`.
    Initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch.nn.Linear."""

    def __init__(self, score: str, query_size: int, memory_size: int, hidden_size: int | None = None, *,
                 dtype: object = np.float32, rng: np.random.Generator | int | None = None) -> None:
        self.score = check.choice(score, "score", SCORES)
        Q = check.positive_int(query_size, "query_size")
        M = check.positive_int(memory_size, "memory_size")
        self.dtype = check.as_dtype(dtype)
        g = make_rng(rng)
        u = lambda fan_in, shape: g.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), shape).astype(self.dtype)
        if score == "dot":
            if Q != M:
                raise ConfigError(f"score: 'dot' needs the query size to equal the memory size, "
                                  f"got {Q} and {M}; use 'general' or 'additive'")
            self.p = AttentionParams()
        elif score == "general":
            self.p = AttentionParams(w=u(M, (Q, M)))
        else:
            A = check.positive_int(hidden_size if hidden_size is not None else Q, "hidden_size")
            self.p = AttentionParams(w_query=u(Q, (A, Q)), w_key=u(M, (A, M)), v=u(A, (A,)))
        self.query_size, self.memory_size = Q, M

    def named_parameters(self):
        return self.p.items()

    def zero_grads(self) -> AttentionParams:
        return AttentionParams(**{k: np.zeros_like(a) for k, a in self.p.items()})

    def check_memory(self, memory: np.ndarray, mask: np.ndarray | None) -> None:
        if memory.ndim != 3 or memory.shape[2] != self.memory_size:
            raise ShapeError(f"memory: expected (B, S, {self.memory_size}), got shape {memory.shape}")
        if mask is not None:
            if mask.shape != memory.shape[:2]:
                raise ShapeError(f"mask: expected shape {memory.shape[:2]}, got {mask.shape}")
            if not mask.any(axis=1).all():
                raise ShapeError("mask: every row needs at least one real source step, got a row with none")
