"""ONNX export of rnnlab networks and models (with the `onnx` package), checked by the ONNX
checker; import of graphs made of ONNX RNN/LSTM/GRU nodes back into rnnlab networks.

A network becomes one recurrent node per layer (bidirectional as direction="bidirectional"),
with Transpose + Reshape between layers; graph inputs X (T, B, D) (or (B, T, D) batch-first),
sequence_lens (B,) int32 and the initial state(s) (L*Dn, B, R); outputs Y, Y_h (and Y_c) as
torch.nn returns them. A language model adds a Gather (embedding) in front and a MatMul + Add
(head) after; a classifier with pooling "last" or "mean" reads its head from the final states
or the summed outputs. A projected LSTM has no ONNX operator: a clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cells.gru import GRUCellConfig
from ..cells.lstm import LSTMCellConfig
from ..errors import ConfigError
from ..networks import GRU, LSTM, RNN
from .onnx_layout import onnx_op, onnx_weights
from .torch_state import InteropError

OPSET = 14


def _onnx():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise InteropError("ONNX export and import need the onnx package: pip install onnx onnxruntime") from None
    return onnx, TensorProto, helper, numpy_helper


class _Graph:
    """A small builder: nodes, initializers, unique names."""

    def __init__(self, dtype: np.dtype) -> None:
        self.onnx, self.TP, self.h, self.nh = _onnx()
        self.nodes, self.inits, self.n = [], [], 0
        self.elem = self.TP.FLOAT if dtype == np.float32 else self.TP.DOUBLE
        self.dtype = dtype

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}_{self.n}"

    def const(self, value: np.ndarray, stem: str) -> str:
        n = self.name(stem)
        self.inits.append(self.nh.from_array(np.ascontiguousarray(value), n))
        return n

    def node(self, op: str, inputs: list[str], n_out: int = 1, stem: str | None = None, **attrs) -> list[str]:
        outs = [self.name(stem or op.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op, inputs, outs, **attrs))
        return outs

    def slice0(self, x: str, start: int, stop: int) -> str:
        return self.node("Slice", [x, self.const(np.array([start]), "s"), self.const(np.array([stop]), "e"),
                                   self.const(np.array([0]), "ax")])[0]


def _recurrent(g: _Graph, net, x: str, lens: str, h0: str, c0: str | None):
    """The stacked recurrent nodes; returns Y (T, B, Dn*R), Y_h (L*Dn, B, R), Y_c or None."""
    op, attrs = onnx_op(net.cell)
    nd, H = net.num_directions, net.hidden_size
    hs, cs = [], []
    for layer, params in enumerate(net.layers):
        w = onnx_weights(net.cell, params)
        bias = g.const(w["B"].astype(g.dtype), "B") if net.bias else ""       # B is optional in ONNX
        ins = [x, g.const(w["W"].astype(g.dtype), "W"), g.const(w["R"].astype(g.dtype), "R"),
               bias, lens, g.slice0(h0, layer * nd, (layer + 1) * nd)]
        if op == "LSTM":
            ins.append(g.slice0(c0, layer * nd, (layer + 1) * nd))
            if "P" in w:
                ins.append(g.const(w["P"].astype(g.dtype), "P"))
        outs = g.node(op, ins, 3 if op == "LSTM" else 2, stem=f"l{layer}", hidden_size=H,
                      direction="bidirectional" if nd == 2 else "forward", **attrs)
        y = g.node("Transpose", [outs[0]], perm=[0, 2, 1, 3])[0]                 # (T, B, nd, H)
        x = g.node("Reshape", [y, g.const(np.array([0, 0, -1]), "shape")])[0]    # (T, B, nd*H)
        hs.append(outs[1])
        if op == "LSTM":
            cs.append(outs[2])
    yh = g.node("Concat", hs, axis=0)[0] if len(hs) > 1 else hs[0]
    yc = (g.node("Concat", cs, axis=0)[0] if len(cs) > 1 else cs[0]) if cs else None
    return x, yh, yc


def _check_exportable(net) -> None:
    if hasattr(net, "stack"):
        raise ConfigError("DepthGatedLSTM: its depth gates have no ONNX operator; it cannot be exported")
    if any(getattr(net, "zoneout", ())):
        raise ConfigError("zoneout: evaluation blends each new state with the previous one, which "
                          "the ONNX RNN/LSTM/GRU operators cannot express; export a network without it")
    if isinstance(net.cell, LSTMCellConfig) and net.cell.proj_size:
        raise ConfigError("proj_size: the ONNX LSTM operator has no projection; a projected LSTM "
                          "cannot be exported")
    onnx_op(net.cell)


def _finish(g: _Graph, inputs, outputs, path: str | Path | None, name: str, meta: dict | None = None):
    model = g.h.make_model(g.h.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits),
                           opset_imports=[g.h.make_opsetid("", OPSET)], producer_name="rnnlab")
    model.ir_version = 8
    if meta is not None:
        import json
        g.h.set_model_props(model, {"rnnlab": json.dumps(meta)})
    g.onnx.checker.check_model(model)
    if path is not None:
        from ..train.checkpoint import atomic_write_bytes
        atomic_write_bytes(Path(path), model.SerializeToString())
    return model


def export_network(net, path: str | Path | None = None):
    """An rnnlab RNN/LSTM/GRU as an ONNX model; inputs X, sequence_lens, initial_h
    (and initial_c); outputs Y, Y_h (and Y_c). Returns the ModelProto."""
    _check_exportable(net)
    g = _Graph(net.dtype)
    LD, R = net.num_layers * net.num_directions, net.cell.output_size
    x = "X"
    if net.batch_first:
        x = g.node("Transpose", ["X"], perm=[1, 0, 2])[0]
    lstm = len(net.cell.carry_sizes()) == 2
    y, yh, yc = _recurrent(g, net, x, "sequence_lens", "initial_h", "initial_c" if lstm else None)
    if net.batch_first:
        y = g.node("Transpose", [y], perm=[1, 0, 2])[0]
    g.nodes.append(g.h.make_node("Identity", [y], ["Y"]))
    g.nodes.append(g.h.make_node("Identity", [yh], ["Y_h"]))
    if lstm:
        g.nodes.append(g.h.make_node("Identity", [yc], ["Y_c"]))
    vi = g.h.make_tensor_value_info
    x_shape = ["B", "T", net.input_size] if net.batch_first else ["T", "B", net.input_size]
    inputs = [vi("X", g.elem, x_shape), vi("sequence_lens", g.TP.INT32, ["B"]), vi("initial_h", g.elem, [LD, "B", R])]
    if lstm:
        inputs.append(vi("initial_c", g.elem, [LD, "B", net.hidden_size]))
    y_shape = ["B", "T", net.num_directions * R] if net.batch_first else ["T", "B", net.num_directions * R]
    outputs = [vi("Y", g.elem, y_shape), vi("Y_h", g.elem, [LD, "B", R])]
    if lstm:
        outputs.append(vi("Y_c", g.elem, [LD, "B", net.hidden_size]))
    return _finish(g, inputs, outputs, path, "rnnlab_network")


def export_model(model, path: str | Path | None = None):
    """A language model (ids (T, B) -> logits (T, B, V)) or a token classifier with pooling
    "last" or "mean" (ids (T, B), lengths (B,) -> logits (B, C)) as an ONNX model."""
    kind = model.kind
    if kind not in ("language_model", "sequence_classifier"):
        raise ConfigError(f"model: ONNX export covers language models and token classifiers, not a {kind}")
    if kind == "sequence_classifier" and (model.embedding is None or model.cfg.pooling == "max"):
        raise ConfigError("model: ONNX export covers token classifiers with pooling 'last' or 'mean'")
    net = model.rnn
    _check_exportable(net)
    g = _Graph(model.dtype)
    vi = g.h.make_tensor_value_info
    emb = g.node("Gather", [g.const(model.embedding.weight, "embedding"), "ids"], axis=0)[0]  # (T, B, E)
    LD = net.num_layers * net.num_directions
    zeros = [g.node("ConstantOfShape", [g.node("Concat", [g.const(np.array([LD]), "ld"),
                                                         g.node("Slice", [g.node("Shape", ["ids"])[0],
                                                                          g.const(np.array([1]), "s"),
                                                                          g.const(np.array([2]), "e")])[0],
                                                         g.const(np.array([s]), "size")], axis=0)[0]],
                     value=g.h.make_tensor("zero", g.elem, [1], [0.0]))[0] for s in net.cell.carry_sizes()]
    y, yh, _ = _recurrent(g, net, emb, "sequence_lens", zeros[0], zeros[1] if len(zeros) == 2 else None)
    head_w = g.const(model.head.weight.T.copy(), "head_w")
    if kind == "language_model":
        feats = y
    elif model.cfg.pooling == "last":
        nd = net.num_directions
        last = g.slice0(yh, LD - nd, LD)                                             # (nd, B, H)
        feats = g.node("Reshape", [g.node("Transpose", [last], perm=[1, 0, 2])[0],
                                   g.const(np.array([0, -1]), "shape")])[0]          # (B, nd*H)
    else:
        total = g.node("ReduceSum", [y, g.const(np.array([0]), "ax")], keepdims=0)[0]  # padded steps are 0
        n = g.node("Cast", ["sequence_lens"], to=g.elem)[0]
        feats = g.node("Div", [total, g.node("Unsqueeze", [n, g.const(np.array([1]), "ax")])[0]])[0]
    out = g.node("MatMul", [feats, head_w], stem="head_matmul")[0]
    g.nodes.append(g.h.make_node("Add", [out, g.const(model.head.bias, "head_b")], ["logits"]))
    inputs = [vi("ids", g.TP.INT64, ["T", "B"]), vi("sequence_lens", g.TP.INT32, ["B"])]
    shape = ["T", "B", model.head.weight.shape[0]] if kind == "language_model" else ["B", model.head.weight.shape[0]]
    from .. import __version__
    meta = {"kind": kind, "config": model.config(), "rnnlab_version": __version__}
    return _finish(g, inputs, [vi("logits", g.elem, shape)], path, f"rnnlab_{kind}", meta)


def import_model(source):
    """A language model or classifier exported by `export_model`, rebuilt from the config in
    the file's metadata and the graph's weights."""
    import json

    from ..models import MODEL_KINDS
    onnx, TP, h, nh = _onnx()
    try:
        model_proto = onnx.load(str(source)) if isinstance(source, (str, Path)) else source
    except Exception as exc:
        raise InteropError(f"{source}: not a readable ONNX model ({type(exc).__name__})") from None
    props = {p.key: p.value for p in model_proto.metadata_props}
    if "rnnlab" not in props:
        raise InteropError(f"{source}: no rnnlab metadata; use import_network for bare recurrent graphs")
    try:
        meta = json.loads(props["rnnlab"])
        model = MODEL_KINDS[meta["kind"]].from_config(meta["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InteropError(f"{source}: its rnnlab metadata does not describe a model ({exc})") from None
    net = import_network(model_proto, dtype=model.dtype)
    if net.state_dict().keys() != model.rnn.state_dict().keys():
        raise InteropError(f"{source}: the recurrent nodes do not match the model's config")
    model.rnn.load_state_dict(net.state_dict())
    inits = {t.name: nh.to_array(t) for t in model_proto.graph.initializer}
    gather = next(n for n in model_proto.graph.node if n.op_type == "Gather")
    matmul = next(n for n in model_proto.graph.node if n.op_type == "MatMul" and n.output[0].startswith("head_matmul"))
    add = next(n for n in model_proto.graph.node if n.op_type == "Add" and n.output[0] == "logits")
    for target, value in ((model.embedding.weight, inits[gather.input[0]]),
                          (model.head.weight, inits[matmul.input[1]].T), (model.head.bias, inits[add.input[1]])):
        if value.shape != target.shape:
            raise InteropError(f"{source}: a weight of shape {value.shape} where {target.shape} was expected")
        target[...] = value
    model.eval()
    return model


def import_network(source, dtype: object = np.float32):
    """An rnnlab network from an ONNX model whose recurrent part is a chain of RNN/LSTM/GRU
    nodes (one per layer, as `export_network` writes them)."""
    onnx, TP, h, nh = _onnx()
    try:
        model = onnx.load(str(source)) if isinstance(source, (str, Path)) else source
    except Exception as exc:                             # protobuf raises its own errors
        raise InteropError(f"{source}: not a readable ONNX model ({type(exc).__name__})") from None
    inits = {t.name: nh.to_array(t) for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in ("RNN", "LSTM", "GRU")]
    if not nodes:
        raise InteropError(f"{source}: no RNN, LSTM or GRU node in the graph")
    kinds = {n.op_type for n in nodes}
    if len(kinds) > 1:
        raise InteropError(f"{source}: mixes {sorted(kinds)} nodes; expected one kind")
    op = nodes[0].op_type
    attrs = [{a.name: h.get_attribute_value(a) for a in n.attribute} for n in nodes]
    H = attrs[0].get("hidden_size")
    dirs = {a.get("direction", b"forward") for a in attrs}
    dirs = {d.decode() if isinstance(d, bytes) else d for d in dirs}
    if H is None or len(dirs) != 1 or dirs - {"forward", "bidirectional"}:
        raise InteropError(f"{source}: expected hidden_size on every node and one direction, "
                           f"forward or bidirectional, got {sorted(dirs)}")
    bidirectional = dirs == {"bidirectional"}
    a0 = attrs[0]
    _check_attributes(source, op, attrs, 2 if bidirectional else 1)
    weights = []
    for n in nodes:
        names = list(n.input) + [""] * 8
        missing = [names[i] for i in (1, 2) if names[i] not in inits]
        if missing:
            raise InteropError(f"{source}: node {n.name or n.op_type} has W/R that are not initializers")
        weights.append({k: inits[names[i]] for k, i in (("W", 1), ("R", 2), ("B", 3), ("P", 7)) if names[i] in inits})
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    D = _check_weights(source, weights, G, H, 2 if bidirectional else 1)
    common = dict(num_layers=len(nodes), bidirectional=bidirectional, bias="B" in weights[0],
                  dtype=dtype, rng=0)
    if op == "LSTM":
        cifg = bool(a0.get("input_forget", 0))
        net = LSTM(D, H, peephole="P" in weights[0], cifg=cifg, **common)
    elif op == "GRU":
        net = GRU(D, H, reset_after=bool(a0.get("linear_before_reset", 0)), **common)
    else:
        acts = [x.decode() if isinstance(x, bytes) else x for x in a0.get("activations", [b"Tanh"])]
        net = RNN(D, H, nonlinearity=acts[0].lower(), **common)
    for layer, w in enumerate(weights):
        for d, p in enumerate(net.layers[layer]):
            _from_onnx(net.cell, p, {k: v[d] for k, v in w.items()}, H)
    return net


# what an ONNX node may say that rnnlab runs exactly; anything else is refused, not ignored
DEFAULT_ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh"), "RNN": ("tanh",)}
KNOWN_ATTRIBUTES = {"hidden_size", "direction", "activations", "layout", "input_forget", "linear_before_reset"}


def _check_attributes(source, op: str, attrs: list[dict], Dn: int) -> None:
    """Refuse what rnnlab would not run exactly: clip, activation_alpha/beta, other activations,
    layout=1 (batch-major), nodes that disagree."""
    for a in attrs:
        unknown = sorted(set(a) - KNOWN_ATTRIBUTES)
        if unknown:
            raise InteropError(f"{source}: {op} attributes {unknown} are not supported by rnnlab "
                               "(it runs no cell clipping and no activation alpha/beta)")
        if a.get("layout", 0) != 0:
            raise InteropError(f"{source}: {op} layout={a['layout']}: expected 0 (time-major)")
        acts = tuple(x.decode().lower() if isinstance(x, bytes) else str(x).lower()
                     for x in a.get("activations", ()))
        default = DEFAULT_ACTIVATIONS[op]
        allowed = {(), default * Dn} | ({("tanh",) * 2, ("relu",) * Dn, ("relu",) * 2} if op == "RNN" else set())
        if acts not in allowed:
            raise InteropError(f"{source}: {op} activations {list(acts)}: expected "
                               f"{list(default * Dn)}" + (" or Relu" if op == "RNN" else ""))
    h = attrs[0].get("hidden_size")
    if isinstance(h, bool) or not isinstance(h, int) or h < 1:
        raise InteropError(f"{source}: hidden_size: expected a positive integer, got {h!r}")
    keys = ("hidden_size", "activations", "input_forget", "linear_before_reset")
    if any({k: a.get(k) for k in keys} != {k: attrs[0].get(k) for k in keys} for a in attrs):
        raise InteropError(f"{source}: the {op} nodes disagree on {', '.join(keys)}")


def _check_weights(source, weights: list[dict], G: int, H: int, Dn: int) -> int:
    """Check every W, R, B, P against hidden_size before anything is built; returns D."""
    for layer, w in enumerate(weights):
        for k, a in w.items():
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu" or a.ndim != (3 if k in "WR" else 2):
                raise InteropError(f"{source}: layer {layer} {k}: expected a numeric "
                                   f"{3 if k in 'WR' else 2}-D initializer, got "
                                   f"{getattr(a, 'dtype', type(a).__name__)} of shape {getattr(a, 'shape', ())}")
            if not np.isfinite(a).all():
                raise InteropError(f"{source}: layer {layer} {k}: contains NaN or inf")
        W = w["W"]
        if W.shape[:2] != (Dn, G * H) or W.shape[2] < 1:
            raise InteropError(f"{source}: layer {layer} W: expected shape ({Dn}, {G * H}, D) for "
                               f"hidden_size {H}, got {W.shape}")
        want = {"R": (Dn, G * H, H), "B": (Dn, 2 * G * H), "P": (Dn, 3 * H)}
        for k, shp in want.items():
            if k in w and w[k].shape != shp:
                raise InteropError(f"{source}: layer {layer} {k}: expected shape {shp}, got {w[k].shape}")
    return int(weights[0]["W"].shape[2])


def _from_onnx(cell, p, w: dict[str, np.ndarray], H: int) -> None:
    """Write one direction's ONNX W, R, B (P) into rnnlab params, undoing the gate order."""
    if isinstance(cell, LSTMCellConfig):
        order = [0, 3, 1] if cell.cifg else [0, 2, 3, 1]          # ours i,(f),g,o from ONNX i,o,f,c
    elif isinstance(cell, GRUCellConfig):
        order = [1, 0, 2]                                          # r, z, n from z, r, h
    else:
        order = [0]
    G = 4 if isinstance(cell, LSTMCellConfig) else len(order)

    def pick(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[k * H:(k + 1) * H] for k in order])

    shapes = {"W": (G * H, p.w_ih.shape[1]), "R": (G * H, p.w_hh.shape[1])}
    for k, shp in shapes.items():
        if w[k].shape != shp:
            raise InteropError(f"ONNX {k}: expected shape {shp}, got {w[k].shape}")
    p.w_ih[...] = pick(w["W"])
    p.w_hh[...] = pick(w["R"])
    if "B" in w and p.b_ih is not None:
        p.b_ih[...] = pick(w["B"][:G * H])
        p.b_hh[...] = pick(w["B"][G * H:])
    if p.w_peephole is not None:
        peep = [0, 1] if cell.cifg else [0, 2, 1]                  # ours i,(f),o from ONNX i,o,f
        p.w_peephole[...] = np.concatenate([w["P"][k * H:(k + 1) * H] for k in peep])
