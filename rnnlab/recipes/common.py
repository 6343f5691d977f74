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
    if kind == "bidirectional_lm":
        raise CheckpointError(f"{path}: the pretraining stage of a classifier run (its encoder as a "
                              "bidirectional LM); use the classifier's checkpoint in the run directory above")
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"{path}: unknown model kind {kind!r}")
    _guard_sizes(path, meta.get("config"), arrays)
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


SIZE_KEYS = ("hidden_size", "embedding_dim", "input_size", "output_size", "num_layers", "num_classes",
             "word_dim", "char_dim", "char_hidden", "keys", "horizon", "window")


def _guard_sizes(path, config: Any, arrays: dict[str, np.ndarray]) -> None:
    """Refuse a config whose sizes no array in the file could hold, before any allocation:
    a hostile file must not make the loader build a model of 10**9 units."""
    largest = max((max(a.shape, default=1) for a in arrays.values()), default=0)
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k in SIZE_KEYS and isinstance(v, int) and not 0 <= v <= max(largest, 1):
                    raise CheckpointError(f"{path}: config {k}={v} does not fit the arrays in the file "
                                          f"(largest dimension {largest})")
                stack.append(v)
        elif isinstance(node, list):
            stack.extend(x for x in node if isinstance(x, (dict, list)))


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
