"""Connectionist Temporal Classification (Graves et al. 2006): the loss of an unsegmented
label sequence under per-frame class log-probabilities, by the forward-backward recursions in
log space, vectorised over the batch; and its decoders (best path, prefix beam search).

Letters: T frames, B batch, C classes (blank included), S the longest target, L = 2S + 1 the
extended target (blank, l_1, blank, l_2, ..., l_S, blank). A path through the extended target
may stay on a symbol, move to the next one, or skip a blank between two different labels.

    alpha_t(s) = y_t(l'_s) * (alpha_{t-1}(s) + alpha_{t-1}(s-1) [+ alpha_{t-1}(s-2)])
    beta_t(s)  = y_t(l'_s) * (beta_{t+1}(s) + beta_{t+1}(s+1) [+ beta_{t+1}(s+2)])
    p(l | x)   = sum_s alpha_t(s) beta_t(s) / y_t(l'_s)     for any t

and d(-log p)/d log y_t(c) = -sum_{s: l'_s = c} alpha_t(s) beta_t(s) / (y_t(c) p), the
posterior of class c at frame t. That is the gradient with respect to `log_probs` as given,
which finite differences measure. torch's ctc_loss returns exp(log_probs) minus it instead,
its gradient through the log-softmax that made `log_probs`; through `log_softmax_backward`
both give the same gradient of the logits.
"""

from __future__ import annotations

import numpy as np

from ._logspace import logsumexp
from .errors import ConfigError, DTypeError, ShapeError, ValueRangeError

NEG_INF = -np.inf
REDUCTIONS = ("none", "mean", "sum")


def _lse(*xs: np.ndarray) -> np.ndarray:
    """log(sum(exp(x))) elementwise over the arrays given, -inf where all are -inf."""
    return logsumexp(np.stack(xs), 0)


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """a (B, L) moved k places along L (right for k > 0, left for k < 0), -inf where it left."""
    out = np.full_like(a, NEG_INF)
    if abs(k) < a.shape[1]:
        if k > 0:
            out[:, k:] = a[:, :-k]
        else:
            out[:, :k] = a[:, -k:]
    return out


def log_softmax_backward(log_probs: np.ndarray, dlog_probs: np.ndarray) -> np.ndarray:
    """d logits of log_probs = log_softmax(logits) over the last axis, from d log_probs."""
    return dlog_probs - np.exp(log_probs) * dlog_probs.sum(-1, keepdims=True)


def _targets(targets, target_lengths: np.ndarray, B: int, C: int, blank: int) -> np.ndarray:
    """(B, S) padded targets from padded (B, S) or concatenated (sum of lengths,) ones."""
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise DTypeError(f"targets: expected integer class ids, got dtype {targets.dtype}")
    S = int(target_lengths.max(initial=0))
    if targets.ndim == 1:
        if len(targets) != target_lengths.sum():
            raise ShapeError(f"targets: concatenated targets must hold sum(target_lengths) = "
                             f"{int(target_lengths.sum())} labels, got {len(targets)}")
        padded = np.full((B, S), blank, dtype=np.int64)
        ends = np.cumsum(target_lengths)
        for b, (n, end) in enumerate(zip(target_lengths, ends)):
            padded[b, :n] = targets[end - n:end]
    elif targets.ndim == 2:
        if targets.shape[0] != B or targets.shape[1] < S:
            raise ShapeError(f"targets: expected padded targets of shape ({B}, >= {S}), got {targets.shape}")
        padded = targets[:, :S].astype(np.int64)
    else:
        raise ShapeError(f"targets: expected a 1-D (concatenated) or 2-D (padded) array, got shape {targets.shape}")
    real = np.arange(S)[None, :] < target_lengths[:, None]
    if real.any():
        used = padded[real]
        if used.min() < 0 or used.max() >= C:
            raise ValueRangeError(f"targets: expected class ids in [0, {C}), got {used.min()}..{used.max()}")
        if (used == blank).any():
            raise ValueRangeError(f"targets: the blank ({blank}) cannot be a target label")
    return np.where(real, padded, blank)


