"""The training loop. It sees a model only as named parameters and gradients plus
`forward_backward` / `evaluate_batch`, and data only as a `Task`; it knows nothing about cells.

Exact resume: the batch order of epoch e comes from `default_rng([seed, e])`, and a checkpoint
holds the model, the optimizer state, the model's RNG state (dropout), the carried recurrent
state (language models), the schedule and the position in the epoch. A killed run restarted
with the same arguments continues from its last checkpoint and ends with the same weights as
a run that was never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from .. import _checks as check
from ..errors import ConfigError, RnnlabError
from ..optim import OPTIMIZERS, clip_grad_norm
from ..optim.schedules import SCHEDULES
from .checkpoint import (atomic_write_bytes, load_checkpoint, remove_stale_temporaries, save_checkpoint,
                         stored_parameters)
from .distributed import Comm, GradientSum, bcast_arrays, gather_columns, shard, world


class Task(Protocol):
    """The data side of training."""
    carries_state: bool                       # pass the final state of batch k into batch k+1

    def train_batches(self, rng: np.random.Generator) -> Sequence[Any]: ...

    def valid_batches(self) -> Sequence[Any]: ...

    # Optional: `valid_metrics(model) -> dict[str, float]`, scores over the whole validation set
    # that are no mean of per-batch sums (entity F1, BLEU); they join the batch means in the log
    # (as val_<name>) and may be the monitored metric.


@dataclass
class TrainConfig:
    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip: float | None = 5.0                  # global gradient norm; None: no clipping
    schedule: str = "constant"
    schedule_args: dict = field(default_factory=dict)
    patience: int | None = None               # early stopping on the monitored metric
    monitor: str = "loss"                     # the validation metric that picks best.safetensors
    mode: str = "auto"                        # "min", "max", or "auto": max for accuracy/F1/BLEU-like names
    seed: int = 0
    checkpoint_every: int = 0                 # also checkpoint every N steps (0: epoch ends only)
    max_steps_per_epoch: int | None = None
    max_minutes: float | None = None          # this call's time budget (a run resumes past it)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule: expected one of {sorted(SCHEDULES)}, got {self.schedule!r}")
        check.positive_int(self.epochs, "epochs")
        check.number(self.lr, "lr", 0.0, open_min=True)
        check.number(self.weight_decay, "weight_decay", 0.0)
        if self.clip is not None:
            check.number(self.clip, "clip", 0.0, open_min=True)
        if self.patience is not None:
            check.positive_int(self.patience, "patience", allow_zero=True)
        check.positive_int(self.checkpoint_every, "checkpoint_every", allow_zero=True)
        if self.max_steps_per_epoch is not None:
            check.positive_int(self.max_steps_per_epoch, "max_steps_per_epoch")
        if self.max_minutes is not None:
            check.number(self.max_minutes, "max_minutes", 0.0, open_min=True)
        if not isinstance(self.schedule_args, dict):
            raise ConfigError(f"schedule_args: expected a dict, got {type(self.schedule_args).__name__}")
        make_schedule(self.schedule, self.schedule_args)      # refuses unknown settings now
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ConfigError(f"monitor: expected a validation metric's name, got {self.monitor!r}")
        if self.mode not in ("auto", "min", "max"):
            raise ConfigError(f"mode: expected 'auto', 'min' or 'max', got {self.mode!r}")

    @property
    def maximise(self) -> bool:
        """Whether a larger monitored value is better (Keras's mode="auto" rule, widened)."""
        if self.mode != "auto":
            return self.mode == "max"
        return any(w in self.monitor for w in ("acc", "f1", "precision", "recall", "bleu", "chrf"))

    def resumable_from(self, other: dict) -> list[str]:
        """The settings that differ from a run's saved ones and forbid continuing it: all but
        the epoch count and the patience (raising them extends a finished run) and the time
        budget (a call's own)."""
        mine = asdict(self)
        other = {**{f.name: f.default for f in fields(self) if f.name in ("monitor", "mode")}, **other}  # older runs
        return sorted(k for k in mine.keys() | other.keys()
                      if k not in ("epochs", "patience", "max_minutes") and mine.get(k) != other.get(k))


def make_schedule(name: str, args: dict):
    """The schedule `name` with its settings; an unknown or mistyped setting is a ConfigError."""
    cls = SCHEDULES[name]
    known = sorted(f.name for f in fields(cls)) if is_dataclass(cls) else []
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise ConfigError(f"schedule_args: the {name!r} schedule takes {known or 'no settings'}, "
                          f"got {unknown}")
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"schedule_args: {exc}") from None


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    metrics_log: Path
    best_val_loss: float                      # the validation loss of the best checkpoint
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    stopped: str | None = None                # "time": max_minutes ran out mid-run
    processes: int = 1                        # data-parallel ranks that trained it (mpiexec -n)
    allreduce_steps: int = 0                  # steps whose gradients were summed across them
    allreduce_seconds: float = 0.0            # time those sums took on this rank
    best_score: float = math.nan              # the monitored metric of the best checkpoint
    best_epoch: int | None = None             # the epoch it was written after


