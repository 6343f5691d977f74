import numpy as np
import pytest

from rnnlab.losses import binary_cross_entropy_with_logits, mean_squared_error, softmax_cross_entropy
from rnnlab.testing import numeric_grad
from tests.helpers import check_close

torch = pytest.importorskip("torch")
F = torch.nn.functional


def test_softmax_cross_entropy_with_mask_gradcheck_and_torch():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 3, 5)) * 3
    y = rng.integers(0, 5, (4, 3))
    m = rng.random((4, 3)) > 0.3
    loss, g = softmax_cross_entropy(z, y, m)
    check_close(g, numeric_grad(lambda: softmax_cross_entropy(z, y, m)[0], z), "dlogits")
    yt = torch.tensor(np.where(m, y, -100))
    ref = F.cross_entropy(torch.tensor(z).reshape(-1, 5), yt.reshape(-1), ignore_index=-100)
    assert abs(loss - ref.item()) < 1e-12


@pytest.mark.parametrize("eps", [0.1, 1.0])
def test_label_smoothing_gradcheck_and_torch(eps):
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, 3, 5)) * 3
    y = rng.integers(0, 5, (4, 3))
    m = rng.random((4, 3)) > 0.3
    loss, g = softmax_cross_entropy(z, y, m, label_smoothing=eps)
    check_close(g, numeric_grad(lambda: softmax_cross_entropy(z, y, m, label_smoothing=eps)[0], z), "dlogits")
    zt = torch.tensor(z, requires_grad=True)
    yt = torch.tensor(np.where(m, y, -100))
    ref = F.cross_entropy(zt.reshape(-1, 5), yt.reshape(-1), ignore_index=-100, label_smoothing=eps)
    ref.backward()
    assert abs(loss - ref.item()) < 1e-12
    np.testing.assert_allclose(g, zt.grad.numpy(), atol=1e-14)
    with pytest.raises(Exception, match="label_smoothing: expected a number in"):
        softmax_cross_entropy(z, y, m, label_smoothing=1.5)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    loss, g = softmax_cross_entropy(np.array([[1e4, 0.0]]), np.array([1]))
    assert np.isfinite(loss) and abs(loss - 1e4) < 1e-6 and np.isfinite(g).all()


def test_bce_with_logits_gradcheck_and_torch():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3, 2, 6)) * 4
    y = (rng.random((3, 2, 6)) > 0.5).astype(float)
    m = np.array([[1, 1], [1, 0], [0, 1]], bool)
    for red in ("mean", "sum_labels"):
        loss, g = binary_cross_entropy_with_logits(z, y, m, red)
        check_close(g, numeric_grad(lambda: binary_cross_entropy_with_logits(z, y, m, red)[0], z), red)
    loss, _ = binary_cross_entropy_with_logits(z, y)
    ref = F.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(y))
    assert abs(loss - ref.item()) < 1e-12
    loss, _ = binary_cross_entropy_with_logits(z, y, reduction="sum_labels")
    assert abs(loss - ref.item() * 6) < 1e-10


def test_mse_gradcheck_and_mask():
    rng = np.random.default_rng(2)
    p, t = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 3))
    m = rng.random((5, 2)) > 0.4
    loss, g = mean_squared_error(p, t, m)
    check_close(g, numeric_grad(lambda: mean_squared_error(p, t, m)[0], p), "dpred")
    expected = ((p - t) ** 2)[m].mean()
    assert abs(loss - expected) < 1e-12


def test_loss_shape_errors():
    with pytest.raises(ValueError, match=r"targets: expected shape \(2,\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.zeros(3, int))
    with pytest.raises(ValueError, match=r"targets: expected class ids in \[0, 3\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
