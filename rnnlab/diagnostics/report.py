"""A self-contained HTML report: plots embedded as base64 PNG, tables, and activations drawn
over the input text as coloured characters. Every piece of text is escaped, so untrusted
input cannot inject markup or script."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STYLE = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}
th{background:#eee}.text{font-family:monospace;white-space:pre-wrap;line-height:1.6;border:1px solid #ddd;padding:8px}
figure{margin:1em 0}figcaption{color:#555;font-size:90%}"""


@dataclass
class Report:
    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        def cell(v: object) -> str:
            return html.escape(f"{v:.4g}" if isinstance(v, float) else str(v))
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
        self.parts.append(f"<table class=\"results\"><tr>{head}</tr>{body}</table>")

    def image(self, png: bytes, caption: str) -> None:
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(f"<figure><img alt=\"{html.escape(caption, quote=True)}\" "
                          f"src=\"data:image/png;base64,{data}\"><figcaption>{html.escape(caption)}"
                          "</figcaption></figure>")

    def coloured_text(self, text: str, values: np.ndarray, caption: str) -> None:
        """Each character's background: blue (-1) through white (0) to red (+1)."""
        v = np.clip(np.asarray(values, dtype=float), -1, 1)
        spans = []
        for ch, a in zip(text, v):
            r, g, b = ((255, int(255 * (1 - a)), int(255 * (1 - a))) if a >= 0
                       else (int(255 * (1 + a)), int(255 * (1 + a)), 255))
            spans.append(f"<span style=\"background:rgb({r},{g},{b})\" title=\"{a:+.2f}\">"
                         f"{html.escape(ch)}</span>")
        self.parts.append(f"<figure><div class=\"text\">{''.join(spans)}</div>"
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def render(self) -> str:
        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1>{''.join(self.parts)}</body></html>")

    def save(self, path: str | Path) -> Path:
        from ..train.checkpoint import atomic_write_bytes
        path = Path(path)
        atomic_write_bytes(path, self.render().encode("utf-8"))
        return path