def _carry_arrays(carry) -> list[np.ndarray]:
    if carry is None:
        return []
    return list(carry) if isinstance(carry, tuple) else [carry]


def _carry_from(arrays: list[np.ndarray]):
    if not arrays:
        return None
    return tuple(arrays) if len(arrays) == 2 else arrays[0]


def evaluate(model, batches: Sequence[Any], carries_state: bool = False, comm: Comm | None = None
             ) -> dict[str, float]:
    """Mean metrics of a model over batches (per counted element), in evaluation mode (the
    model's mode is restored after). With a communicator of several processes each evaluates
    its shard of every batch and the sums are added up."""
    comm = comm or Comm()
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count, carry = 0, None
    for batch in batches:
        if comm.size > 1:
            batch = model.shard_batch(batch, comm)
            if batch is None:                          # this rank's shard is empty
                continue
        metrics, n, state = model.evaluate_batch(batch, carry if carries_state else None)
        carry = state
        count += n
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + v
    model.train(was_training)
    if comm.size > 1:
        keys = sorted(comm.bcast_json(sorted(sums)))
        buf = np.array([sums.get(k, 0.0) for k in keys] + [count], dtype=np.float64)
        comm.allreduce_sum(buf)
        sums, count = dict(zip(keys, buf[:-1].tolist())), buf[-1]
    return {k: v / max(count, 1) for k, v in sums.items()}


