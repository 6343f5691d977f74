"""PyTorch state dicts in and out: dicts of arrays, `.safetensors` files and, through torch
(an optional extra), `.pt`/`.pth` files loaded with `weights_only=True` (no pickle code runs).

A bare `nn.RNN/LSTM/GRU` state dict maps one-to-one onto `rnnlab.RNN/LSTM/GRU`; its shapes
tell the architecture (gate count, layers, directions, projection). Whole small models (an
embedding, one recurrent network, a linear head) map by the usual attribute names.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import RnnlabError
from ..module import few, as_numpy
from ..networks import GRU, LSTM, RNN


class InteropError(RnnlabError, ValueError):
    """A file or state dict that cannot be mapped onto an rnnlab network or model."""


def to_numpy(state: Mapping[str, object]) -> dict[str, np.ndarray]:
    out = {}
    for k, v in state.items():
        a = as_numpy(v, f"state[{str(k)[:60]!r}]")
        if a.dtype.kind not in "fiu":
            raise InteropError(f"state[{k!r}]: expected a numeric tensor, got dtype {a.dtype}")
        out[str(k)] = a
    return out


def _torch():
    try:
        import torch
    except ImportError:
        raise InteropError("reading or writing .pt/.pth files needs PyTorch: "
                           "pip install torch==2.13.0") from None
    return torch


def load_state(source: str | Path | Mapping[str, object]) -> dict[str, np.ndarray]:
    """A state dict as NumPy arrays from a dict, a `.safetensors` file or a `.pt`/`.pth` file."""
    if isinstance(source, Mapping):
        return to_numpy(source)
    path = Path(source)
    if not path.is_file():
        raise InteropError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InteropError(f"{path}: not a readable safetensors file ({exc})") from None
    if path.suffix in (".pt", ".pth"):
        torch = _torch()
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:                           # torch raises many kinds here
            raise InteropError(f"{path}: not a loadable weights-only torch file ({type(exc).__name__}: "
                               f"{str(exc)[:200]})") from None
        if hasattr(obj, "state_dict"):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping):
            raise InteropError(f"{path}: expected a state dict, got {type(obj).__name__}")
        return to_numpy(obj)
    raise InteropError(f"{path}: expected a .safetensors, .pt or .pth file")


def save_state(state: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write a state dict as `.safetensors` (atomically) or `.pt`/`.pth` (through torch)."""
    path = Path(path)
    arrays = {k: np.ascontiguousarray(v) for k, v in state.items()}
    if path.suffix == ".safetensors":
        from safetensors.numpy import save
        from ..train.checkpoint import atomic_write_bytes
        atomic_write_bytes(path, save(arrays))
    elif path.suffix in (".pt", ".pth"):
        torch = _torch()
        torch.save({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, str(path))
    else:
        raise InteropError(f"{path}: expected a .safetensors, .pt or .pth file name")
    return path


_KEY = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


def infer_network(state: Mapping[str, np.ndarray], nonlinearity: str = "tanh") -> dict:
    """kind, input_size, hidden_size, num_layers, bidirectional, bias, proj_size of a bare
    torch.nn.RNN/LSTM/GRU state dict (RNN tanh vs relu cannot be told from weights)."""
    bad = [k for k in state if not _KEY.match(k)]
    if bad:
        raise InteropError(f"state: keys {few(bad)} are not those of torch.nn.RNN/LSTM/GRU")
    if "weight_ih_l0" not in state or "weight_hh_l0" not in state:
        raise InteropError("state: no weight_ih_l0 / weight_hh_l0 (not a recurrent network's state dict)")
    w_ih, w_hh = state["weight_ih_l0"], state["weight_hh_l0"]
    hr = state.get("weight_hr_l0")
    for name, w in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("weight_hr_l0", hr)):
        if w is not None and (w.ndim != 2 or 0 in w.shape):
            raise InteropError(f"state: {name}: expected a non-empty 2-D matrix, got shape {w.shape}")
    H = hr.shape[1] if hr is not None else w_hh.shape[1]
    gates = w_ih.shape[0] // H
    kinds = {1: "RNN", 3: "GRU", 4: "LSTM"}
    if gates not in kinds or w_ih.shape[0] != gates * H:
        raise InteropError(f"state: weight_ih_l0 has {w_ih.shape[0]} rows, not 1, 3 or 4 times "
                           f"the hidden size {H}")
    layers = 1 + max(int(_KEY.match(k).group(3)) for k in state)
    cfg = {"kind": kinds[gates], "input_size": int(w_ih.shape[1]), "hidden_size": int(H),
           "num_layers": layers, "bidirectional": any(k.endswith("_reverse") for k in state),
           "bias": "bias_ih_l0" in state, "proj_size": int(hr.shape[0]) if hr is not None else 0,
           "nonlinearity": nonlinearity}
    missing = [k for k in _expected_keys(cfg) if k not in state]    # checked before anything is built
    if missing:
        raise InteropError(f"state: a {cfg['kind']} of {layers} layers needs keys it lacks: {few(missing)}")
    return cfg


