"""Linear-chain conditional random field (Lafferty et al. 2001) over per-step tag scores, as
the BiLSTM-CRF taggers use it (Huang et al. 2015; Lample et al. 2016).

Letters: T steps, B batch, K tags. Time-major, as the recurrent layers: emissions (T, B, K),
tags and mask (T, B); sequences are left-aligned (mask[0] is all on, each column a prefix).
A path y scores

    s(y) = start[y_0] + sum_t e_t[y_t] + sum_{t>0} trans[y_{t-1}, y_t] + end[y_last]

and log p(y) = s(y) - log Z, with log Z = logsumexp over every path, summed by the forward
algorithm in log space. Its gradient is the expected count of every score under the model
(the marginals from forward-backward), so d log p(y) = counts(y) - marginals. Parameters and
their keys are pytorch-crf's (`torchcrf.CRF`): start_transitions, end_transitions,
transitions[from, to].

Constraints (`allowed_transitions`) forbid what a tagging scheme cannot produce (I-X after O in
IOB2; M/E after E/S in BMES): the forbidden scores are replaced by a constant -10,000, as
AllenNLP's CRF does, so no path the scheme forbids is ever decoded and their gradient is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks as check
from .._logspace import logsumexp
from ..errors import ConfigError, OrderError, ShapeError, ValueRangeError
from ..init import make_rng

FORBIDDEN = -1e4                                              # a forbidden move's score
REDUCTIONS = ("none", "sum", "mean", "token_mean")
SCHEMES = ("iob2", "bmes")


@dataclass
class CRFParams:
    start: np.ndarray                                         # (K,) score of the first tag
    end: np.ndarray                                           # (K,) score of the last tag
    trans: np.ndarray                                         # (K, K) score of from -> to


def crf_forward(p: CRFParams, emissions: np.ndarray, tags: np.ndarray, mask: np.ndarray):
    """Log-likelihood of `tags` (T, B) under emissions (T, B, K) -> (llh (B,), cache)."""
    T, B, K = emissions.shape
    cols = np.arange(B)
    last = mask.sum(0) - 1                                    # (B,) each sequence's last step
    # numerator: the gold path's score
    score = p.start[tags[0]] + emissions[0, cols, tags[0]]    # (B,)
    for t in range(1, T):
        score += (p.trans[tags[t - 1], tags[t]] + emissions[t, cols, tags[t]]) * mask[t]
    score += p.end[tags[last, cols]]
    # denominator: alpha[t, b, j] = log of the summed scores of every path ending in tag j at t
    alpha = np.empty((T, B, K), dtype=emissions.dtype)
    alpha[0] = p.start + emissions[0]
    for t in range(1, T):
        nxt = logsumexp(alpha[t - 1][:, :, None] + p.trans, 1) + emissions[t]   # (B, K) sum over "from"
        alpha[t] = np.where(mask[t][:, None], nxt, alpha[t - 1])           # padding carries alpha on
    log_z = logsumexp(alpha[-1] + p.end, 1)                        # (B,) alpha[-1] = alpha[last]
    return score - log_z, (emissions, tags, mask, alpha, log_z, last)


def crf_backward(p: CRFParams, cache, dllh: np.ndarray):
    """dllh (B,) -> d emissions (T, B, K) and the CRFParams of gradients."""
    emissions, tags, mask, alpha, log_z, last = cache
    T, B, K = emissions.shape
    cols = np.arange(B)
    w = dllh.astype(emissions.dtype)                          # (B,) each sequence's weight
    valid = mask.astype(emissions.dtype)                      # (T, B)
    # beta[t, b, i] = log of the summed scores of every way to finish from tag i at step t
    beta = np.empty_like(alpha)
    beta[-1] = p.end
    for t in range(T - 2, -1, -1):
        nxt = logsumexp(p.trans + (emissions[t + 1] + beta[t + 1])[:, None, :], 2)   # (B, K) sum over "to"
        beta[t] = np.where(mask[t + 1][:, None], nxt, p.end)                   # the last step ends
    unary = np.exp(alpha + beta - log_z[:, None]) * valid[:, :, None]           # (T, B, K) p(y_t = j)
    # gradients of llh = score - log Z: gold counts minus expected counts, each weighted by w
    dem = -unary * w[:, None]                                 # (T, B, K)
    np.add.at(dem, (np.arange(T)[:, None], cols[None, :], tags), valid * w)
    dstart = -(unary[0] * w[:, None]).sum(0)
    np.add.at(dstart, tags[0], w)
    end_marg = unary[last, cols]                              # (B, K) p(y_last = j)
    dend = -(end_marg * w[:, None]).sum(0)
    np.add.at(dend, tags[last, cols], w)
    dtrans = np.zeros_like(p.trans)
    for t in range(1, T):                                     # p(y_{t-1} = i, y_t = j)
        pair = np.exp(alpha[t - 1][:, :, None] + p.trans + (emissions[t] + beta[t])[:, None, :]
                      - log_z[:, None, None])                 # (B, K, K)
        dtrans -= np.einsum("b,bij->ij", w * valid[t], pair)
        np.add.at(dtrans, (tags[t - 1], tags[t]), w * valid[t])
    return dem, CRFParams(dstart, dend, dtrans)


def viterbi(p: CRFParams, emissions: np.ndarray, mask: np.ndarray) -> list[list[int]]:
    """The best path of every sequence (its own length), by max-product in log space."""
    T, B, K = emissions.shape
    score = p.start + emissions[0]                            # (B, K) best path ending in j
    back = np.zeros((T, B, K), dtype=np.int64)                # best "from" for each (t, j)
    for t in range(1, T):
        cand = score[:, :, None] + p.trans                    # (B, K from, K to)
        back[t] = cand.argmax(1)
        nxt = np.take_along_axis(cand, back[t][:, None, :], 1)[:, 0] + emissions[t]
        score = np.where(mask[t][:, None], nxt, score)
    score = score + p.end
    lengths = mask.sum(0)
    paths = []
    for b in range(B):
        y = [int(score[b].argmax())]
        for t in range(int(lengths[b]) - 1, 0, -1):           # trace back from the last step
            y.append(int(back[t, b, y[-1]]))
        paths.append(y[::-1])
    return paths


def _split(tag: str, scheme: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', ''); BMES tags may come without a type ('B')."""
    prefix, _, kind = tag.partition("-")
    prefixes = ("O", "B", "I") if scheme == "iob2" else ("O", "B", "M", "E", "S")
    if tag != "O" and (prefix not in prefixes or prefix == "O" or (scheme == "iob2" and not kind)):
        raise ConfigError(f"tags: {tag!r} is not a {scheme} tag (expected O or B-X/I-X for iob2; "
                          "B/M/E/S, optionally -X, or O for bmes)")
    return ("O", "") if tag == "O" else (prefix, kind)


