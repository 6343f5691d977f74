"""Look inside a trained language model on a text: gates, saturation, units that follow a
signal, gradient flow; written as one HTML report."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..diagnostics import gate_activations, gradient_flow, saturation, top_units
from ..diagnostics.plots import plot_activations, plot_gradient_flow
from ..diagnostics.report import Report
from ..errors import ConfigError
from ..models import LanguageModel
from .common import load_model


def text_signal(text: str, signal: str) -> np.ndarray:
    """A per-character signal: "quotes" (inside '...' or "..."), "line_position" (column
    within the line), "brackets" (nesting depth of ([{), or "regex:PATTERN" (1 inside matches)."""
    if signal == "quotes":
        inside, out, quote = False, [], None
        for ch in text:
            if not inside and ch in "'\"":
                inside, quote = True, ch
            elif inside and ch == quote:
                inside = False
            out.append(float(inside))
        return np.array(out)
    if signal == "line_position":
        out, col = [], 0
        for ch in text:
            out.append(float(col))
            col = 0 if ch == "\n" else col + 1
        return np.array(out)
    if signal == "brackets":
        depth, out = 0, []
        for ch in text:
            depth += ch in "([{"
            out.append(float(depth))
            depth -= ch in ")]}" and depth > 0
        return np.array(out)
    if signal.startswith("regex:"):
        out = np.zeros(len(text))
        try:
            pattern = re.compile(signal[len("regex:"):])
        except re.error as exc:
            raise ConfigError(f"signal: expected regex:PATTERN with a valid regular expression, got "
                              f"{signal!r} ({exc})") from None
        for m in pattern.finditer(text):
            out[m.start():m.end()] = 1
        return out
    raise ConfigError(f"signal: expected quotes, line_position, brackets or regex:PATTERN, got {signal!r}")


@dataclass
class Inspection:
    saturation: dict
    top_units: list
    report: Path


def inspect_language_model(checkpoint: str | Path, text: str, out: str | Path = "inspect.html", *,
                           signal: str = "quotes", units: int = 3) -> Inspection:
    model, _ = load_model(checkpoint, expect_kind=LanguageModel.kind)
    if len(text) < 2:
        raise ConfigError("text: expected at least two characters to look at")
    sig = text_signal(text, signal)
    ids = model.vocab.encode(list(text) if model.cfg.level == "char" else text.split(), "text")
    if model.cfg.level != "char":
        raise ConfigError("inspect: character-level language models only (one activation per character)")
    model.eval()
    model.logits(ids[:, None])                                   # keeps the cache for the gates
    layers = gate_activations(model.rnn)
    rep = Report(f"rnnlab: inside {Path(checkpoint).name}")
    rep.paragraph(f"{len(text)} characters; signal: {signal}.")
    sat_all, tops = {}, []
    for name, acts in layers.items():
        sat = saturation({k: v[:, 0] for k, v in acts.items()}, model.rnn.cell.sigmoid_gates)
        sat_all[name] = sat
        rep.heading(f"Layer {name}")
        if sat:
            rep.table(["gate", "near 0", "near 1", "mean"],
                      [[g, v["near_0"], v["near_1"], v["mean"]] for g, v in sat.items()])
        key = "cell" if "cell" in acts else "hidden"
        best = top_units(acts[key][:, 0], sig, units)
        tops.append({"layer": name, "state": key, "units": best})
        for unit, r in best:
            series = acts[key][:, 0, unit]
            scale = np.abs(series).max() + 1e-12
            rep.coloured_text(text, series / scale, f"{name} {key} unit {unit}: r = {r:+.3f} with {signal}")
        rep.image(plot_activations(acts[key][:, 0], title=f"{name} {key}"), f"{name}: {key} state over the text")
    x, y = ids[:-1, None], ids[1:, None]
    flow = gradient_flow(model, (x, y))
    rep.heading("Gradient flow")
    rep.image(plot_gradient_flow({f"row {i}": flow.h_norm[i] for i in range(len(flow.h_norm))}),
              "||dL/dh_k|| of the next-character loss on this text")
    return Inspection(sat_all, tops, rep.save(out))
