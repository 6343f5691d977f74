import numpy as np
import pytest

from rnnlab.cells.gru import GRUCellConfig
from rnnlab.params import CellParams
from tests.helpers import gradcheck_step


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_step_gradcheck(reset_after, B, bias):
    gradcheck_step(GRUCellConfig(4, reset_after), B, bias=bias)


def test_the_two_forms_differ_only_through_the_reset_gate():
    """With W_hn = I, b_hn = 0 and r ~ 1/2: after gives r*(h), before gives (r*h): equal;
    with b_hn != 0 they differ by (1 - r) * b_hn inside the tanh."""
    H = 2
    rng = np.random.default_rng(0)
    w_hh = np.zeros((3 * H, H))
    w_hh[2 * H:] = np.eye(H)
    b_hh = np.zeros(3 * H)
    p = CellParams(w_ih=np.zeros((3 * H, 1)), w_hh=w_hh, b_ih=np.zeros(3 * H), b_hh=b_hh)
    xp, h = rng.standard_normal((1, 3 * H)), rng.standard_normal((1, H))
    after = GRUCellConfig(H, True).step_forward(p, xp, (h,))[0][0]
    before = GRUCellConfig(H, False).step_forward(p, xp, (h,))[0][0]
    np.testing.assert_allclose(after, before, rtol=1e-14)
    b_hh[2 * H:] = 1.0
    after = GRUCellConfig(H, True).step_forward(p, xp, (h,))[0][0]
    before = GRUCellConfig(H, False).step_forward(p, xp, (h,))[0][0]
    assert np.abs(after - before).min() > 1e-3
