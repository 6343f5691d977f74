import numpy as np
import pytest

from rnnlab.cells.lstm import LSTMCellConfig
from rnnlab.params import CellParams
from tests.helpers import gradcheck_step

VARIANTS = [
    dict(),
    dict(peephole=True),
    dict(cifg=True),
    dict(peephole=True, cifg=True),
    dict(proj_size=2),
    dict(proj_size=2, peephole=True, cifg=True),
]


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(o) or "plain")
@pytest.mark.parametrize("B", [1, 3])
def test_step_gradcheck(options, B):
    gradcheck_step(LSTMCellConfig(4, **options), B)


def test_step_gradcheck_without_bias():
    gradcheck_step(LSTMCellConfig(4, peephole=True), 2, bias=False)


def test_cifg_forget_gate_is_one_minus_input_gate():
    """With f = 1 - i and zero candidate, c' = (1 - i) c exactly."""
    H = 3
    cell = LSTMCellConfig(H, cifg=True)
    p = CellParams(w_ih=np.zeros((3 * H, 1)), w_hh=np.zeros((3 * H, H)))
    a_i = np.array([[0.3, -1.0, 2.0]])
    xp = np.concatenate([a_i, np.full((1, H), -50.0), np.zeros((1, H))], axis=1)  # g ~ -1
    xp[:, H:2 * H] = 0.0                                                        # g = 0
    c = np.array([[1.0, 2.0, -3.0]])
    (_, c_new), _ = cell.step_forward(p, xp, (np.zeros((1, H)), c))
    i = 1 / (1 + np.exp(-a_i))
    np.testing.assert_allclose(c_new, (1 - i) * c, rtol=1e-14)


def test_peephole_output_gate_reads_new_cell_state():
    """o = s(a_o + p_o c_t): with only p_o non-zero, o follows c_t, not c_{t-1}."""
    H = 1
    cell = LSTMCellConfig(H, peephole=True)
    p = CellParams(w_ih=np.zeros((4, 1)), w_hh=np.zeros((4, 1)),
                   w_peephole=np.array([0.0, 0.0, 2.0]))
    xp = np.array([[50.0, -50.0, 0.5, 0.0]])          # i ~ 1, f ~ 0, g = tanh(.5)
    (h, c_new), _ = cell.step_forward(p, xp, (np.zeros((1, 1)), np.array([[7.0]])))
    o = 1 / (1 + np.exp(-2.0 * c_new))
    np.testing.assert_allclose(h, o * np.tanh(c_new), rtol=1e-12)
