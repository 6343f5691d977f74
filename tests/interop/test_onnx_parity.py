"""Forward parity with onnxruntime's LSTM/GRU/RNN operators, where no torch peer exists:
peephole and CIFG (input_forget) LSTM, reset-before GRU (linear_before_reset=0)."""

import numpy as np
import pytest

import rnnlab
from rnnlab.interop.onnx_layout import onnx_op, onnx_weights

onnx = pytest.importorskip("onnx", reason="onnx is a test extra")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is a test extra")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def run_onnx(m, x, hx, lengths):
    """One ONNX node for a one-layer rnnlab network, run by onnxruntime."""
    op, attrs = onnx_op(m.cell)
    weights = onnx_weights(m.cell, m.layers[0])
    T, B, D = x.shape
    H = m.hidden_size
    nd = m.num_directions
    inputs = {"X": x, **weights, "sequence_lens": np.asarray(lengths, dtype=np.int32)}
    hs = hx if isinstance(hx, tuple) else (hx,)
    inputs["initial_h"] = hs[0]
    if op == "LSTM":
        inputs["initial_c"] = hs[1]
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    names = [n if n in inputs else "" for n in order]
    while names and names[-1] == "":
        names.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, hidden_size=H,
                            direction="bidirectional" if nd == 2 else "forward", **attrs)
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("X", f32, [T, B, D])],
        [helper.make_tensor_value_info(o, f32, [T, nd, B, H] if o == "Y" else [nd, B, H])
         for o in outs],
        initializer=[numpy_helper.from_array(v, k) for k, v in inputs.items() if k != "X"])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    res = sess.run(outs, {"X": x})
    Y = res[0].transpose(0, 2, 1, 3).reshape(T, B, nd * H)        # (T, nd, B, H) -> (T, B, nd*H)
    return Y, res[1:]


CASES = {
    "lstm-peephole": (rnnlab.LSTM, dict(peephole=True)),
    "lstm-cifg": (rnnlab.LSTM, dict(cifg=True)),
    "lstm-peephole-cifg": (rnnlab.LSTM, dict(peephole=True, cifg=True)),
    "gru-reset-before": (rnnlab.GRU, dict(reset_after=False)),
    "gru-reset-after": (rnnlab.GRU, dict()),
    "lstm": (rnnlab.LSTM, dict()),
    "rnn-relu": (rnnlab.RNN, dict(nonlinearity="relu")),
}


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("name", CASES)
def test_forward_matches_onnxruntime(name, bidirectional):
    cls, kw = CASES[name]
    T, B, D, H = 9, 4, 5, 7
    m = cls(D, H, bidirectional=bidirectional, rng=3, **kw)
    for p in m.parameters():               # larger weights: saturating gates, peepholes matter
        p *= 2.5
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    nd = m.num_directions
    hx = tuple(rng.standard_normal((nd, B, s)).astype(np.float32) for s in m.cell.carry_sizes())
    hx = hx if len(hx) == 2 else hx[0]
    lengths = [9, 4, 1, 6]
    y, st = m(x, hx, lengths=lengths)
    y_ref, st_ref = run_onnx(m, x, hx, lengths)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(st if isinstance(st, tuple) else (st,), st_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_projection_has_no_onnx_operator():
    m = rnnlab.LSTM(3, 4, proj_size=2)
    with pytest.raises(rnnlab.ConfigError, match="proj_size"):
        onnx_weights(m.cell, m.layers[0])
