import numpy as np
import pytest

from rnnlab.layers import Dense, Dropout, Embedding
from rnnlab.testing import numeric_grad
from tests.helpers import check_close

torch = pytest.importorskip("torch")


def test_dense_gradcheck_over_time_steps():
    rng = np.random.default_rng(0)
    d = Dense(4, 3, dtype=np.float64, rng=0)
    x = rng.standard_normal((5, 2, 4))
    R = rng.standard_normal((5, 2, 3))
    loss = lambda: float((d(x) * R).sum())  # noqa: E731
    d(x)
    dx = d.backward(R)
    check_close(dx, numeric_grad(loss, x), "dx")
    check_close(d.grads[0], numeric_grad(loss, d.weight), "dw")
    check_close(d.grads[1], numeric_grad(loss, d.bias), "db")


def test_dense_matches_torch_linear():
    lin = torch.nn.Linear(4, 3).double()
    d = Dense(4, 3, dtype=np.float64)
    d.weight[...] = lin.weight.detach().numpy()
    d.bias[...] = lin.bias.detach().numpy()
    x = np.random.default_rng(0).standard_normal((6, 4))
    np.testing.assert_allclose(d(x), lin(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_embedding_gradcheck_with_repeated_ids_and_padding():
    rng = np.random.default_rng(0)
    e = Embedding(6, 3, padding_idx=0, dtype=np.float64, rng=0)
    ids = np.array([[1, 2, 1], [0, 5, 1]])
    R = rng.standard_normal((2, 3, 3))
    loss = lambda: float((e(ids) * R).sum())  # noqa: E731
    e(ids)
    e.backward(R)
    num = numeric_grad(loss, e.weight)
    num[0] = 0                                   # padding row is frozen
    check_close(e.grad, num, "dweight")
    assert (e.weight[0] == 0).all()


def test_embedding_rejects_out_of_range_ids():
    e = Embedding(5, 2)
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 5\).*max 7"):
        e(np.array([1, 7]))
    with pytest.raises(TypeError, match="ids: expected integer token ids"):
        e(np.array([1.0]))


def test_dropout_fixed_mask_and_eval_identity():
    x = np.ones((1000,), np.float32)
    d = Dropout(0.25, np.random.default_rng(0))
    y = d(x)
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.05
    np.testing.assert_array_equal(d.backward(x), y)     # same mask on the way back
    d.training = False
    assert d(x) is x


def test_embedding_init_std():
    from rnnlab.errors import ValueRangeError
    from rnnlab.layers import Embedding
    small = Embedding(2000, 16, init_std=0.05, rng=0).weight
    assert abs(small.std() - 0.05) < 0.002
    np.testing.assert_allclose(small, Embedding(2000, 16, rng=0).weight * 0.05, rtol=1e-6)  # same draw, scaled
    with pytest.raises(ValueRangeError, match="init_std"):
        Embedding(5, 3, init_std=0)


@pytest.mark.parametrize("shape", [(0,), (7,), (20, 20), (5, 3, 2)])
def test_embedding_backward_sums_rows_by_id_as_add_at_does(shape):
    """Sorted and summed with reduceat: np.add.at's sums, to float32 rounding."""
    from rnnlab.layers.embedding import embedding_backward
    rng = np.random.default_rng(0)
    w = rng.standard_normal((11, 4)).astype(np.float32)
    ids = rng.integers(0, 11, shape)                   # repeated ids, some absent
    dout = rng.standard_normal(shape + (4,)).astype(np.float32)
    want = np.zeros_like(w)
    np.add.at(want, ids.reshape(-1), dout.reshape(-1, 4))
    np.testing.assert_allclose(embedding_backward(w, ids, dout), want, rtol=1e-6, atol=1e-6)
