"""A Translator as two ONNX models: the encoder, run once a batch of sources, and one decoder
step, run once a target token (a caller loops over it: greedy decoding, or beam search with
its own bookkeeping). Both are checked by the ONNX checker and run in onnxruntime.

encoder:  src (S, B) int64, src_lengths (B,) int32
          -> memory (B, S, F), keys (B, S, F or A), mask (B, S) bool, h0 (L, B, Hd) [, c0]
step:     y (B,) int64, ht (B, Hd), h (L, B, Hd) [, c (L, B, Hd)], memory, keys, mask
          -> logp (B, V) (<pad> and <bos> at -inf, as rnnlab's search), ht', h' [, c'],
             weights (B, S)

The decoder's layers are ONNX GRU/LSTM/RNN nodes over one step (`onnx_layout` gives their
weights in ONNX's gate order); attention, the attentional state and the output layer are
MatMul, Softmax and Tanh nodes. `greedy_onnx` decodes with the two sessions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .onnx_io import _finish, _Graph, _recurrent
from .onnx_layout import onnx_op, onnx_weights


def _axes(g: _Graph, *axes: int) -> str:
    return g.const(np.array(axes, dtype=np.int64), "axes")


def export_translator(model, encoder_path: str | Path | None = None, step_path: str | Path | None = None):
    """(encoder ModelProto, step ModelProto); written to the paths when given."""
    if model.kind != "translator":
        raise ConfigError(f"model: expected a translator, got a {model.kind}")
    onnx_op(model.decoder.cell)
    return _encoder(model, encoder_path), _step(model, step_path)


def _encoder(model, path):
    g = _Graph(model.dtype)
    vi = g.h.make_tensor_value_info
    net, cfg = model.encoder, model.cfg
    lstm = len(net.cell.carry_sizes()) == 2
    LD = net.num_layers * net.num_directions
    emb = g.node("Gather", [g.const(model.src_emb.weight, "src_emb"), "src"], axis=0)[0]     # (S, B, E)
    shape = g.node("Shape", ["src"])[0]
    batch = g.node("Slice", [shape, g.const(np.array([1]), "s"), g.const(np.array([2]), "e")])[0]
    zeros = g.node("ConstantOfShape", [g.node("Concat", [g.const(np.array([LD]), "ld"), batch,
                                                          g.const(np.array([net.hidden_size]), "h")], axis=0)[0]],
                   value=g.h.make_tensor("zero", g.elem, [1], [0.0]))[0]
    y, yh, yc = _recurrent(g, net, emb, "src_lengths", zeros, zeros if lstm else None)
    g.nodes.append(g.h.make_node("Transpose", [y], ["memory"], perm=[1, 0, 2]))             # (B, S, F)
    if cfg.attention == "additive":
        g.nodes.append(g.h.make_node("MatMul", ["memory", g.const(model.attention.p.w_key.T.copy(), "w_key")], ["keys"]))
    else:
        g.nodes.append(g.h.make_node("Identity", ["memory"], ["keys"]))
    steps = g.node("Range", [g.const(np.array(0, dtype=np.int64), "zero"),
                             g.node("Squeeze", [g.node("Slice", [shape, g.const(np.array([0]), "s"),
                                                                 g.const(np.array([1]), "e")])[0], _axes(g, 0)])[0],
                             g.const(np.array(1, dtype=np.int64), "one")])[0]                # (S,)
    lens = g.node("Unsqueeze", [g.node("Cast", ["src_lengths"], to=g.TP.INT64)[0], _axes(g, 1)])[0]   # (B, 1)
    g.nodes.append(g.h.make_node("Less", [g.node("Unsqueeze", [steps, _axes(g, 0)])[0], lens], ["mask"]))
    outputs = [vi("memory", g.elem, ["B", "S", cfg.width]),
               vi("keys", g.elem, ["B", "S", cfg.attention_hidden or cfg.hidden if cfg.attention == "additive" else cfg.width]),
               vi("mask", g.TP.BOOL, ["B", "S"])]
    for name, state, bridge in (("h0", yh, model.bridge_h), ("c0", yc, model.bridge_c)):
        if state is None:
            continue
        Dn, L = net.num_directions, net.num_layers
        side = g.node("Reshape", [g.node("Transpose", [g.node("Reshape", [state, g.const(np.array([L, Dn, -1, net.hidden_size]), "shape")])[0]],
                                          perm=[0, 2, 1, 3])[0], g.const(np.array([L, 0, Dn * net.hidden_size]), "shape")])[0]
        if bridge is not None:
            side = g.node("Add", [g.node("MatMul", [side, g.const(bridge.weight.T.copy(), "bridge_w")])[0],
                                  g.const(bridge.bias, "bridge_b")])[0]
            if name == "h0":
                side = g.node("Tanh", [side])[0]
        g.nodes.append(g.h.make_node("Identity", [side], [name]))
        outputs.append(vi(name, g.elem, [L, "B", cfg.hidden]))
    inputs = [vi("src", g.TP.INT64, ["S", "B"]), vi("src_lengths", g.TP.INT32, ["B"])]
    return _finish(g, inputs, outputs, path, "rnnlab_translator_encoder")


def _step(model, path):
    g = _Graph(model.dtype)
    vi = g.h.make_tensor_value_info
    cfg, dec = model.cfg, model.decoder
    lstm = len(dec.cell.carry_sizes()) == 2
    op, attrs = onnx_op(dec.cell)
    L, Hd = len(dec.layers), cfg.hidden
    x = g.node("Gather", [g.const(model.tgt_emb.weight, "tgt_emb"), "y"], axis=0)[0]          # (B, E)
    if cfg.input_feeding:
        x = g.node("Concat", [x, "ht"], axis=1)[0]
    x = g.node("Unsqueeze", [x, _axes(g, 0)])[0]                                               # (1, B, D)
    hs, cs = [], []
    for layer, p in enumerate(dec.layers):
        w = onnx_weights(dec.cell, [p])
        h0 = g.node("Slice", ["h", g.const(np.array([layer]), "s"), g.const(np.array([layer + 1]), "e"),
                              g.const(np.array([0]), "ax")])[0]
        ins = [x, g.const(w["W"].astype(g.dtype), "W"), g.const(w["R"].astype(g.dtype), "R"),
               g.const(w["B"].astype(g.dtype), "B"), "", h0]
        if lstm:
            ins.append(g.node("Slice", ["c", g.const(np.array([layer]), "s"), g.const(np.array([layer + 1]), "e"),
                                        g.const(np.array([0]), "ax")])[0])
        outs = g.node(op, ins, 3 if lstm else 2, stem=f"dec{layer}", hidden_size=Hd, **attrs)
        hs.append(outs[1])
        if lstm:
            cs.append(outs[2])
        x = g.node("Squeeze", [outs[0], _axes(g, 1)])[0]                                      # (1, B, Hd)
    top = g.node("Squeeze", [x, _axes(g, 0)])[0]                                               # (B, Hd)
    g.nodes.append(g.h.make_node("Concat", hs, ["h_next"], axis=0) if L > 1 else g.h.make_node("Identity", hs, ["h_next"]))
    if lstm:
        g.nodes.append(g.h.make_node("Concat", cs, ["c_next"], axis=0) if L > 1 else g.h.make_node("Identity", cs, ["c_next"]))
    if model.attention is None:
        ht = top
        g.nodes.append(g.h.make_node("ConstantOfShape", [g.node("Shape", ["mask"])[0]], ["weights"],
                                     value=g.h.make_tensor("zero", g.elem, [1], [0.0])))
    else:
        p = model.attention.p
        if cfg.attention == "additive":
            q = g.node("MatMul", [top, g.const(p.w_query.T.copy(), "w_query")])[0]             # (B, A)
            e = g.node("Tanh", [g.node("Add", ["keys", g.node("Unsqueeze", [q, _axes(g, 1)])[0]])[0]])[0]
            scores = g.node("MatMul", [e, g.const(p.v, "v")])[0]                               # (B, S)
        else:
            q = top if cfg.attention == "dot" else g.node("MatMul", [top, g.const(p.w, "w_att")])[0]
            scores = g.node("Squeeze", [g.node("MatMul", ["keys", g.node("Unsqueeze", [q, _axes(g, 2)])[0]])[0],
                                        _axes(g, 2)])[0]
        scores = g.node("Where", ["mask", scores, g.const(np.array(-np.inf, dtype=g.dtype), "ninf")])[0]
        g.nodes.append(g.h.make_node("Softmax", [scores], ["weights"], axis=1))
        ctx = g.node("Squeeze", [g.node("MatMul", [g.node("Unsqueeze", ["weights", _axes(g, 1)])[0], "memory"])[0],
                                 _axes(g, 1)])[0]                                              # (B, F)
        u = g.node("Concat", [ctx, top], axis=1)[0]
        ht = g.node("Tanh", [g.node("Add", [g.node("MatMul", [u, g.const(model.combine.weight.T.copy(), "combine_w")])[0],
                                            g.const(model.combine.bias, "combine_b")])[0]])[0]
    g.nodes.append(g.h.make_node("Identity", [ht], ["ht_next"]))
    w, b = (model.head.weight, model.head.bias) if model.head is not None else (model.tgt_emb.weight, model.out_bias)
    logits = g.node("Add", [g.node("MatMul", [ht, g.const(w.T.copy(), "out_w")])[0], g.const(b, "out_b")])[0]
    never = np.zeros(w.shape[0], dtype=g.dtype)
    never[[model.target.pad_id, model.target.stoi["<bos>"]]] = -np.inf                       # as rnnlab's search
    g.nodes.append(g.h.make_node("Add", [g.node("LogSoftmax", [logits], axis=1)[0], g.const(never, "never")], ["logp"]))
    F_, K = cfg.width, (cfg.attention_hidden or Hd) if cfg.attention == "additive" else cfg.width
    inputs = [vi("y", g.TP.INT64, ["B"]), vi("ht", g.elem, ["B", Hd]), vi("h", g.elem, [L, "B", Hd])]
    if lstm:
        inputs.append(vi("c", g.elem, [L, "B", Hd]))
    inputs += [vi("memory", g.elem, ["B", "S", F_]), vi("keys", g.elem, ["B", "S", K]), vi("mask", g.TP.BOOL, ["B", "S"])]
    outputs = [vi("logp", g.elem, ["B", w.shape[0]]), vi("ht_next", g.elem, ["B", Hd]), vi("h_next", g.elem, [L, "B", Hd])]
    if lstm:
        outputs.append(vi("c_next", g.elem, [L, "B", Hd]))
    outputs.append(vi("weights", g.elem, ["B", "S"]))
    return _finish(g, inputs, outputs, path, "rnnlab_translator_step")


def greedy_onnx(encoder, step, model, src: np.ndarray, src_lengths: np.ndarray,
                max_len_a: float = 1.5, max_len_b: int = 5) -> list[list[int]]:
    """Greedy decoding (rnnlab.models.decoding.greedy: the same limits and end rule) with
    onnxruntime sessions of `export_translator`'s two models; target ids per source."""
    from ..models.decoding import greedy, max_lengths
    enc = dict(zip([o.name for o in encoder.get_outputs()],
                   encoder.run(None, {"src": src.astype(np.int64), "src_lengths": src_lengths.astype(np.int32)})))
    lstm = "c0" in enc
    fixed = {"memory": enc["memory"], "keys": enc["keys"], "mask": enc["mask"]}
    names = [o.name for o in step.get_outputs()]

    def one_step(state, y):
        feed = dict(fixed, y=y, ht=state[0], h=state[1])
        if lstm:
            feed["c"] = state[2]
        res = dict(zip(names, step.run(None, feed)))
        return res["logp"], (res["ht_next"], res["h_next"]) + ((res["c_next"],) if lstm else ()), None
    state = (np.zeros((src.shape[1], model.cfg.hidden), model.dtype), enc["h0"]) + ((enc["c0"],) if lstm else ())
    hyps = greedy(one_step, state, model.target.stoi["<bos>"], model.target.stoi["<eos>"],
                  max_lengths(src_lengths, max_len_a, max_len_b))
    return [h.tokens for h in hyps]
