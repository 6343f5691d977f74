"""Loading models from checkpoints, describing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RnnlabError
from ..train.checkpoint import CheckpointError, load_checkpoint, stored_parameters


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
    cls = MODEL_KINDS[kind]
    config = meta.get("config")

    def from_config(build):                      # a config that breaks either step: one clear line
        try:
            return build(config)
        except (KeyError, TypeError, AttributeError, ValueError, RnnlabError) as exc:
            raise CheckpointError(f"{path}: its config does not describe a {kind} ({_short(exc)})") from None
    floor = from_config(cls.parameter_floor)
    stored = stored_parameters(arrays)
    if floor > stored:                           # refused before anything is allocated
        raise CheckpointError(f"{path}: its config implies at least {floor} parameters, but the file "
                              f"holds {stored}")
    model = from_config(cls.from_config)
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


def _short(exc: BaseException, limit: int = 200) -> str:
    """An exception's message, cut to one short line (hostile files can make long ones)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


VOCAB_KEYS = ("vocab", "words", "chars", "tags", "labels")


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """What a checkpoint holds: kind, version, config, vocabulary sizes, parameter shapes and
    training progress. Vocabularies are counted, not listed (labels and tags are listed when
    there are at most 50)."""
    arrays, meta = load_checkpoint(path)
    params = {k[len("model."):]: list(v.shape) for k, v in arrays.items() if k.startswith("model.")}
    config = meta.get("config")
    config = dict(config) if isinstance(config, dict) else {}
    sizes = {}
    for key in VOCAB_KEYS:
        items = config.get(key)
        if isinstance(items, list):
            sizes[key] = len(items)
            if key not in ("labels", "tags") or len(items) > 50:
                del config[key]
    trainer = meta.get("trainer")
    trainer = trainer if isinstance(trainer, dict) else {}
    return {
        "path": str(path), "kind": meta["kind"], "rnnlab_version": meta.get("rnnlab_version"),
        "config": config, "vocab_sizes": sizes,
        "parameters": int(sum(np.prod(s) for s in params.values())), "shapes": params,
        "epochs_done": trainer.get("epoch"), "steps_done": trainer.get("global_step"),
        "best_val_loss": trainer.get("best_val_loss"), "train": meta.get("train"),
    }
