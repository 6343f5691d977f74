import numpy as np
import pytest

from rnnlab.cells.rnn import RNNCellConfig
from tests.helpers import gradcheck_step


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_step_gradcheck(nonlinearity, B, bias):
    gradcheck_step(RNNCellConfig(5, nonlinearity), B, bias=bias)


def test_relu_clips_negative_preactivations():
    cell = RNNCellConfig(2, "relu")
    from rnnlab.params import CellParams
    p = CellParams(w_ih=np.zeros((2, 1)), w_hh=np.eye(2))
    (h,), _ = cell.step_forward(p, np.array([[-1.0, 2.0]]), (np.zeros((1, 2)),))
    assert h.tolist() == [[0.0, 2.0]]
