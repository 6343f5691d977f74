"""Loading models from checkpoints, describing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RnnlabError
from ..train.checkpoint import CheckpointError, load_checkpoint


def load_model(path: str | Path, expect_kind: str | None = None):
    """The model saved in a checkpoint; `expect_kind` makes another kind a clear error."""
    from ..models import MODEL_KINDS
    arrays, meta = load_checkpoint(path)
    kind = meta["kind"]
    if expect_kind is not None and kind != expect_kind:
        raise CheckpointError(f"{path}: a checkpoint of a {kind}, expected a {expect_kind}")
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"{path}: unknown model kind {kind!r}")
    try:
        model = MODEL_KINDS[kind].from_config(meta["config"])
    except (KeyError, TypeError, RnnlabError) as exc:
        raise CheckpointError(f"{path}: its config does not describe a {kind} ({exc})") from None
    for k, a in model.named_parameters():
        src = arrays.get(f"model.{k}")
        if src is None:
            raise CheckpointError(f"{path}: parameter {k!r} is missing")
        if src.shape != a.shape or src.dtype.kind != "f":
            raise CheckpointError(f"{path}: parameter {k!r} has shape {src.shape} and dtype "
                                  f"{src.dtype}, expected {a.shape} floats")
        if not np.isfinite(src).all():
            raise CheckpointError(f"{path}: parameter {k!r} contains NaN or inf")
        a[...] = src
    model.eval()
    return model, meta


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """What a checkpoint holds: kind, version, config, size, training progress."""
    arrays, meta = load_checkpoint(path)
    params = {k[len("model."):]: list(v.shape) for k, v in arrays.items() if k.startswith("model.")}
    config = dict(meta.get("config", {}))
    vocab = config.pop("vocab", None)
    trainer = meta.get("trainer", {})
    return {
        "path": str(path), "kind": meta["kind"], "rnnlab_version": meta.get("rnnlab_version"),
        "config": config, "vocab_size": len(vocab) if isinstance(vocab, list) else None,
        "parameters": int(sum(np.prod(s) for s in params.values())), "shapes": params,
        "epochs_done": trainer.get("epoch"), "steps_done": trainer.get("global_step"),
        "best_val_loss": trainer.get("best_val_loss"), "train": meta.get("train"),
    }
