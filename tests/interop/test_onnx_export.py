"""ONNX export checked by onnxruntime (with variable lengths) and imported back."""

import numpy as np
import pytest

import rnnlab
from rnnlab.data import Vocab
from rnnlab.interop.onnx_io import export_model, export_network, import_model, import_network
from rnnlab.models import ClassifierConfig, LanguageModel, LanguageModelConfig, RecurrentConfig, SequenceClassifier

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

NETS = {
    "rnn-relu-bi": (rnnlab.RNN, dict(nonlinearity="relu", bidirectional=True)),
    "lstm-2x-bi": (rnnlab.LSTM, dict(num_layers=2, bidirectional=True)),
    "lstm-peephole-cifg-2x": (rnnlab.LSTM, dict(num_layers=2, peephole=True, cifg=True)),
    "gru-after-bi-batch-first": (rnnlab.GRU, dict(bidirectional=True, batch_first=True)),
    "gru-before-3x": (rnnlab.GRU, dict(num_layers=3, reset_after=False)),
    "lstm-f64-nobias": (rnnlab.LSTM, dict(bias=False, dtype=np.float64)),
}


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", NETS)
def test_exported_network_matches_rnnlab_and_imports_back(name, tmp_path):
    cls, kw = NETS[name]
    m = cls(4, 5, rng=0, **kw)
    dt = m.dtype
    rng = np.random.default_rng(0)
    T, B = 7, 3
    x = rng.standard_normal((B, T, 4) if m.batch_first else (T, B, 4)).astype(dt)
    lens = np.array([7, 2, 5], np.int32)
    LD = m.num_layers * m.num_directions
    hx = tuple(rng.standard_normal((LD, B, s)).astype(dt) for s in m.cell.carry_sizes())
    hx = hx if len(hx) == 2 else hx[0]
    y, st = m(x, hx, lengths=lens)
    path = tmp_path / "net.onnx"
    export_network(m, path)
    onnx.checker.check_model(onnx.load(str(path)))
    feeds = {"X": x, "sequence_lens": lens}
    feeds.update(zip(["initial_h", "initial_c"], hx if isinstance(hx, tuple) else (hx,)))
    if dt == np.float32:                       # onnxruntime has no float64 LSTM/GRU kernels
        res = session(onnx.load(str(path))).run(None, feeds)
        np.testing.assert_allclose(res[0], y, rtol=1e-5, atol=1e-5)
        for a, b in zip(res[1:], st if isinstance(st, tuple) else (st,)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    back = import_network(path, dtype=dt)
    if m.batch_first:
        back.batch_first = True
    assert back.state_dict().keys() == m.state_dict().keys()
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)


def test_projection_cannot_be_exported():
    with pytest.raises(rnnlab.ConfigError, match="proj_size"):
        export_network(rnnlab.LSTM(3, 4, proj_size=2))


def test_language_model_export():
    m = LanguageModel(Vocab(list("abcdefg")), LanguageModelConfig("char", 4, RecurrentConfig("gru", 6, 2)), rng=0)
    m.eval()
    ids = np.random.default_rng(0).integers(0, 7, (9, 2))
    logits, _ = m.logits(ids, keep_cache=False)
    proto = export_model(m)
    res = session(proto).run(None, {"ids": ids, "sequence_lens": np.array([9, 9], np.int32)})
    np.testing.assert_allclose(res[0], logits, rtol=1e-5, atol=1e-5)
    back = import_model(proto)                                     # the whole model, vocabulary too
    assert back.vocab.itos == m.vocab.itos
    np.testing.assert_array_equal(back.logits(ids, keep_cache=False)[0], logits)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_export_with_lengths(pooling):
    vocab = Vocab(["<pad>", "<unk>", "a", "b", "c"])
    m = SequenceClassifier(vocab, ClassifierConfig(3, 0, 4, RecurrentConfig("lstm", 5, 2, 0.0, True), pooling),
                           ["x", "y", "z"], rng=0)
    m.eval()
    ids = np.random.default_rng(0).integers(2, 5, (6, 3))
    lens = np.array([6, 1, 4])
    expect = np.log(m.predict_proba(ids, lens))
    got = session(export_model(m)).run(None, {"ids": ids, "sequence_lens": lens.astype(np.int32)})[0]
    got = got - np.log(np.exp(got).sum(-1, keepdims=True))                  # logits -> log-probabilities
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-5)
    m.cfg.pooling = "max"
    with pytest.raises(rnnlab.ConfigError, match="pooling"):
        export_model(m)


def test_import_rejects_graphs_without_recurrent_nodes(tmp_path):
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(rnnlab.RnnlabError, match="no RNN, LSTM or GRU node"):
        import_network(helper.make_model(g))
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(rnnlab.RnnlabError):
        import_network(tmp_path / "junk.onnx")


def _rewritten(model, **changes):
    """A copy of an exported model whose recurrent nodes get `changes` as attributes (None drops)."""
    import copy

    from onnx import helper
    m = copy.deepcopy(model)
    for node in m.graph.node:
        if node.op_type in ("RNN", "LSTM", "GRU"):
            keep = [a for a in node.attribute if a.name not in changes]
            del node.attribute[:]
            node.attribute.extend(keep)
            node.attribute.extend(helper.make_attribute(k, v) for k, v in changes.items() if v is not None)
    return m


@pytest.mark.parametrize("kind, changes, pattern", [
    ("LSTM", {"clip": 0.05}, r"\['clip'\] are not supported"),
    ("GRU", {"activation_alpha": [0.5]}, "activation_alpha"),
    ("LSTM", {"activations": ["Sigmoid", "Relu", "Tanh"]}, "activations"),
    ("RNN", {"activations": ["Sigmoid"]}, "activations"),
    ("GRU", {"layout": 1}, "layout=1"),
    ("LSTM", {"hidden_size": 10**9}, r"W: expected shape \(1, 4000000000, D\)"),
    ("GRU", {"hidden_size": -2}, "hidden_size: expected a positive integer"),
])
def test_import_refuses_what_it_cannot_run_exactly(kind, changes, pattern):
    model = export_network(getattr(rnnlab, kind)(3, 4, rng=0))
    with pytest.raises(rnnlab.RnnlabError, match=pattern):
        import_network(_rewritten(model, **changes))


@pytest.mark.parametrize("value, pattern", [(np.zeros((16, 3), np.float32), "3-D"),
                                            (np.float32(1.0), "3-D"), (np.array(["a"] * 3), "numeric")])
def test_import_refuses_malformed_weights(value, pattern):
    from onnx import numpy_helper
    model = export_network(rnnlab.LSTM(3, 4, rng=0))
    node = next(n for n in model.graph.node if n.op_type == "LSTM")
    for i, t in enumerate(model.graph.initializer):
        if t.name == node.input[1]:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, t.name))
    with pytest.raises(rnnlab.RnnlabError, match=pattern):
        import_network(model)
