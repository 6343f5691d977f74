"""Checkpoints: one safetensors file holding the arrays and, in its metadata, the JSON config
and trainer state. Written to a temporary file, fsynced, then renamed over the old one, so a
kill at any moment leaves either the old or the new checkpoint, never half of one. Loading
never runs code: safetensors has no pickle."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from ..errors import RnnlabError

META_KEY = "rnnlab"


class CheckpointError(RnnlabError, ValueError):
    """A checkpoint file is missing, truncated, corrupted or of another kind."""


def temporary_path(path: Path) -> Path:
    """A fresh name beside `path` for a file written before it is renamed over `path`."""
    return path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"


def remove_stale_temporaries(folder: Path) -> None:
    """Delete what a write killed before its rename left in `folder` (`.NAME.XXXX.tmp`)."""
    for stale in folder.glob(".*.tmp"):
        if stale.is_file():
            stale.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, rename it over `path`. The
    file gets the permissions any other new file would (0o666 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Arrays and JSON metadata in one safetensors file, written atomically (see the module)."""
    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata={META_KEY: json.dumps(meta)})
    atomic_write_bytes(Path(path), data)


def stored_parameters(arrays: dict[str, np.ndarray]) -> int:
    """How many model parameters a checkpoint's arrays hold (its `model.*` entries)."""
    return sum(a.size for k, a in arrays.items() if k.startswith("model."))


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        arrays = load_file(str(path))
        from safetensors import safe_open
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    if raw is None:
        raise CheckpointError(f"{path}: a safetensors file without rnnlab metadata")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: its rnnlab metadata is not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: its rnnlab metadata is nested too deeply") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str):
        raise CheckpointError(f"{path}: its rnnlab metadata has no model kind (a string)")
    return arrays, meta