def allowed_transitions(tags: list[str], scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start (K,), end (K,), trans (K, K)) booleans: what `scheme` allows.

    iob2: I-X only after B-X or I-X (and not first). bmes: a word begins with B or S and ends
    with E or S; M and E only after B or M of the same type; O (if any) between words."""
    if scheme not in SCHEMES:
        raise ConfigError(f"scheme: expected one of {SCHEMES}, got {scheme!r}")
    parts = [_split(t, scheme) for t in tags]
    inside = {"iob2": "I", "bmes": "ME"}[scheme]              # prefixes that continue a span
    closes = {"iob2": "BIO", "bmes": "ESO"}[scheme]           # prefixes after which a span may end
    start = np.array([pre not in inside for pre, _ in parts])
    end = np.array([pre in closes for pre, _ in parts])
    trans = np.zeros((len(tags), len(tags)), dtype=bool)
    for i, (pa, ka) in enumerate(parts):
        for j, (pb, kb) in enumerate(parts):
            if pb in inside:                                  # a continuation: same span, open
                ok = ka == kb and pa in ("BI" if scheme == "iob2" else "BM")
            else:                                             # a new span or O: the last one closed
                ok = pa in closes
            trans[i, j] = ok
    return start, end, trans


class CRF:
    """A linear-chain CRF with `torchcrf.CRF`'s interface: `crf(emissions, tags, mask,
    reduction)` is the log-likelihood, `decode(emissions, mask)` the Viterbi paths;
    `backward(grad=1.0)` after a call returns d emissions and keeps the parameter gradients.
    `constraints`: booleans (start, end, trans) of the allowed moves (`allowed_transitions`)."""

    def __init__(self, num_tags: int, batch_first: bool = False, *,
                 constraints: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                 dtype: object = np.float32, rng: np.random.Generator | int | None = None) -> None:
        K = check.positive_int(num_tags, "num_tags")
        self.num_tags, self.batch_first = K, bool(batch_first)
        self.dtype = check.as_dtype(dtype)
        g = make_rng(rng)
        self.start_transitions = g.uniform(-0.1, 0.1, K).astype(self.dtype)   # as torchcrf
        self.end_transitions = g.uniform(-0.1, 0.1, K).astype(self.dtype)
        self.transitions = g.uniform(-0.1, 0.1, (K, K)).astype(self.dtype)
        self.allowed = None
        if constraints is not None:
            shapes = [(K,), (K,), (K, K)]
            if len(constraints) != 3 or any(np.shape(c) != s for c, s in zip(constraints, shapes)):
                raise ShapeError(f"constraints: expected booleans of shapes {shapes}, "
                                 f"got {[np.shape(c) for c in constraints]}")
            self.allowed = tuple(np.asarray(c, dtype=bool) for c in constraints)
        self.grads: CRFParams | None = None
        self._cache = self._p = None
        self._weights = None

    def __repr__(self) -> str:
        return f"CRF(num_tags={self.num_tags})"

    def named_parameters(self):
        yield "start_transitions", self.start_transitions
        yield "end_transitions", self.end_transitions
        yield "transitions", self.transitions

    def named_grads(self):
        if self.grads is None:
            raise OrderError("no gradients yet: call backward() after a forward call")
        yield "start_transitions", self.grads.start
        yield "end_transitions", self.grads.end
        yield "transitions", self.grads.trans

    def params(self) -> CRFParams:
        """The scores the math reads: forbidden moves replaced by FORBIDDEN."""
        p = CRFParams(self.start_transitions, self.end_transitions, self.transitions)
        if self.allowed is None:
            return p
        return CRFParams(*(np.where(ok, a, FORBIDDEN).astype(self.dtype)
                           for ok, a in zip(self.allowed, (p.start, p.end, p.trans))))

    def _inputs(self, emissions, tags=None, mask=None):
        """Checked, time-major (T, B, K) emissions, (T, B) tags and boolean mask."""
        e = check.array(emissions, "emissions", self.dtype, (3,))
        if e.shape[2] != self.num_tags:
            raise ShapeError(f"emissions: expected last dimension {self.num_tags} (num_tags), got shape {e.shape}")
        if e.shape[0] == 0 or e.shape[1] == 0:
            raise ShapeError(f"emissions: expected at least one step and one sequence, got shape {e.shape}")
        lead = e.shape[:2]
        if tags is not None:
            tags = np.asarray(tags)
            if tags.shape != lead or tags.dtype.kind not in "iu":
                raise ShapeError(f"tags: expected integers of shape {lead}, got {tags.dtype} {tags.shape}")
            if tags.size and (tags.min() < 0 or tags.max() >= self.num_tags):
                raise ValueRangeError(f"tags: expected ids in [0, {self.num_tags}), got {tags.min()}..{tags.max()}")
        if mask is None:
            mask = np.ones(lead, dtype=bool)
        else:
            mask = np.asarray(mask)
            if mask.shape != lead:
                raise ShapeError(f"mask: expected shape {lead} (as emissions), got {mask.shape}")
            mask = mask.astype(bool)
        if self.batch_first:
            e, mask = e.transpose(1, 0, 2), mask.T
            tags = tags.T if tags is not None else None
        if not mask[0].all():
            raise ValueRangeError("mask: the first step of every sequence must be on")
        if (mask[1:] & ~mask[:-1]).any():
            raise ValueRangeError("mask: expected left-aligned sequences (each column on, then off), "
                                  "got a step on after one off")
        return e, tags, mask

    def __call__(self, emissions: np.ndarray, tags: np.ndarray, mask: np.ndarray | None = None,
                 reduction: str = "sum"):
        return self.forward(emissions, tags, mask, reduction)

    def forward(self, emissions: np.ndarray, tags: np.ndarray, mask: np.ndarray | None = None,
                reduction: str = "sum"):
        """Log-likelihood: (B,) with reduction "none", else a float (sum, mean over sequences,
        or token_mean over the steps the mask keeps)."""
        if reduction not in REDUCTIONS:
            raise ConfigError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
        e, tags, mask = self._inputs(emissions, tags, mask)
        if tags is None:
            raise ShapeError("tags: expected integer tags, got None")
        self._p = self.params()
        llh, self._cache = crf_forward(self._p, e, tags, mask)
        B = e.shape[1]
        self._weights = {"none": None, "sum": np.ones(B), "mean": np.full(B, 1 / B),
                         "token_mean": np.full(B, 1 / mask.sum())}[reduction]
        if reduction == "none":
            return llh
        return float((llh * self._weights).sum())

    def backward(self, grad: float | np.ndarray = 1.0) -> np.ndarray:
        """d emissions (in the caller's layout) for d(result) = `grad` (B,) when the call's
        reduction was "none", else a number; keeps the parameter gradients in `grads`."""
        if self._cache is None:
            raise OrderError("backward: no forward call to go back through")
        B = self._cache[0].shape[1]
        if self._weights is None:
            dllh = np.asarray(grad, dtype=np.float64)
            if dllh.shape != (B,):
                raise ShapeError(f"grad: expected shape ({B},) for reduction 'none', got {dllh.shape}")
        else:
            dllh = self._weights * float(grad)
        dem, g = crf_backward(self._p, self._cache, dllh)
        if self.allowed is not None:                          # forbidden scores are constants
            g = CRFParams(*(np.where(ok, d, 0).astype(self.dtype) for ok, d in zip(self.allowed, (g.start, g.end, g.trans))))
        self.grads, self._cache = g, None
        return dem.transpose(1, 0, 2) if self.batch_first else dem

    def decode(self, emissions: np.ndarray, mask: np.ndarray | None = None) -> list[list[int]]:
        """The most likely tag sequence of each sequence (its own length), by Viterbi."""
        e, _, mask = self._inputs(emissions, None, mask)
        return viterbi(self.params(), e, mask)
