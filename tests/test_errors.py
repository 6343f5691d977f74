"""Bad input: a clear rnnlab error naming the argument, what was expected and what came."""

import numpy as np
import pytest

import rnnlab
from rnnlab.errors import ConfigError, DTypeError, RnnlabError, ShapeError, ValueRangeError

f32 = np.float32


def lstm(**kw):
    return rnnlab.LSTM(3, 4, rng=0, **kw)


def x_(T=5, B=2, D=3, dtype=f32):
    return np.zeros((T, B, D), dtype=dtype)


@pytest.mark.parametrize("x,error,pattern", [
    (np.zeros((5, 2, 3), np.float64), DTypeError, r"x: expected dtype float32.*got float64.*astype"),
    (np.zeros((5, 2, 3), np.int64), DTypeError, r"x: expected dtype float32.*got int64"),
    ([[[0.0] * 3]], DTypeError, r"x: expected a numpy.ndarray.*got list"),
    (np.zeros((5,), f32), ShapeError, r"x: expected a 2-D or 3-D array, got shape \(5,\)"),
    (np.zeros((5, 2, 3, 1), f32), ShapeError, r"x: expected a 2-D or 3-D array"),
    (np.zeros((5, 2, 7), f32), ShapeError, r"x: expected input size 3.*got 7"),
    (np.zeros((0, 2, 3), f32), ShapeError, r"x: expected at least one time step"),
])
def test_bad_x(x, error, pattern):
    with pytest.raises(error, match=pattern):
        lstm()(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(bad):
    x = x_()
    x[2, 1, 0] = bad
    with pytest.raises(ValueRangeError, match=r"x: contains (NaN|inf|-inf) at index \(2, 1, 0\)"):
        lstm()(x)


@pytest.mark.parametrize("lengths,error,pattern", [
    ([5, 6], ValueRangeError, r"lengths: expected every length in \[0, 5\].*max 6"),
    ([5, -1], ValueRangeError, r"lengths: expected every length in \[0, 5\].*min -1"),
    ([5.0, 2.0], DTypeError, r"lengths: expected integers, got dtype float64"),
    ([5, 2, 1], ShapeError, r"lengths: expected shape \(2,\).*got \(3,\)"),
    ([[5, 2]], ShapeError, r"lengths: expected shape \(2,\)"),
])
def test_bad_lengths(lengths, error, pattern):
    with pytest.raises(error, match=pattern):
        lstm()(x_(), lengths=lengths)


def test_bad_initial_states():
    m = lstm(num_layers=2)
    h = np.zeros((2, 2, 4), f32)
    with pytest.raises(ShapeError, match=r"hx: expected a tuple \(h_0, c_0\) for LSTM"):
        m(x_(), h)
    with pytest.raises(ShapeError, match=r"c_0: expected shape \(2, 2, 4\).*got \(1, 2, 4\)"):
        m(x_(), (h, np.zeros((1, 2, 4), f32)))
    with pytest.raises(DTypeError, match=r"h_0: expected dtype float32"):
        m(x_(), (h.astype(np.float64), h))
    with pytest.raises(ValueRangeError, match=r"h_0: contains NaN"):
        m(x_(), (np.full_like(h, np.nan), h))
    g = rnnlab.GRU(3, 4, bidirectional=True, rng=0)
    with pytest.raises(ShapeError, match=r"h_0: expected shape \(2, 2, 4\) \(num_layers \* num_dir"):
        g(x_(), np.zeros((1, 2, 4), f32))


def test_bad_backward_gradients():
    m = lstm()
    y, _ = m(x_())
    with pytest.raises(ShapeError, match=r"doutput: expected shape \(5, 2, 4\)"):
        m.backward(np.zeros((5, 2, 5), f32))
    with pytest.raises(DTypeError, match=r"doutput: expected dtype float32"):
        m.backward(np.zeros((5, 2, 4)))
    with pytest.raises(ShapeError, match=r"dc_n: expected shape \(1, 2, 4\)"):
        m.backward(y, (np.zeros((1, 2, 4), f32), np.zeros((2, 2, 4), f32)))
    with pytest.raises(ShapeError, match=r"dstate: expected a tuple \(dh_n, dc_n\)"):
        m.backward(y, np.zeros((1, 2, 4), f32))


@pytest.mark.parametrize("make,pattern", [
    (lambda: rnnlab.LSTM(3, 4, proj_size=4), r"proj_size: expected an int < hidden_size \(4\), got 4"),
    (lambda: rnnlab.LSTM(3, 4, proj_size=-1), r"proj_size: expected an int >= 0, got -1"),
    (lambda: rnnlab.RNN(3, 4, nonlinearity="sigmoid"), r"nonlinearity: expected one of 'tanh', 'relu', got 'sigmoid'"),
    (lambda: rnnlab.GRU(3, 0), r"hidden_size: expected an int > 0, got 0"),
    (lambda: rnnlab.GRU(3.5, 4), r"input_size: expected an int, got float"),
    (lambda: rnnlab.GRU(3, 4, num_layers=0), r"num_layers: expected an int > 0"),
    (lambda: rnnlab.GRU(3, 4, dropout=1.0), r"dropout: expected a float in \[0, 1\), got 1.0"),
    (lambda: rnnlab.LSTM(3, 4, init="xavier"), r"init: expected one of 'pytorch', 'orthogonal', got 'xavier'"),
    (lambda: rnnlab.LSTM(3, 4, dtype=np.float16), r"dtype: expected float32 or float64, got float16"),
    (lambda: rnnlab.LSTM(3, 4, bias=False, forget_bias=1.0), r"forget_bias: needs bias=True"),
])
def test_bad_options(make, pattern):
    with pytest.raises(RnnlabError, match=pattern):
        make()


def test_unknown_option_names_the_argument():
    with pytest.raises(TypeError, match="peepole"):
        rnnlab.LSTM(3, 4, peepole=True)


def test_bad_state_dict():
    m = rnnlab.GRU(3, 4, rng=0)
    sd = m.state_dict()
    with pytest.raises(ConfigError, match=r"\['bias_hh_l0'\] missing and \['bias_hh_l9'\] unexpected"):
        m.load_state_dict({**{k: v for k, v in sd.items() if k != "bias_hh_l0"}, "bias_hh_l9": sd["bias_hh_l0"]})
    with pytest.raises(ShapeError, match=r"state_dict\['weight_hh_l0'\]: expected shape \(12, 4\), got \(4, 12\)"):
        m.load_state_dict({**sd, "weight_hh_l0": sd["weight_hh_l0"].T})
    bad = {**sd, "bias_ih_l0": np.full(12, np.nan)}
    before = m.state_dict()
    with pytest.raises(ValueRangeError, match=r"bias_ih_l0.*NaN"):
        m.load_state_dict(bad)
    for k, v in m.state_dict().items():        # nothing was half-written
        np.testing.assert_array_equal(v, before[k])


def test_cell_module_errors():
    c = rnnlab.LSTMCell(3, 4)
    with pytest.raises(ShapeError, match=r"x: expected input size 3"):
        c(np.zeros((2, 5), f32))
    with pytest.raises(ShapeError, match=r"h: expected shape \(2, 4\)"):
        c(np.zeros((2, 3), f32), (np.zeros((3, 4), f32), np.zeros((2, 4), f32)))
    with pytest.raises(ConfigError):
        rnnlab.GRUCell(3, -2)


# -- found by probing as a careless caller (issue 33) ---------------------------------------------

NETS = [lambda **kw: rnnlab.RNN(3, 5, rng=1, **kw), lambda **kw: rnnlab.LSTM(3, 5, rng=1, **kw),
        lambda **kw: rnnlab.GRU(3, 5, rng=1, **kw), lambda **kw: rnnlab.LSTM(3, 5, peephole=True, rng=1, **kw)]


@pytest.mark.parametrize("make", NETS, ids=["rnn", "lstm", "gru", "lstm_peephole"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("B", [1, 4])
@pytest.mark.parametrize("written", ["output", "input"])
def test_writing_into_what_backward_reads_is_refused_not_silently_wrong(make, batch_first, B, written):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, B, 3) if not batch_first else (B, 6, 3)).astype(f32)
    dy = rng.standard_normal((6, B, 5) if not batch_first else (B, 6, 5)).astype(f32)
    ref = make(batch_first=batch_first)
    ref(x.copy())
    ref.backward(dy)
    net = make(batch_first=batch_first)
    y, _ = net(x)
    y2 = y.copy()
    y2[...] = 0                                  # a copy may be changed freely
    (y if written == "output" else x)[...] = 0   # the caller reuses a buffer
    try:
        net.backward(dy)
    except ValueRangeError as exc:               # refused, as torch's in-place check does
        assert "written into after the call" in str(exc)
        return
    for k, g in net.grads.items():               # or not saved: then the gradients are exact
        np.testing.assert_array_equal(g, ref.grads[k], err_msg=k)


def test_a_cell_module_does_not_alias_the_caller_either():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3)).astype(f32)
    ref, cell = rnnlab.LSTMCell(3, 4, rng=0), rnnlab.LSTMCell(3, 4, rng=0)
    ref(x.copy())
    ref.backward((np.ones((2, 4), f32), np.ones((2, 4), f32)))
    h, c = cell(x)
    h[...], c[...], x[...] = 5, 5, 5
    cell.backward((np.ones((2, 4), f32), np.ones((2, 4), f32)))
    for k, g in cell.grads.items():
        np.testing.assert_array_equal(g, ref.grads[k], err_msg=k)