def _lengths(x, name: str, B: int, limit: int, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "iu" or a.shape not in ((B,), ()):
        raise ShapeError(f"{name}: expected {B} integer lengths, got {a.dtype} {a.shape}")
    a = np.broadcast_to(a.astype(np.int64), (B,))
    if a.size and (a.min() < 0 or a.max() > limit):
        raise ValueRangeError(f"{name}: expected lengths in [0, {limit}] ({what}), got {a.min()}..{a.max()}")
    return a


def ctc_loss(log_probs: np.ndarray, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False, grad: bool = True):
    """-log p(targets | log_probs), as torch.nn.functional.ctc_loss -> (loss, d log_probs).

    log_probs (T, B, C) (or (T, C) for one sequence), normally log_softmax outputs; targets
    padded (B, S) or concatenated (sum(target_lengths),); reduction "mean" divides each loss by
    its target length (at least 1) and averages over the batch, "sum" adds, "none" gives (B,).
    An impossible alignment (too few frames) costs inf; `zero_infinity` makes it 0 with a 0
    gradient. The gradient is with respect to `log_probs` as given (see the module), of the
    loss, or of its sum for "none"; None with `grad=False`.
    """
    if reduction not in REDUCTIONS:
        raise ConfigError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    lp = np.asarray(log_probs)
    if lp.dtype.kind != "f":
        raise DTypeError(f"log_probs: expected floating log-probabilities, got dtype {lp.dtype}")
    single = lp.ndim == 2
    if single:
        lp = lp[:, None, :]
        targets = np.asarray(targets)[None] if np.ndim(targets) == 1 else targets
    if lp.ndim != 3:
        raise ShapeError(f"log_probs: expected (T, B, C) or (T, C), got shape {lp.shape}")
    T, B, C = lp.shape
    if not (isinstance(blank, (int, np.integer)) and 0 <= blank < C):
        raise ValueRangeError(f"blank: expected a class id in [0, {C}), got {blank!r}")
    Tb = _lengths(input_lengths, "input_lengths", B, T, "the frames of log_probs")
    Sb = _lengths(target_lengths, "target_lengths", B, np.iinfo(np.int64).max, "labels")
    if single and np.asarray(targets).ndim == 2 and np.asarray(targets).shape[0] != 1:
        raise ShapeError(f"targets: expected one target sequence for (T, C) log_probs, got {np.shape(targets)}")
    tgt = _targets(targets, Sb, B, C, blank)                               # (B, S)
    S = tgt.shape[1]
    L = 2 * S + 1
    ext = np.full((B, L), blank, dtype=np.int64)                           # (B, L) blank l1 blank l2 ...
    ext[:, 1::2] = tgt
    Lb = 2 * Sb + 1                                                        # (B,) each extended length
    s_idx = np.arange(L)
    inside = s_idx[None, :] < Lb[:, None]                                  # (B, L)
    # a skip from s-2 to s is allowed onto a label different from the label two back
    skip = np.zeros((B, L), dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    rows = np.arange(B)[:, None]
    emit = lp[:, rows, ext].astype(np.float64)                             # (T, B, L) log y_t(l'_s)
    # forward: alpha (T, B, L), frames past a sequence's end keep its last alpha
    alpha = np.full((T, B, L), NEG_INF)
    alpha[0, :, 0] = emit[0, :, 0]
    if L > 1:
        alpha[0, :, 1] = np.where(Sb > 0, emit[0, :, 1], NEG_INF)
    alpha[0][~inside] = NEG_INF
    for t in range(1, T):
        a = alpha[t - 1]
        one, two = _shift(a, 1), np.where(skip, _shift(a, 2), NEG_INF)    # from s - 1, s - 2
        nxt = np.where(inside, emit[t] + _lse(a, one, two), NEG_INF)
        alpha[t] = np.where((t < Tb)[:, None], nxt, a)
    last = np.maximum(Tb - 1, 0)
    a_end = alpha[last, np.arange(B)]                                      # (B, L) at each last frame
    end1 = a_end[np.arange(B), Lb - 1]
    end2 = np.where(Sb > 0, a_end[np.arange(B), np.maximum(Lb - 2, 0)], NEG_INF)
    log_p = _lse(end1, end2)                                               # (B,)
    log_p = np.where(Tb > 0, log_p, np.where(Sb == 0, 0.0, NEG_INF))       # no frames: only "" is possible
    nll = -log_p
    infinite = ~np.isfinite(nll)
    if zero_infinity:
        nll = np.where(infinite, 0.0, nll)
    weights = {"none": np.ones(B), "sum": np.ones(B),
               "mean": 1.0 / (np.maximum(Sb, 1) * max(B, 1))}[reduction]
    loss = nll.astype(lp.dtype) if reduction == "none" else float((nll * weights).sum())
    if single and reduction == "none":
        loss = loss[0]
    if not grad:
        return loss, None
    # backward: beta (T, B, L), defined up to each sequence's last frame
    beta = np.full((T, B, L), NEG_INF)
    init = np.full((B, L), NEG_INF)
    init[np.arange(B), Lb - 1] = emit[last, np.arange(B), Lb - 1]
    has_label = Sb > 0
    init[np.arange(B)[has_label], (Lb - 2)[has_label]] = emit[last[has_label], np.arange(B)[has_label],
                                                               (Lb - 2)[has_label]]
    skip_from = _shift(np.where(skip, 0.0, NEG_INF), -2) == 0             # s may take s + 2's path
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            rec = np.full((B, L), NEG_INF)
        else:
            b1 = beta[t + 1]
            one, two = _shift(b1, -1), np.where(skip_from, _shift(b1, -2), NEG_INF)   # from s + 1, s + 2
            rec = np.where(inside, emit[t] + _lse(b1, one, two), NEG_INF)
        beta[t] = np.where((t == Tb - 1)[:, None], init, np.where((t < Tb - 1)[:, None], rec, NEG_INF))
    # posterior of each extended position at each frame, summed by class
    with np.errstate(invalid="ignore"):
        post = np.exp(alpha + beta - emit - log_p[None, :, None])          # (T, B, L)
    post = np.where(np.isfinite(post), post, 0.0)
    dlp = np.zeros((T, B, C))
    np.add.at(dlp, (slice(None), rows, ext), -post)                        # (T, B, C)
    dlp *= np.where(infinite, 0.0, weights)[None, :, None]
    if not zero_infinity and infinite.any():                               # as torch: NaN over the frames
        frames = np.arange(T)[:, None] < Tb[None, :]                       # of an impossible sequence
        dlp[frames & infinite[None, :]] = np.nan
    dlp = dlp.astype(lp.dtype)
    return loss, (dlp[:, 0] if single else dlp)


def greedy_decode(log_probs: np.ndarray, input_lengths, blank: int = 0) -> list[list[int]]:
    """Best path: the likeliest class of every frame, repeats merged, blanks dropped."""
    lp = np.asarray(log_probs)
    if lp.ndim != 3:
        raise ShapeError(f"log_probs: expected (T, B, C), got shape {lp.shape}")
    Tb = _lengths(input_lengths, "input_lengths", lp.shape[1], lp.shape[0], "the frames of log_probs")
    best = lp.argmax(-1)                                                   # (T, B)
    out = []
    for b, n in enumerate(Tb):
        path = best[:n, b]
        keep = np.r_[True, path[1:] != path[:-1]] & (path != blank) if n else np.zeros(0, bool)
        out.append(path[keep].tolist())
    return out


def prefix_beam_search(log_probs: np.ndarray, input_lengths, beam: int = 8, blank: int = 0) -> list[list[int]]:
    """CTC prefix beam search (Hannun et al. 2014, no language model): the `beam` likeliest
    label prefixes are kept frame by frame, each with the log-probability of its paths that end
    in a blank and of those that end in its last label, so paths that collapse to the same
    labels are summed; the likeliest prefix at the end wins."""
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 3:
        raise ShapeError(f"log_probs: expected (T, B, C), got shape {lp.shape}")
    if not (isinstance(beam, (int, np.integer)) and beam >= 1):
        raise ConfigError(f"beam: expected an int >= 1, got {beam!r}")
    Tb = _lengths(input_lengths, "input_lengths", lp.shape[1], lp.shape[0], "the frames of log_probs")
    C = lp.shape[2]
    out = []
    for b, n in enumerate(Tb):
        beams = {(): (0.0, NEG_INF)}                                       # prefix -> (log p_blank, log p_label)
        for t in range(n):
            y = lp[t, b]
            nxt: dict[tuple, list[float]] = {}

            def add(prefix, pb, pnb):
                cur = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
                cur[0], cur[1] = np.logaddexp(cur[0], pb), np.logaddexp(cur[1], pnb)

            for prefix, (pb, pnb) in beams.items():
                total = np.logaddexp(pb, pnb)
                add(prefix, total + y[blank], NEG_INF)                     # a blank: the prefix stays
                if prefix:                                                 # its last label again: merged
                    add(prefix, NEG_INF, pnb + y[prefix[-1]])
                for c in range(C):
                    if c == blank:
                        continue
                    if prefix and c == prefix[-1]:                         # a repeat needs a blank between
                        add(prefix + (c,), NEG_INF, pb + y[c])
                    else:
                        add(prefix + (c,), NEG_INF, total + y[c])
            ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:beam]
            beams = {k: (v[0], v[1]) for k, v in ranked}
        out.append(list(max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))[0]))
    return out
