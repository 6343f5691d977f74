"""Convert between PyTorch state dicts (.pt/.pth/.safetensors), rnnlab checkpoints and ONNX."""

from __future__ import annotations

from pathlib import Path

from ..interop.onnx_io import export_model, export_network, import_network
from ..interop.torch_state import InteropError, model_state, network_from_state, save_state


def _is_checkpoint(path: Path) -> bool:
    if path.suffix != ".safetensors":
        return False
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="numpy") as f:
            return "rnnlab" in (f.metadata() or {})
    except Exception:                                       # unreadable: let the loader say why
        return False


def convert(source: str | Path, target: str | Path, *, nonlinearity: str | None = None,
            batch_first: bool = False) -> str:
    """source -> target by their extensions:
    * rnnlab checkpoint (.safetensors with rnnlab metadata) -> .onnx (a translator: X.encoder.onnx
      and X.step.onnx, its encoder and one decoder step), or -> .pt/.pth/.safetensors (the
      model's parameters under torch-style keys);
    * torch nn.RNN/LSTM/GRU state dict (.pt/.pth/.safetensors) -> .onnx (or another state file);
    * .onnx (RNN/LSTM/GRU nodes) -> .pt/.pth/.safetensors torch state dict.
    Returns a one-line description of what was written."""
    src, dst = Path(source), Path(target)
    if not src.is_file():
        raise InteropError(f"{src}: no such file")
    if dst.suffix not in (".onnx", ".pt", ".pth", ".safetensors"):
        raise InteropError(f"{dst}: expected a .onnx, .pt, .pth or .safetensors target")
    if src.suffix == ".onnx":
        if dst.suffix == ".onnx":
            raise InteropError("convert: source and target are both ONNX")
        net = import_network(src)
        save_state(net.state_dict(), dst)
        return f"{dst}: torch {type(net).__name__} state dict ({len(net.state_dict())} tensors)"
    if _is_checkpoint(src):
        from .common import load_model
        model, meta = load_model(src)
        if dst.suffix == ".onnx" and meta["kind"] == "translator":
            from ..interop.onnx_translator import export_translator
            enc, step = dst.with_suffix(".encoder.onnx"), dst.with_suffix(".step.onnx")
            export_translator(model, enc, step)
            return f"{enc}, {step}: ONNX graphs of the translator's encoder and one decoder step"
        if dst.suffix == ".onnx":
            export_model(model, dst)
            return f"{dst}: ONNX graph of the {meta['kind']}"
        save_state(model_state(model), dst)
        return f"{dst}: the {meta['kind']}'s parameters under torch-style keys"
    net = network_from_state(src, nonlinearity=nonlinearity, batch_first=batch_first)
    if dst.suffix == ".onnx":
        export_network(net, dst)
        return f"{dst}: ONNX graph of a {type(net).__name__} ({net.num_layers} layer(s))"
    save_state(net.state_dict(), dst)
    return f"{dst}: torch {type(net).__name__} state dict"