def _expected_keys(cfg: dict):
    """The keys of the torch network `cfg` describes, layer by layer (a generator: a hostile
    layer count costs nothing until a key is missing)."""
    stems = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if cfg["bias"] else [])
    stems += ["weight_hr"] if cfg["proj_size"] else []
    for layer in range(cfg["num_layers"]):
        for suffix in ("", "_reverse") if cfg["bidirectional"] else ("",):
            for stem in stems:
                yield f"{stem}_l{layer}{suffix}"


def network_from_state(source, *, dtype: object = np.float32, batch_first: bool = False,
                       nonlinearity: str | None = None):
    """An rnnlab RNN/LSTM/GRU holding a torch.nn.RNN/LSTM/GRU state dict's weights.

    An `nn.RNN`'s weights do not tell tanh from ReLU: give `nonlinearity`, or it is tanh
    (torch's default) with a warning."""
    state = load_state(source)
    cfg = infer_network(state, nonlinearity or "tanh")
    if cfg["kind"] == "RNN" and nonlinearity is None:
        warnings.warn("an nn.RNN state dict does not say whether it is tanh or relu: loaded as tanh "
                      "(give nonlinearity='relu' for a ReLU RNN)", UserWarning, stacklevel=2)
        nonlinearity = "tanh"
    common = dict(num_layers=cfg["num_layers"], bias=cfg["bias"], batch_first=batch_first,
                  bidirectional=cfg["bidirectional"], dtype=dtype, rng=0)
    if cfg["kind"] == "LSTM":
        net = LSTM(cfg["input_size"], cfg["hidden_size"], proj_size=cfg["proj_size"], **common)
    elif cfg["kind"] == "GRU":
        net = GRU(cfg["input_size"], cfg["hidden_size"], **common)
    else:
        net = RNN(cfg["input_size"], cfg["hidden_size"], nonlinearity=nonlinearity, **common)
    net.load_state_dict(state)
    return net


# the usual attribute names of the parts of a small torch model
ALIASES = {
    "embedding": ("embedding", "embed", "emb", "embeddings", "word_embeddings", "encoder"),
    "rnn": ("rnn", "lstm", "gru", "recurrent", "encoder", "rnn_layer"),
    "head": ("head", "fc", "linear", "decoder", "out", "output", "classifier", "proj", "dense"),
}


def map_model_state(state: Mapping[str, np.ndarray], own_keys: list[str]) -> dict[str, np.ndarray]:
    """Rename a torch model's keys (e.g. `encoder.weight`, `rnn.weight_ih_l0`, `decoder.bias`,
    as in PyTorch's word_language_model example) onto rnnlab's (`embedding.weight`, ...)."""
    parts = {k.split(".", 1)[0] for k in own_keys}
    mapped, unmatched = {}, []
    for key, value in state.items():
        prefix, _, rest = key.partition(".")
        target = None
        for part in parts:
            candidates = ALIASES.get(part, (part,))
            if prefix in candidates and f"{part}.{rest}" in own_keys and f"{part}.{rest}" not in mapped:
                target = f"{part}.{rest}"
                break
        if target is None:
            unmatched.append(key)
        else:
            mapped[target] = value
    missing = [k for k in own_keys if k not in mapped]
    if unmatched or missing:
        raise InteropError(f"state: keys that did not match: {unmatched}; rnnlab keys with no "
                           f"value: {missing}")
    return mapped


def load_model_state(model, source) -> None:
    """Load a torch model's state dict into an rnnlab model (embedding + recurrent + head),
    checking every shape before anything is written."""
    own = dict(model.named_parameters())
    mapped = map_model_state(load_state(source), list(own))
    bad = [f"{k}: {tuple(v.shape)} != {own[k].shape}" for k, v in mapped.items() if v.shape != own[k].shape]
    if bad:
        raise InteropError(f"state: shapes that do not fit the model: {bad}")
    for k, v in mapped.items():
        if not np.isfinite(v).all():
            raise InteropError(f"state[{k!r}]: contains NaN or inf")
    for k, v in mapped.items():
        own[k][...] = v


def model_state(model, prefixes: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
    """An rnnlab model's parameters under torch-style keys; `prefixes` renames the parts, e.g.
    {"embedding": "encoder", "head": "decoder"} for PyTorch's word_language_model."""
    prefixes = prefixes or {}
    out = {}
    for k, v in model.named_parameters():
        part, _, rest = k.partition(".")
        out[f"{prefixes.get(part, part)}.{rest}"] = v.copy()
    return out
