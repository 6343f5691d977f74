"""A translator's encoder and decoder step in ONNX, run in onnxruntime: the same memory, states,
attention and log-probabilities as rnnlab, and greedy decoding that gives the same tokens."""

import numpy as np
import pytest

from rnnlab.interop.onnx_translator import export_translator, greedy_onnx
from rnnlab.layers.attention import attention_keys
from rnnlab.models.base import RecurrentConfig
from rnnlab.models.translator import Translator, TranslatorConfig
from tests.models.test_translator import SRC, TGT, _train, make_batch, random_pairs

ort = pytest.importorskip("onnxruntime")

CONFIGS = {  # cell, attention, bidirectional, decoder_hidden, tied, layers
    "gru-general-bi": ("gru", "general", True, 0, False, 1),
    "lstm-additive-bridge-2layers": ("lstm", "additive", True, 10, False, 2),
    "gru_reset_before-dot-uni": ("gru_reset_before", "dot", False, 0, False, 1),
    "rnn-none-tied": ("rnn", "none", False, 8, True, 1),
    "lstm-general-uni-2layers-tied": ("lstm", "general", False, 8, True, 2),
}


def sessions(m, tmp_path):
    export_translator(m, tmp_path / "enc.onnx", tmp_path / "step.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return (ort.InferenceSession(str(tmp_path / "enc.onnx"), opts, providers=["CPUExecutionProvider"]),
            ort.InferenceSession(str(tmp_path / "step.onnx"), opts, providers=["CPUExecutionProvider"]))


@pytest.mark.parametrize("name", CONFIGS)
def test_encoder_and_step_match_rnnlab(name, tmp_path):
    cell, att, bi, dh, tie, L = CONFIGS[name]
    cfg = TranslatorConfig(dh if tie else 6, RecurrentConfig(cell, 4, L, bidirectional=bi), dh, att, 0, True, tie)
    m = Translator(SRC, TGT, cfg, rng=2).eval()
    enc, step = sessions(m, tmp_path)
    batch = make_batch(random_pairs(np.random.default_rng(5), 5))     # B = 5: no size equals it
    names = [o.name for o in enc.get_outputs()]
    got = dict(zip(names, enc.run(None, {"src": batch.src, "src_lengths": batch.src_lengths.astype(np.int32)})))
    memory, mask, carries = m.encode(batch.src, batch.src_lengths, keep_cache=False)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    close(got["memory"], memory)
    assert (got["mask"] == mask).all()
    close(got["h0"], np.stack([c[0] for c in carries]))
    if cell == "lstm":
        close(got["c0"], np.stack([c[1] for c in carries]))
    keys = attention_keys(att, m.attention.p, memory) if m.attention is not None else memory
    close(got["keys"], keys)
    y = np.array([2, 5, 6, 7, 8])
    ht = np.random.default_rng(0).standard_normal((5, cfg.hidden)).astype(np.float32)
    feed = {"y": y, "ht": ht, "h": got["h0"], "memory": got["memory"], "keys": got["keys"], "mask": got["mask"]}
    if cell == "lstm":
        feed["c"] = got["c0"]
    out = dict(zip([o.name for o in step.get_outputs()], step.run(None, feed)))
    ht2, carries2, weights = m.decode_step(m.decoder.folded(), y, ht, carries, memory, keys, mask)
    close(out["ht_next"], ht2)
    close(out["h_next"], np.stack([c[0] for c in carries2]))
    if weights is not None:
        close(out["weights"], weights)
    logp = out["logp"]
    ours = m.output(ht2)
    ours = ours - ours.max(1, keepdims=True)
    ours = ours - np.log(np.exp(ours).sum(1, keepdims=True))
    assert np.isinf(logp[:, [0, 2]]).all()                          # <pad>, <bos> never output
    close(np.delete(logp, [0, 2], 1), np.delete(ours, [0, 2], 1))   # the rest: log-softmax over all


def test_greedy_in_onnxruntime_gives_rnnlab_tokens(tmp_path):
    rng = np.random.default_rng(3)
    pairs = []
    for _ in range(20):
        s = list(rng.integers(2, len(SRC), rng.integers(2, 7)))
        pairs.append((s, [w + 2 for w in reversed(s)]))
    m = Translator(SRC, TGT, TranslatorConfig(16, RecurrentConfig("lstm", 16, 1, bidirectional=True), 0, "general"), rng=0)
    batch = make_batch(pairs)
    _train(m, batch, 300)
    enc, step = sessions(m, tmp_path)
    ours = m.translate_ids(batch.src, batch.src_lengths)
    assert ours == [t for _, t in pairs]
    assert greedy_onnx(enc, step, m, batch.src, batch.src_lengths) == ours
