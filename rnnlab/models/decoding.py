"""Greedy and beam search over any step function, batched across sentences.

A model offers a step function for decoding: `step(state, y_prev) -> (logp (N, V), state,
align)` with the log-probabilities of the next token for each of N rows, its `state` a tuple
tree of arrays whose first axis is the N rows (the search gathers rows of it when it reorders
or copies beams), and `align` (N,) the source position each row attended to most (or None),
which each hypothesis keeps per token (to copy source words for unknown ones). Decoding stops a row at `eos` or at its maximum length, max_len_a * source
length + max_len_b (as fairseq's), whichever comes first.

Beam search (Sutskever et al. 2014): each sentence keeps K live
hypotheses; each step scores their K x V extensions by the sum of log-probabilities and takes
the best 2K; an extension ending in `eos` among the best K is finished, the others fill the K
live beams. A sentence stops when it has K finished hypotheses and its best live beam, scored
as if it ended now, is no better than the worst of them (Hugging Face's rule: stopping at K
finished, as fairseq does, lost the right translation behind early unlikely ones in a test), or
at its maximum length (its live beams are then finished as they are). The answer is the finished hypothesis with the best
score / length^length_penalty (length counts `eos`; 0: no normalisation, 1: mean log-prob).
With K = 1 this is greedy search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import _checks as check

Step = Callable[[object, np.ndarray], tuple[np.ndarray, object, np.ndarray | None]]


def take_rows(state, rows: np.ndarray):
    """The rows `rows` of every array in a tuple tree (None stays None)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(take_rows(s, rows) for s in state)
    return state[rows]


def max_lengths(src_lengths: np.ndarray, max_len_a: float, max_len_b: int) -> np.ndarray:
    return np.ceil(max_len_a * np.asarray(src_lengths)).astype(int) + int(max_len_b)


@dataclass
class Hypothesis:
    tokens: list[int]                          # without bos and eos
    score: float                               # sum of log-probabilities, eos included
    length: int                                # tokens + eos (when it ended with one)
    align: list[int] = field(default_factory=list)   # per token: the source position attended most

    def normalised(self, penalty: float) -> float:
        return self.score / max(1, self.length) ** penalty


def greedy(step: Step, state, bos: int, eos: int, limits: np.ndarray) -> list[Hypothesis]:
    """The most likely next token at each step, for N rows at once."""
    N = len(limits)
    y = np.full(N, bos, dtype=np.int64)
    out = [Hypothesis([], 0.0, 0) for _ in range(N)]
    live = np.ones(N, dtype=bool)
    for t in range(int(limits.max())):
        logp, state, align = step(state, y)
        y = logp.argmax(axis=1)                                    # (N,) the first of ties
        for n in np.flatnonzero(live):
            h = out[n]
            h.score += float(logp[n, y[n]])
            h.length += 1
            if y[n] == eos:
                live[n] = False
            else:
                h.tokens.append(int(y[n]))
                h.align.append(-1 if align is None else int(align[n]))
                live[n] = t + 1 < limits[n]
        if not live.any():
            break
    return out


def beam_search(step: Step, state, bos: int, eos: int, limits: np.ndarray, beam: int = 5,
                length_penalty: float = 1.0) -> list[list[Hypothesis]]:
    """Each of the N rows' finished hypotheses, best first; `state` has N rows (it is copied
    to N * beam rows here)."""
    K = check.positive_int(beam, "beam")
    check.number(length_penalty, "length_penalty", 0.0)
    N = len(limits)
    rows = np.repeat(np.arange(N), K)                              # (N*K,) beam -> sentence
    state = take_rows(state, rows)
    y = np.full(N * K, bos, dtype=np.int64)
    scores = np.full((N, K), -np.inf)
    scores[:, 0] = 0.0                                             # one live beam at first
    tokens: list[list[int]] = [[] for _ in range(N * K)]
    aligns: list[list[int]] = [[] for _ in range(N * K)]
    finished: list[list[Hypothesis]] = [[] for _ in range(N)]
    active = np.ones(N, dtype=bool)
    for t in range(int(limits.max())):
        logp, state, align = step(state, y)                        # (N*K, V)
        V = logp.shape[1]
        cand = (scores[:, :, None] + logp.reshape(N, K, V)).reshape(N, K * V)
        top = np.argpartition(-cand, 2 * K - 1, axis=1)[:, :2 * K] if K * V > 2 * K else np.tile(np.arange(K * V), (N, 1))
        pick = np.empty(N * K, dtype=np.int64)                     # the rows each new beam extends
        new_y = np.full(N * K, eos, dtype=np.int64)
        new_scores = np.full((N, K), -np.inf)
        new_tokens: list[list[int]] = [[] for _ in range(N * K)]
        new_aligns: list[list[int]] = [[] for _ in range(N * K)]
        for n in range(N):
            base = n * K
            pick[base:base + K] = base                             # finished sentences: anything
            if not active[n]:
                continue
            c = top[n]
            order = c[np.lexsort((c, -cand[n, c]))]                # best first, ties by index
            kept = 0
            for rank, idx in enumerate(order):
                s = cand[n, idx]
                if not np.isfinite(s):
                    break
                b, tok = divmod(int(idx), V)
                if tok == eos:
                    if rank < K:                                   # among the best K: finished
                        finished[n].append(Hypothesis(list(tokens[base + b]), float(s), t + 1,
                                                      list(aligns[base + b])))
                    continue
                new_tokens[base + kept] = tokens[base + b] + [tok]
                new_aligns[base + kept] = aligns[base + b] + [-1 if align is None else int(align[base + b])]
                new_scores[n, kept] = s
                new_y[base + kept] = tok
                pick[base + kept] = base + b
                kept += 1
                if kept == K:
                    break
            if len(finished[n]) >= K:
                finished[n] = sorted(finished[n], key=lambda h: -h.normalised(length_penalty))[:K]
                live = new_scores[n][np.isfinite(new_scores[n])]
                best_live = live.max() / (t + 1) ** length_penalty if live.size else -np.inf
                if best_live <= finished[n][-1].normalised(length_penalty):
                    active[n] = False                              # no live beam can do better
                    continue
            if t + 1 >= limits[n]:                               # out of length: take the live
                finished[n] += [Hypothesis(new_tokens[base + k], float(new_scores[n, k]), t + 1,
                                           new_aligns[base + k]) for k in range(K) if np.isfinite(new_scores[n, k])]
                active[n] = False
        if not active.any():
            break
        state = take_rows(state, pick)
        y, scores, tokens, aligns = new_y, new_scores, new_tokens, new_aligns
    for n in range(N):
        finished[n].sort(key=lambda h: -h.normalised(length_penalty))
    return finished
