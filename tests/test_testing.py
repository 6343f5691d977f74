"""The finite-difference helpers themselves: rnnlab.testing.numeric_grad and the tests' sampled
parameter check, which must still catch a gradient wrong in one row, column or gate block."""

import numpy as np
import pytest

from rnnlab.errors import DTypeError
from rnnlab.testing import numeric_grad
from tests.helpers import ALL_ENTRIES_UP_TO, check_parameter, covering_entries


def test_numeric_grad_of_a_quadratic_all_entries_or_some():
    a = np.arange(12.0).reshape(3, 4)
    c = np.random.default_rng(0).standard_normal(a.shape)
    f = lambda: float((c * a ** 2).sum())               # d/da = 2 c a
    np.testing.assert_allclose(numeric_grad(f, a), 2 * c * a, rtol=1e-7, atol=1e-7)
    at = [(2, 3), (0, 0), (1, 2)]
    np.testing.assert_allclose(numeric_grad(f, a, at=at), [2 * c[i] * a[i] for i in at], rtol=1e-7, atol=1e-7)
    assert np.array_equal(a, np.arange(12.0).reshape(3, 4))          # restored


def test_numeric_grad_refuses_float32():
    with pytest.raises(DTypeError, match="float64"):
        numeric_grad(lambda: 0.0, np.zeros(3, np.float32))


@pytest.mark.parametrize("shape", [(40, 8), (8, 40), (3, 5, 7), (100,)])
def test_covering_entries_touch_every_index_of_every_axis(shape):
    at = covering_entries(shape, np.random.default_rng(1))
    assert len(at) <= sum(shape) and len(set(at)) == len(at)
    for axis, n in enumerate(shape):
        assert {i[axis] for i in at} == set(range(n))


@pytest.mark.parametrize("wrong", ["row", "column", "block", "none"])
def test_the_sampled_check_catches_a_gradient_wrong_in_one_row_column_or_block(wrong):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((32, 8))                    # 256 entries: sampled
    assert a.size > ALL_ENTRIES_UP_TO
    c = rng.standard_normal(a.shape)
    analytic = c.copy()                                 # d/da sum(c * a) = c
    if wrong == "row":
        analytic[5] *= 1.01
    elif wrong == "column":
        analytic[:, 7] = 0.0
    elif wrong == "block":
        analytic[16:24] = -analytic[16:24]              # one gate of four, sign flipped
    loss = lambda: float((c * a).sum())
    if wrong == "none":
        check_parameter(loss, a, analytic, "w", np.random.default_rng(3))
    else:
        with pytest.raises(AssertionError, match="entries"):
            check_parameter(loss, a, analytic, "w", np.random.default_rng(3))
