"""Long-dependency tasks, generated from a seed: the classic tests of memory in RNNs.

Every generator takes `n` examples and an explicit `np.random.Generator` and returns
time-major arrays.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def adding_problem(n: int, T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Le et al. 2015 form of Hochreiter & Schmidhuber's adding problem.

    x (T, n, 2): channel 0 uniform on [0, 1]; channel 1 zero but for two 1 markers, one in the
    first half and one in the second half. y (n, 1): the sum of the two marked numbers.
    Always predicting the mean, 1, scores MSE = Var(U + U) = 1/6 ~ 0.167."""
    if T < 2:
        raise ConfigError(f"T: expected a length >= 2, got {T}")
    x = np.zeros((T, n, 2))
    x[:, :, 0] = rng.random((T, n))
    first = rng.integers(0, T // 2, n)
    second = rng.integers(T // 2, T, n)
    cols = np.arange(n)
    x[first, cols, 1] = 1.0
    x[second, cols, 1] = 1.0
    y = (x[first, cols, 0] + x[second, cols, 0])[:, None]
    return x, y


def copy_memory(n: int, T: int, rng: np.random.Generator, symbols: int = 8, remember: int = 10
                ) -> tuple[np.ndarray, np.ndarray]:
    """Arjovsky et al. 2016 copy-memory task. Tokens: 0 blank, 1..symbols data, symbols+1 the
    delimiter. x (T + 2*remember, n): `remember` data symbols, T-1 blanks, the delimiter,
    `remember` blanks; y: blanks, then the data symbols in the last `remember` steps. The
    memoryless baseline's cross-entropy is remember*log(symbols)/(T + 2*remember)."""
    L = T + 2 * remember
    x = np.zeros((L, n), dtype=np.int64)
    y = np.zeros((L, n), dtype=np.int64)
    data = rng.integers(1, symbols + 1, (remember, n))
    x[:remember] = data
    x[remember + T - 1] = symbols + 1
    y[-remember:] = data
    return x, y


REBER_SYMBOLS = "BTPSXVE"
# the Reber grammar (Reber 1967; as in Hochreiter & Schmidhuber 1997): state -> [(symbol, next)]
_REBER = {0: [("T", 1), ("P", 2)], 1: [("S", 1), ("X", 3)], 2: [("T", 2), ("V", 4)],
          3: [("X", 2), ("S", 5)], 4: [("P", 3), ("V", 5)], 5: [("E", -1)]}


def _reber_string(rng: np.random.Generator) -> tuple[str, list[set[str]]]:
    """One Reber string B...E and, for each position, the set of legal next symbols."""
    out, legal, state = "B", [{"T", "P"}], 0
    while state != -1:
        options = _REBER[state]
        sym, state = options[rng.integers(len(options))]
        out += sym
        legal.append({s for s, _ in _REBER[state]} if state != -1 else set())
    return out, legal


def embedded_reber(n: int, rng: np.random.Generator) -> list[tuple[str, list[set[str]]]]:
    """Embedded Reber strings: B, then T or P, then a Reber string, then the same T or P, then
    E; with the set of legal successors at each position (the last symbol has none). The
    symbol before the final E can only be predicted by remembering the second symbol."""
    out = []
    for _ in range(n):
        branch = "TP"[rng.integers(2)]
        inner, inner_legal = _reber_string(rng)
        s = "B" + branch + inner + branch + "E"
        legal = [{"T", "P"}, {"B"}] + inner_legal[:-1] + [{branch}, {"E"}, set()]
        out.append((s, legal))
    return out


def first_token_task(n: int, gap: int, rng: np.random.Generator, classes: int = 4,
                     distractors: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """"I grew up in France ... I speak fluent French": the class is given by the first token
    (ids 0..classes-1); `gap` distractor tokens (ids classes..classes+distractors-1) follow.
    x (gap + 1, n) ids, y (n,) the class. Chance accuracy is 1/classes."""
    y = rng.integers(0, classes, n)
    x = np.concatenate([y[None], rng.integers(classes, classes + distractors, (gap, n))])
    return x, y
