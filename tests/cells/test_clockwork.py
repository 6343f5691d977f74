"""Clockwork RNN: module schedule, masked recurrence, gradients."""

import numpy as np
import pytest

import rnnlab
from rnnlab.cells.clockwork import ClockworkCellConfig
from rnnlab.errors import ConfigError
from tests.helpers import gradcheck_network


def test_modules_update_only_on_their_clock():
    net = rnnlab.ClockworkRNN(2, 6, periods=(1, 2, 4), dtype=np.float64, rng=0)
    y, _ = net(np.random.default_rng(0).standard_normal((9, 3, 2)))
    for t in range(1, 9):
        for unit, period in enumerate((1, 1, 2, 2, 4, 4)):
            held = np.array_equal(y[t, :, unit], y[t - 1, :, unit])
            assert held == (t % period != 0), (t, unit)


def test_fast_modules_do_not_read_slower_ones_backwards():
    cell = ClockworkCellConfig(5, (1, 2))                          # units 0-2: module 0; 3-4: module 1
    M = cell.recurrent_mask()
    assert M[:3].all() and not M[3:, :3].any() and M[3:, 3:].all()
    net = rnnlab.ClockworkRNN(2, 5, periods=(1, 2), dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal((6, 2, 2))
    y, _ = net(x)
    net.backward(np.ones_like(y))
    assert not net.grads["weight_hh_l0"][3:, :3].any()             # outside the mask: no gradient
    sd = net.state_dict()
    sd["weight_hh_l0"][3:, :3] = 5.0                               # and no effect
    net.load_state_dict(sd)
    np.testing.assert_array_equal(net(x)[0], y)


@pytest.mark.parametrize("extra", [{}, {"zoneout": 0.3, "input_dropout": 0.2, "recurrent_dropout": 0.2}],
                         ids=["plain", "regularised"])
def test_gradcheck_stacked_bidirectional_with_lengths(extra):
    rng = np.random.default_rng(0)
    make = lambda: rnnlab.ClockworkRNN(2, 5, num_layers=2, bidirectional=True, periods=(1, 2, 3),  # noqa: E731
                                       dtype=np.float64, rng=1, **extra)
    x = rng.standard_normal((7, 3, 2))
    gradcheck_network(make, x, rng.standard_normal((4, 3, 5)), [7, 3, 5], dropout_seed=5 if extra else None)


def test_stream_follows_the_clock():
    net = rnnlab.ClockworkRNN(3, 6, num_layers=2, num_modules=3, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((9, 2, 3))
    y, h = net(x)
    s = net.stream(batch_size=2)
    np.testing.assert_allclose(np.stack([s.step(v) for v in x]), y, atol=1e-12)
    np.testing.assert_allclose(s.state, h, atol=1e-12)


def test_clockwork_errors():
    with pytest.raises(ConfigError, match="increasing"):
        rnnlab.ClockworkRNN(2, 4, periods=(4, 1))
    with pytest.raises(ConfigError, match="positive ints"):
        rnnlab.ClockworkRNN(2, 4, periods=(1, 0))
    with pytest.raises(ConfigError, match="at least as many hidden units"):
        rnnlab.ClockworkRNN(2, 2, periods=(1, 2, 4))
