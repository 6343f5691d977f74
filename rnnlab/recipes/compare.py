"""Why gates work, measured: train RNN, LSTM, GRU (and the variants) on one long-dependency
task at a chosen length with several seeds; learning curves, success rates, the gradient
norm against distance, written as a table, PNG plots and one self-contained HTML report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import Vocab
from ..data.synthetic import REBER_SYMBOLS, adding_problem, copy_memory, embedded_reber, first_token_task
from ..data.batching import pad_sequences
from ..diagnostics import gradient_flow
from ..diagnostics.plots import plot_gradient_flow, plot_learning_curves
from ..diagnostics.report import Report
from ..errors import ConfigError
from ..models import (ClassifierConfig, LanguageModel, LanguageModelConfig, RecurrentConfig, RegressorConfig,
                      SequenceClassifier, SequenceRegressor)
from ..train import TrainConfig, train

TASKS = ("adding", "copy", "reber", "first_token")


@dataclass
class ArrayTask:
    """Fixed training examples, shuffled into batches each epoch; one validation batch."""
    make_batch: object                         # (index array) -> batch
    n_train: int
    valid: object
    batch_size: int
    carries_state: bool = False

    def train_batches(self, rng):
        order = rng.permutation(self.n_train)
        return [self.make_batch(order[i:i + self.batch_size]) for i in range(0, self.n_train, self.batch_size)]

    def valid_batches(self):
        return [self.valid]


@dataclass
class TaskSpec:
    name: str
    build_model: object                        # (cell, hidden, seed) -> model
    task: ArrayTask
    test_batch: object
    score: object                              # (model, batch) -> (metric value, success bool)
    metric: str
    baseline: float


def reber_correct(model: LanguageModel, strings) -> float:
    """Share of positions where the k most likely next symbols are exactly the k legal ones."""
    ids = [model.vocab.encode(s) for s, _ in strings]
    x, lengths = pad_sequences([i[:-1] for i in ids], pad=0)
    logits, _ = model.logits(x, None, keep_cache=False, lengths=lengths)
    right = total = 0
    for b, (s, legal) in enumerate(strings):
        for t in range(len(s) - 1):
            k = len(legal[t])
            top = set(model.vocab.decode(np.argsort(-logits[t, b])[:k]))
            right += top == legal[t]
            total += 1
    return right / total


def task_spec(name: str, length: int, n_train: int, n_test: int, seed: int, batch_size: int) -> TaskSpec:
    rng = np.random.default_rng([seed, 12345])
    f32 = np.float32
    if name not in TASKS:
        raise ConfigError(f"task: expected one of {', '.join(TASKS)}, got {name!r}")
    if name == "adding":
        x, y = adding_problem(n_train, length, rng)
        vx, vy = adding_problem(n_test, length, rng)
        x, y, vx, vy = x.astype(f32), y.astype(f32), vx.astype(f32), vy.astype(f32)

        def build(cell, hidden, s):
            return SequenceRegressor(RegressorConfig(2, 1, RecurrentConfig(cell, hidden)), rng=s)

        def score(m, batch):
            mse = float(((m.predict(batch[0]) - batch[1]) ** 2).mean())
            return mse, mse < 0.01
        return TaskSpec(name, build, ArrayTask(lambda i: (x[:, i], y[i]), n_train, (vx, vy), batch_size),
                        (vx, vy), score, "test MSE", 1 / 6)
    if name == "copy":
        x, y = copy_memory(n_train, length, rng)
        vx, vy = copy_memory(n_test, length, rng)
        vocab = Vocab([str(i) for i in range(10)])

        def build(cell, hidden, s):
            return LanguageModel(vocab, LanguageModelConfig("word", 16, RecurrentConfig(cell, hidden)), rng=s)

        def score(m, batch):
            logits, _ = m.logits(batch[0], None, keep_cache=False)
            acc = float((logits[-10:].argmax(-1) == batch[1][-10:]).mean())
            return acc, acc >= 0.99
        return TaskSpec(name, build, ArrayTask(lambda i: (x[:, i], y[:, i]), n_train, (vx, vy), batch_size),
                        (vx, vy), score, "recall accuracy", 1 / 8)
    if name == "reber":
        train_s = embedded_reber(n_train, rng)
        test_s = embedded_reber(n_test, rng)
        vocab = Vocab(list(REBER_SYMBOLS))

        def pad(strings):
            ids = [vocab.encode(s) for s, _ in strings]
            x, lengths = pad_sequences([i[:-1] for i in ids], pad=0)
            y, _ = pad_sequences([i[1:] for i in ids], pad=0)
            return x, y, lengths

        def build(cell, hidden, s):
            return LanguageModel(vocab, LanguageModelConfig("char", 8, RecurrentConfig(cell, hidden)), rng=s)

        def score(m, batch):
            acc = reber_correct(m, test_s)
            return acc, acc == 1.0
        return TaskSpec(name, build, ArrayTask(lambda i: pad([train_s[k] for k in i]), n_train, pad(test_s),
                                               batch_size), pad(test_s), score, "next-symbol sets correct", 0.0)
    if name == "first_token":
        x, y = first_token_task(n_train, length, rng)
        vx, vy = first_token_task(n_test, length, rng)
        vocab = Vocab([f"t{i}" for i in range(20)])
        lens, vlens = np.full(n_train, length + 1), np.full(n_test, length + 1)

        def build(cell, hidden, s):
            return SequenceClassifier(vocab, ClassifierConfig(4, 0, 16, RecurrentConfig(cell, hidden)),
                                      ["0", "1", "2", "3"], rng=s)

        def score(m, batch):
            acc = float((m.predict_proba(batch[0], batch[1]).argmax(-1) == batch[2]).mean())
            return acc, acc >= 0.99
        return TaskSpec(name, build, ArrayTask(lambda i: (x[:, i], lens[i], y[i]), n_train, (vx, vlens, vy),
                                               batch_size), (vx, vlens, vy), score, "accuracy", 0.25)
    raise ConfigError(f"task: expected one of {', '.join(TASKS)}, got {name!r}")


def mean_aligned_at_end(curves: list[np.ndarray]) -> np.ndarray:
    """Mean of per-seed curves of different lengths, aligned at their last step (distance 0
    from the loss); steps only some seeds have are averaged over those seeds."""
    n = max(len(c) for c in curves)
    table = np.full((len(curves), n), np.nan)
    for row, c in zip(table, curves):
        row[n - len(c):] = c
    return np.nanmean(table, axis=0)


@dataclass
class CompareResult:
    rows: list[dict] = field(default_factory=list)
    report: Path | None = None
    table: Path | None = None


def compare_cells(task: str = "adding", length: int = 100, cells: tuple[str, ...] = ("rnn", "lstm", "gru"),
                  seeds: int = 3, hidden_size: int = 64, n_train: int = 10_000, n_test: int = 1_000,
                  batch_size: int = 50, train_config: TrainConfig | None = None,
                  run_dir: str | Path = "runs/compare", progress: bool = True) -> CompareResult:
    """Train each cell with each seed on the task; write results.json, table.md, PNG plots and
    report.html into run_dir."""
    task_spec(task, length, 1, 1, 0, 1)                          # a bad task name fails first
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = train_config or TrainConfig(epochs=20, lr=1e-3, clip=1.0)
    out = CompareResult()
    curves, flows_before, flows_after = {}, {}, {}
    for cell in cells:
        for seed in range(seeds):
            spec = task_spec(task, length, n_train, n_test, seed, batch_size)
            model = spec.build_model(cell, hidden_size, seed)
            before = gradient_flow(model, spec.test_batch).h_norm[-1]
            cfg = TrainConfig(**{**tc.__dict__, "seed": seed})
            r = train(model, spec.task, cfg, run_dir / f"{cell}_seed{seed}", resume=False, progress=progress)
            value, ok = spec.score(model, spec.test_batch)
            after = gradient_flow(model, spec.test_batch)
            decay = after.decay(last=min(50, len(after.h_norm[-1])))
            out.rows.append({"cell": cell, "seed": seed, spec.metric: value, "success": bool(ok),
                             "epochs": r.epochs_run, "grad_factor_per_step": decay["per_step_factor"],
                             "grad_orders_per_50_steps": decay["orders_per_50_steps"]})
            curves[f"{cell} seed {seed}"] = [h["val_loss"] for h in r.history]
            flows_before.setdefault(cell, []).append(before)
            flows_after.setdefault(cell, []).append(after.h_norm[-1])
    (run_dir / "results.json").write_text(json.dumps(out.rows, indent=2) + "\n")
    metric = spec.metric
    summary = []
    for cell in cells:
        rows = [r for r in out.rows if r["cell"] == cell]
        summary.append([cell, float(np.median([r[metric] for r in rows])),
                        f"{sum(r['success'] for r in rows)}/{len(rows)}",
                        float(np.median([r["grad_orders_per_50_steps"] for r in rows]))])
    header = ["cell", f"median {metric}", "success", "grad decay, orders of magnitude per 50 steps"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |" for row in summary]
    out.table = run_dir / "table.md"
    out.table.write_text("\n".join(lines) + "\n")
    lc = plot_learning_curves(curves, run_dir / "learning_curves.png")
    gb = plot_gradient_flow({c: mean_aligned_at_end(v) for c, v in flows_before.items()}, run_dir / "gradient_flow_init.png",
                            "Gradient norm against distance, at initialisation")
    ga = plot_gradient_flow({c: mean_aligned_at_end(v) for c, v in flows_after.items()}, run_dir / "gradient_flow_trained.png",
                            "Gradient norm against distance, after training")
    rep = Report(f"rnnlab: {task} task, length {length}")
    rep.paragraph(f"{seeds} seed(s) per cell, hidden size {hidden_size}, {n_train} training and {n_test} test "
                  f"examples, training settings {tc.__dict__}.")
    rep.heading("Results")
    rep.table(header, summary)
    rep.table(list(out.rows[0]), [list(r.values()) for r in out.rows])
    rep.heading("Learning curves")
    rep.image(lc, "validation loss per epoch (log scale)")
    rep.heading("Gradient flow")
    rep.image(gb, "mean ||dL/dh_k|| over the test batch against the distance from the loss, untrained")
    rep.image(ga, "the same after training")
    out.report = rep.save(run_dir / "report.html")
    return out