def train(model, task: Task, cfg: TrainConfig, run_dir: str | Path, *, resume: bool = True,
          progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
          comm: Comm | None = None) -> TrainResult:
    """Train `model` on `task`, writing `last.safetensors`, `best.safetensors` and
    `metrics.jsonl` into `run_dir`; resumes from `last.safetensors` there when `resume`.
    With `cfg.max_minutes` the call stops after the first step past that much time, with
    `last.safetensors` written where it stopped (mid-epoch): calling again resumes there.

    Started by `mpiexec -n N` (or given `comm`), the N processes train one model: each takes
    its shard of every global batch (`model.shard_batch`), one allreduce a step sums the
    gradients, the loss and the count, rank 0 alone writes checkpoints, the log and progress
    (train/distributed.py). Dropout draws from a stream of each rank's own."""
    started = time.perf_counter()
    comm = comm or world()
    root = comm.is_root
    if comm.size > 1 and not callable(getattr(model, "shard_batch", None)):
        raise ConfigError(f"a {model.kind} cannot be trained across processes (no shard_batch)")
    max_minutes = cfg.max_minutes
    run_dir = Path(run_dir)
    file = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
    if file is not None:
        raise RnnlabError(f"run_dir: expected a directory, but {file} is a file")
    run_dir.mkdir(parents=True, exist_ok=True)
    if root:                                                   # the only writer: another rank would
        remove_stale_temporaries(run_dir)                      # delete rank 0's write in flight
    last, best, log = run_dir / "last.safetensors", run_dir / "best.safetensors", run_dir / "metrics.jsonl"
    params = dict(model.named_parameters())
    opt = OPTIMIZERS[cfg.optimizer](params.items(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = make_schedule(cfg.schedule, cfg.schedule_args)
    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "lr": cfg.lr,
             "best_val_loss": math.inf, "best_score": None, "best_epoch": None, "bad_epochs": 0, "log_lines": 0, "done": False,
             "history": [], "epoch_loss_sum": 0.0, "epoch_count": 0}
    carry = None
    if resume and last.exists():
        arrays, meta = load_checkpoint(last)
        if meta["kind"] != model.kind:
            raise RnnlabError(f"{last}: a checkpoint of a {meta['kind']}, not a {model.kind}; "
                              "use another run directory or resume=False")
        saved = meta.get("train") if isinstance(meta.get("train"), dict) else {}
        changed = cfg.resumable_from(saved)
        if changed:
            raise RnnlabError(f"{last}: this run was started with other settings "
                              f"({', '.join(f'{k}: {saved.get(k)!r} -> {getattr(cfg, k, None)!r}' for k in changed)}); "
                              "use another run directory, or start afresh (--no-resume, resume=False)")
        if not _same_model(model, meta.get("config"), arrays):
            raise RnnlabError(f"{last}: this run's model differs ({_config_diff(meta.get('config'), model.config())}); "
                              "use another run directory, or start afresh (--no-resume, resume=False)")
        _restore(model, opt, arrays)
        state = meta["trainer"]
        if "best_score" not in state:                  # written before monitor: the lowest loss
            state["best_score"] = None if math.isinf(state["best_val_loss"]) else state["best_val_loss"]
            state["best_epoch"] = min(state["history"], key=lambda r: r["val_loss"], default={}).get("epoch")
        state["done"] = cfg.patience is not None and state["bad_epochs"] > cfg.patience  # patience may change
        model.rng.bit_generator.state = meta["rng"]
        schedule.load_state(meta["schedule"])
        carry = _carry_from([arrays[f"carry.{i}"] for i in range(meta["carry_len"])])
        if comm.size > 1 and carry is not None:         # the global streams' state: this rank's columns
            carry = _carry_from([a[:, shard(a.shape[1], comm)] for a in _carry_arrays(carry)])
        if root:
            _truncate_lines(log, state["log_lines"])
    elif root:
        log.write_text("")
    if comm.size > 1:
        bcast_arrays(comm, [a for _, a in model.named_parameters()])   # one start for every rank
        comm.barrier()                                 # rank 0 has set the log up

    def checkpoint(path: Path) -> None:
        carry_list = [gather_columns(comm, a, 1) for a in _carry_arrays(carry)]   # (L, B, H) per rank
        if not root:
            return
        arrays = {f"model.{k}": a for k, a in model.named_parameters()}
        arrays.update({f"optim.{k}": a for k, a in opt.state_arrays().items()})
        arrays.update({f"carry.{i}": a for i, a in enumerate(carry_list)})
        meta = {"kind": model.kind, "rnnlab_version": __version__, "config": model.config(),
                "train": asdict(cfg), "trainer": state, "rng": model.rng.bit_generator.state,
                "schedule": schedule.state(), "carry_len": len(carry_list), "processes": comm.size}
        save_checkpoint(path, arrays, meta)

    def write_log(record: dict) -> None:
        if root:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        state["log_lines"] += 1

    def out_of_time() -> bool:
        return max_minutes is not None and time.perf_counter() - started >= 60 * max_minutes

    def result(stopped: str | None) -> TrainResult:
        score = math.nan if state["best_score"] is None else state["best_score"]
        return TrainResult(run_dir, best, last, log, state["best_val_loss"], state["epoch"], state["history"],
                           stopped, *_reduced(comm, summed), best_score=score, best_epoch=state["best_epoch"])

    summed = GradientSum([k for k, _ in model.named_parameters()], dict(model.named_parameters())) \
        if comm.size > 1 else None

    model.train()
    while not state["done"] and state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        opt.lr = state["lr"]
        batches = task.train_batches(np.random.default_rng([cfg.seed, epoch]))
        n_batches = len(batches) if cfg.max_steps_per_epoch is None else min(len(batches), cfg.max_steps_per_epoch)
        bar = tqdm(total=n_batches, initial=state["step_in_epoch"], desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=None if progress and root else True, leave=True, unit="batch")  # off when not a TTY
        t0, seen = time.perf_counter(), 0
        for i in range(state["step_in_epoch"], n_batches):
            stop = False
            if comm.size > 1:                          # time runs out on every rank at the same step
                stop = out_of_time()
                model.rng.bit_generator.state = (                # dropout: the rank's own stream (the
                    np.random.default_rng([cfg.seed, epoch, i, comm.rank]).bit_generator.state)  # layers share it)
                local = model.shard_batch(batches[i], comm)
                if local is None:                      # an empty shard: nothing to add but the step
                    loss_sum, n, new_carry = 0.0, 0, carry
                    grads = {k: np.zeros_like(a) for k, a in model.named_parameters()}
                else:
                    loss_sum, n, new_carry = model.forward_backward(local, carry if task.carries_state else None)
                    grads = dict(model.named_grads())
                loss_sum, n, stop = summed(comm, grads, loss_sum, n, stop)
            else:
                loss_sum, n, new_carry = model.forward_backward(batches[i], carry if task.carries_state else None)
                grads = dict(model.named_grads())
            if not math.isfinite(loss_sum):
                raise RnnlabError(f"training diverged: loss is {loss_sum} at epoch {epoch + 1}, "
                                  f"step {i + 1}; lower the learning rate or clip gradients")
            carry = new_carry if task.carries_state else None
            if cfg.clip is not None:
                clip_grad_norm(grads, cfg.clip)
            opt.step(grads)
            state["epoch_loss_sum"] += loss_sum
            state["epoch_count"] += n
            state["step_in_epoch"] = i + 1
            state["global_step"] += 1
            seen += n
            bar.update(1)
            bar.set_postfix(loss=f"{state['epoch_loss_sum'] / state['epoch_count']:.4f}",
                            speed=f"{seen / (time.perf_counter() - t0):.0f}/s")
            if cfg.checkpoint_every and state["global_step"] % cfg.checkpoint_every == 0:
                checkpoint(last)
            if comm.size == 1:
                stop = out_of_time()
            if stop:
                bar.close()
                checkpoint(last)                               # mid-epoch: a later call resumes here
                return result("time")
        val = evaluate(model, task.valid_batches(), task.carries_state, comm)
        val.update(_whole_set_metrics(model, task))
        if cfg.monitor not in val:
            raise ConfigError(f"monitor: expected one of the validation metrics {sorted(val)}, got {cfg.monitor!r}")
        train_loss = state["epoch_loss_sum"] / max(state["epoch_count"], 1)
        record = {"epoch": epoch + 1, "step": state["global_step"], "train_loss": train_loss,
                  **{f"val_{k}": v for k, v in val.items()}, "lr": opt.lr,
                  "seconds": time.perf_counter() - t0}
        score, best_score = val[cfg.monitor], state["best_score"]
        improved = not math.isnan(score) and (
            best_score is None or (score > best_score if cfg.maximise else score < best_score))
        if improved:
            state.update(best_score=score, best_val_loss=val["loss"], best_epoch=epoch + 1, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        state["history"].append(record)
        bar.set_postfix(train_loss=f"{train_loss:.4f}", **{f"val_{k}": f"{v:.4f}" for k, v in val.items()})
        bar.close()                                            # the epoch's line stays on screen
        state["lr"] = schedule(cfg.lr, epoch, val["loss"])
        state.update(epoch=epoch + 1, step_in_epoch=0, epoch_loss_sum=0.0, epoch_count=0)
        carry = None                                           # each epoch restarts the streams
        if cfg.patience is not None and state["bad_epochs"] > cfg.patience:
            state["done"] = True
        write_log(record)
        if improved:
            checkpoint(best)
        checkpoint(last)
        if on_epoch is not None and root:
            on_epoch(record)
    return result(None)


def _whole_set_metrics(model, task) -> dict[str, float]:
    """The task's `valid_metrics` (see Task), in evaluation mode; none when it has none."""
    fn = getattr(task, "valid_metrics", None)
    if fn is None:
        return {}
    was_training = model.training
    model.eval()
    try:
        return {k: float(v) for k, v in fn(model).items()}
    finally:
        model.train(was_training)


def _reduced(comm: Comm, summed: GradientSum | None) -> tuple[int, int, float]:
    return (comm.size, summed.calls, summed.seconds) if summed is not None else (1, 0, 0.0)


def _same_model(model, saved: object, arrays: dict[str, np.ndarray]) -> bool:
    """Whether a checkpoint's config describes `model`, also when it was written before a
    config field was added (it is read as it loads: missing fields take their defaults)."""
    current = json.loads(json.dumps(model.config()))
    if saved == current:
        return True
    cls = type(model)
    try:
        if cls.parameter_floor(saved) > stored_parameters(arrays):            # refused before anything is allocated
            return False
        return json.loads(json.dumps(cls.from_config(saved, getattr(model, "dtype", np.float32)).config())) == current
    except (KeyError, TypeError, AttributeError, ValueError, RnnlabError):
        return False


def _config_diff(old: object, new: dict) -> str:
    """The first few paths at which two model configs differ, as `path: old -> new`."""
    out: list[str] = []

    def walk(a, b, path):
        if len(out) >= 3:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(a.keys() | b.keys(), key=str):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        elif a != b:
            short = (lambda v: f"{len(v)} entries" if isinstance(v, list) and len(v) > 5 else repr(v))
            out.append(f"{path}: {short(a)} -> {short(b)}")
    walk(old, new, "")
    return ", ".join(out) or "the model kind"


def _restore(model, opt, arrays: dict[str, np.ndarray]) -> None:
    own = dict(model.named_parameters())
    for k, a in own.items():
        src = arrays.get(f"model.{k}")
        if src is None or src.shape != a.shape:
            raise RnnlabError(f"checkpoint: parameter {k!r} is missing or has another shape")
        a[...] = src
    opt.load_state_arrays({k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")})


def _truncate_lines(path: Path, n: int) -> None:
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:n]
    atomic_write_bytes(path, "".join(lines).encode("utf-8"))
