import numpy as np
import pytest

import rnnlab


def test_pytorch_default_is_uniform_within_one_over_sqrt_h():
    m = rnnlab.LSTM(10, 64, num_layers=2, rng=0)
    k = 1 / np.sqrt(64)
    for name, a in m.named_parameters():
        assert np.abs(a).max() <= k, name
        assert np.abs(a).max() > 0.9 * k, name          # spread over the whole range


def test_same_seed_same_weights_and_generator_is_used():
    a = rnnlab.GRU(3, 8, rng=42).state_dict()
    b = rnnlab.GRU(3, 8, rng=np.random.default_rng(42)).state_dict()
    c = rnnlab.GRU(3, 8, rng=43).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["weight_hh_l0"], c["weight_hh_l0"])


def test_global_numpy_random_state_is_untouched():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    rnnlab.LSTM(3, 8, num_layers=2, dropout=0.5, rng=1)(np.ones((3, 2, 3), np.float32))
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("proj", [0, 3])
def test_orthogonal_recurrent_blocks(proj):
    m = rnnlab.LSTM(3, 8, proj_size=proj, init="orthogonal", dtype=np.float64, rng=0)
    w = m.layers[0][0].w_hh
    R = w.shape[1]
    for g in range(4):
        block = w[g * 8:(g + 1) * 8]                    # (H, R), H >= R: orthonormal columns
        np.testing.assert_allclose(block.T @ block, np.eye(R), atol=1e-12)


def test_forget_bias_sets_the_starting_forget_gate():
    m = rnnlab.LSTM(3, 4, forget_bias=1.0, rng=0)
    p = m.layers[0][0]
    assert (p.b_ih[4:8] == 1).all() and (p.b_hh[4:8] == 0).all()
    c = rnnlab.LSTM(3, 4, cifg=True, forget_bias=1.0, rng=0)
    p = c.layers[0][0]
    # CIFG: f = 1 - s(b_i) = s(-b_i) = s(1)
    assert (p.b_ih[:4] == -1).all() and (p.b_hh[:4] == 0).all()


def test_cifg_and_peephole_parameter_shapes():
    sd = rnnlab.LSTM(3, 4, cifg=True, peephole=True).state_dict()
    assert sd["weight_ih_l0"].shape == (12, 3)
    assert sd["weight_peephole_l0"].shape == (8,)
    sd = rnnlab.LSTM(3, 4, peephole=True, bidirectional=True).state_dict()
    assert sd["weight_peephole_l0_reverse"].shape == (12,)
