import numpy as np
import pytest

from rnnlab.data.synthetic import REBER_SYMBOLS, adding_problem, copy_memory, embedded_reber, first_token_task


def test_adding_problem_statistics_and_determinism():
    x, y = adding_problem(20000, 50, np.random.default_rng(0))
    x2, y2 = adding_problem(20000, 50, np.random.default_rng(0))
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert x.shape == (50, 20000, 2) and y.shape == (20000, 1)
    marks = x[:, :, 1]
    assert (marks.sum(0) == 2).all()
    assert (marks[:25].sum(0) == 1).all() and (marks[25:].sum(0) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(0))
    assert abs(((y - 1.0) ** 2).mean() - 1 / 6) < 0.005      # the always-predict-mean baseline


def test_copy_memory_layout():
    x, y = copy_memory(5, 30, np.random.default_rng(1))
    assert x.shape == y.shape == (50, 5)
    np.testing.assert_array_equal(y[-10:], x[:10])
    assert (x[10:39] == 0).all() and (x[39] == 9).all() and (x[40:] == 0).all()
    assert (y[:-10] == 0).all() and set(np.unique(x[:10])) <= set(range(1, 9))


def test_embedded_reber_strings_are_in_the_grammar():
    strings = embedded_reber(500, np.random.default_rng(2))
    for s, legal in strings:
        assert s[0] == "B" and s[-1] == "E" and s[1] == s[-2] and s[1] in "TP"
        assert set(s) <= set(REBER_SYMBOLS) and len(legal) == len(s)
        for t in range(len(s) - 1):
            assert s[t + 1] in legal[t]                      # every step follows the grammar
    assert {s[1] for s, _ in strings} == {"T", "P"}
    assert len({s for s, _ in strings}) > 50                 # varied


def test_first_token_task():
    x, y = first_token_task(1000, 30, np.random.default_rng(3), classes=4)
    assert x.shape == (31, 1000)
    np.testing.assert_array_equal(x[0], y)
    assert (x[1:] >= 4).all()
    assert abs(np.bincount(y).min() / 1000 - 0.25) < 0.05


def test_bad_length():
    with pytest.raises(ValueError, match="T: expected a length >= 2"):
        adding_problem(3, 1, np.random.default_rng(0))