@pytest.mark.parametrize("make", NETS[:3], ids=["rnn", "lstm", "gru"])
def test_an_empty_batch_gives_empty_outputs_as_torch(make):
    torch = pytest.importorskip("torch")
    net = make(num_layers=2, bidirectional=True)
    y, state = net(np.zeros((5, 0, 3), f32))
    peer = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[type(net).__name__](
        3, 5, num_layers=2, bidirectional=True)
    ty, tstate = peer(torch.zeros(5, 0, 3))
    assert y.shape == tuple(ty.shape)
    h = state[0] if isinstance(state, tuple) else state
    th = tstate[0] if isinstance(tstate, tuple) else tstate
    assert h.shape == tuple(th.shape)
    dx, _ = net.backward(np.zeros_like(y))
    assert dx.shape == (5, 0, 3) and all((g == 0).all() for g in net.grads.values())


def test_a_stream_refuses_nan_as_forward_does():
    s = rnnlab.GRU(3, 4, rng=0).stream()
    with pytest.raises(ValueRangeError, match=r"x: contains NaN"):
        s.step(np.array([np.nan, 0, 0], f32))


@pytest.mark.parametrize("state, error, pattern", [
    ({"weight_ih_l0": np.zeros((16, 3))}, ConfigError, r"state_dict: expected the keys.*missing"),
    ({f"k{i}": 0 for i in range(10_000)}, ConfigError, r"\(\d+ more\)"),
    (5, ConfigError, r"state_dict: expected a mapping"),
])
def test_load_state_dict_errors_are_rnnlab_errors(state, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        lstm().load_state_dict(state)
    assert len(str(info.value)) < 600


def test_load_state_dict_refuses_nan_and_tensors_numpy_cannot_hold():
    torch = pytest.importorskip("torch")
    sd = torch.nn.LSTM(3, 4).state_dict()
    for bad, pattern in [(sd["weight_ih_l0"].bfloat16(), "bfloat16"), (sd["weight_ih_l0"].to_sparse(), "sparse"),
                         (torch.empty(16, 3, device="meta"), "meta"), (sd["weight_ih_l0"] * float("nan"), "NaN")]:
        with pytest.raises(RnnlabError, match=pattern):
            lstm().load_state_dict(dict(sd, weight_ih_l0=bad))


def test_import_rnnlab_loads_no_heavy_or_process_changing_module():
    """numba (and its OpenMP runtime), torch, matplotlib and onnx load where they are used."""
    import subprocess
    import sys
    code = ("import sys, rnnlab, rnnlab.models, rnnlab.recipes, rnnlab.train; "
            "print(sorted(m for m in ('numba', 'llvmlite', 'torch', 'matplotlib', 'onnx', 'onnxruntime') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
