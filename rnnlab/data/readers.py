"""Readers for the datasets' formats; a malformed file gives a `DataError` naming the file
(and the line where there is one), never a traceback from deep inside a parser."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import conllu
import numpy as np

from ..errors import RnnlabError


class DataError(RnnlabError, ValueError):
    """A data file is missing, empty, not UTF-8 or malformed."""


def read_text(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: expected a file, got a directory")
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{p}: not UTF-8 text (byte {exc.start}, line {line})") from None
    if not text.strip():
        raise DataError(f"{p}: the file is empty")
    return text


def split_lines(text: str) -> list[str]:
    """Lines split at line feeds only (a trailing \\r dropped), not at the other Unicode line
    boundaries `str.splitlines` also breaks at (U+0085 NEL, U+2028, form feeds, ...), which
    can sit inside a sentence of a converted corpus."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _lines(path: str | Path) -> list[str]:
    return split_lines(read_text(path))


def read_conllu(path: str | Path, column: str | None = "upos") -> list[tuple[list[str], list[str]]]:
    """(words, tags) per sentence; multiword-token lines (`1-2`) and empty nodes (`1.1`) are
    skipped. `column` is "upos" or "xpos"; None reads the words alone (tags empty), for
    prediction from untagged files."""
    if column not in ("upos", "xpos", None):
        raise DataError(f"column: expected 'upos', 'xpos' or None, got {column!r}")
    sentences, block = [], []

    def flush() -> None:
        if block:
            tokens = conllu.parse_token_and_metadata("\n".join(block))
            words = [t["form"] for t in tokens if isinstance(t["id"], int)]
            tags = [t[column] for t in tokens if isinstance(t["id"], int)] if column else []
            if words:
                sentences.append((words, tags))
            block.clear()

    for n, line in enumerate(_lines(path), start=1):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise DataError(f"{path}:{n}: expected 10 tab-separated columns, got {len(cols)}")
        tid = cols[0]
        if not (tid.isdigit() or ("-" in tid and tid.replace("-", "").isdigit())
                or ("." in tid and tid.replace(".", "").isdigit())):
            raise DataError(f"{path}:{n}: expected a token id (1, 1-2 or 1.1), got {tid!r}")
        if tid.isdigit() and (not cols[1] or column and cols[3 if column == 'upos' else 4] in ("", "_")):
            raise DataError(f"{path}:{n}: token {tid} has no form or no {column.upper()}")
        block.append(line)
    flush()
    if not sentences:
        raise DataError(f"{path}: no sentences")
    return sentences


def read_conll_columns(path: str | Path) -> list[tuple[list[str], list[str]]]:
    """(tokens, tags) per sentence of a CoNLL-style file: `token<TAB>tag` (or more tab-separated
    columns, the tag last) a line, sentences separated by blank or whitespace-only lines,
    `-DOCSTART-` lines skipped."""
    sentences, tokens, tags = [], [], []
    for n, line in enumerate(_lines(path), start=1):
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0] or not cols[-1].strip():
            raise DataError(f"{path}:{n}: expected tab-separated token<TAB>tag, got {line[:60]!r}")
        tokens.append(cols[0])
        tags.append(cols[-1].strip())
    if tokens:
        sentences.append((tokens, tags))
    if not sentences:
        raise DataError(f"{path}: no sentences")
    return sentences


def read_sst(path: str | Path) -> tuple[list[list[str]], np.ndarray]:
    """Label-first-token sentence files: `1 a gripping film .` -> (tokens, labels)."""
    sents, labels = [], []
    for n, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        label, _, rest = line.strip().partition(" ")
        if not label.isdigit() or not rest:
            raise DataError(f"{path}:{n}: expected '<label> <tokens...>', got {line[:40]!r}")
        labels.append(int(label))
        sents.append(rest.split())
    if not sents:
        raise DataError(f"{path}: no sentences")
    return sents, np.asarray(labels, dtype=np.int64)


def read_csv_series(path: str | Path, column: int | str = -1) -> np.ndarray:
    """One numeric column of a CSV file with a header row, as float64 (N,)."""
    rows = list(csv.reader(_lines(path)))
    header, body = rows[0], [r for r in rows[1:] if r]
    if isinstance(column, str):
        if column not in header:
            raise DataError(f"{path}: column: expected one of the header's names {header} or an index, "
                            f"got {column!r}")
        idx = header.index(column)
    else:
        if not -len(header) <= column < len(header):
            raise DataError(f"{path}: column: expected an index in [{-len(header)}, {len(header)}) "
                            f"(the header has {len(header)} columns), got {column}")
        idx = column
    values = []
    for n, r in enumerate(body, start=2):
        try:
            values.append(float(r[idx]))
        except (ValueError, IndexError):
            raise DataError(f"{path}:{n}: expected a number in column {column!r}, got {r!r}") from None
    if not values:
        raise DataError(f"{path}: no data rows")
    arr = np.asarray(values)
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: the series contains NaN or inf")
    return arr


def read_ts(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """The sktime `.ts` format: `@` header lines, then `@data`, then one series a line with
    channels separated by `:` and values by `,`, the class label last. -> ((T, C) arrays, labels)."""
    series, labels, in_data = [], [], False
    for n, line in enumerate(_lines(path), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("@"):
            in_data = in_data or s.lower().startswith("@data")
            continue
        if not in_data:
            raise DataError(f"{path}:{n}: data before the @data line")
        *channels, label = s.split(":")
        try:
            chans = [np.array([float(v) for v in c.split(",")]) for c in channels]
        except ValueError:
            raise DataError(f"{path}:{n}: expected comma-separated numbers in each channel") from None
        if not chans or len({len(c) for c in chans}) != 1:
            raise DataError(f"{path}:{n}: expected channels of equal length")
        series.append(np.stack(chans, axis=1))                  # (T, C)
        labels.append(label)
    if not series:
        raise DataError(f"{path}: no series after @data")
    return series, labels


def read_jsb_chorales(path: str | Path, low: int = 21, keys: int = 88) -> dict[str, list[np.ndarray]]:
    """JSB Chorales JSON {"train","valid","test"}: pieces of time steps of MIDI pitches ->
    piano rolls (T, 88) of 0/1 float32 (pitch 21 = A0 is key 0)."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    out = {}
    for split in ("train", "valid", "test"):
        pieces = data.get(split) if isinstance(data, dict) else None
        if not isinstance(pieces, list):
            raise DataError(f"{path}: expected a list under {split!r}")
        rolls = []
        for k, piece in enumerate(pieces):
            roll = np.zeros((len(piece), keys), dtype=np.float32)
            for t, notes in enumerate(piece):
                for pitch in notes:
                    if not isinstance(pitch, (int, float)) or not low <= pitch < low + keys:
                        raise DataError(f"{path}: {split}[{k}][{t}]: pitch {pitch!r} outside "
                                        f"[{low}, {low + keys})")
                    roll[t, int(pitch) - low] = 1
            rolls.append(roll)
        out[split] = rolls
    return out
