"""The trainer: checkpoints, exact resume after a kill, early stopping, the metrics log."""

import json

import numpy as np
import pytest

from rnnlab.data import Vocab
from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig
from rnnlab.recipes.language_model import StreamTask
from rnnlab.train import CheckpointError, TrainConfig, load_checkpoint, train
from rnnlab.errors import RnnlabError


def make(seed=0):
    vocab = Vocab(list("abcdefghij"))
    cfg = LanguageModelConfig("char", 6, RecurrentConfig("lstm", 12, 2, dropout=0.1), dropout=0.1)
    rng = np.random.default_rng(5)
    ids = (np.arange(3000) * 7 + rng.integers(0, 2, 3000)) % 10   # learnable sequence
    return LanguageModel(vocab, cfg, rng=seed), StreamTask(ids[:2500], ids[2500:], 4, 10)


CFG = TrainConfig(epochs=3, lr=0.01, checkpoint_every=7, max_steps_per_epoch=20, seed=3,
                  schedule="step", schedule_args={"gamma": 0.5})


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_weights_and_log(tmp_path):
    model, task = make()
    full = train(model, task, CFG, tmp_path / "full", progress=False)
    ref = {k: a.copy() for k, a in model.named_parameters()}

    model2, task2 = make()
    calls = {"n": 0}
    original = model2.forward_backward

    def dying(batch, carry=None):                         # the process dies mid-epoch 2
        calls["n"] += 1
        if calls["n"] == 31:
            raise Killed
        return original(batch, carry)

    model2.forward_backward = dying
    with pytest.raises(Killed):
        train(model2, task2, CFG, tmp_path / "resumed", progress=False)
    model3, task3 = make(seed=99)                         # a new process: other initial weights
    resumed = train(model3, task3, CFG, tmp_path / "resumed", progress=False)
    for k, a in model3.named_parameters():
        np.testing.assert_array_equal(a, ref[k], err_msg=k)
    assert resumed.best_val_loss == full.best_val_loss
    lines = lambda p: [json.loads(x) for x in p.read_text().splitlines()]  # noqa: E731
    a, b = lines(full.metrics_log), lines(resumed.metrics_log)
    assert [r["val_loss"] for r in a] == [r["val_loss"] for r in b] and len(a) == 3
    assert [r["lr"] for r in a] == [0.01, 0.005, 0.0025]     # the rate each epoch ran at


def test_a_time_budget_stops_mid_epoch_and_the_next_call_resumes_exactly(tmp_path):
    cfg = dict(epochs=2, lr=0.01, max_steps_per_epoch=6, seed=3)
    model, task = make()
    full = train(model, task, TrainConfig(**cfg), tmp_path / "full", progress=False)
    calls, r = 0, None
    while r is None or r.stopped:                         # each call: one step past the budget
        r = train(*make(seed=0 if calls == 0 else 99), TrainConfig(**cfg, max_minutes=1e-9), tmp_path / "budget",
                  progress=False)
        calls += 1
        assert calls < 20
    assert calls == 13 and r.stopped is None and r.epochs_run == 2   # 12 steps, then the last epoch end
    last = load_checkpoint(r.last_checkpoint)[0]
    for k, a in model.named_parameters():
        np.testing.assert_array_equal(last[f"model.{k}"], a, err_msg=k)
    assert [h["val_loss"] for h in r.history] == [h["val_loss"] for h in full.history]
    with pytest.raises(Exception, match="max_minutes"):
        TrainConfig(max_minutes=0)


def test_training_lowers_the_loss_and_writes_best_and_last(tmp_path):
    model, task = make()
    r = train(model, task, TrainConfig(epochs=3, lr=0.02, max_steps_per_epoch=40), tmp_path, progress=False)
    losses = [h["val_loss"] for h in r.history]
    assert losses[-1] < losses[0] < np.log(10)
    arrays, meta = load_checkpoint(r.best_checkpoint)
    assert meta["kind"] == "language_model" and "model.rnn.weight_hh_l1" in arrays
    assert r.last_checkpoint.exists() and not list(tmp_path.glob("*.tmp"))


def test_early_stopping(tmp_path):
    model, task = make()
    cfg = TrainConfig(epochs=10, lr=1e-9, patience=1, max_steps_per_epoch=3, optimizer="sgd")
    r = train(model, task, cfg, tmp_path, progress=False)
    assert r.epochs_run < 10


def test_raising_the_epochs_extends_a_finished_run_exactly(tmp_path):
    model, task = make()
    train(model, task, TrainConfig(epochs=1, max_steps_per_epoch=5), tmp_path / "a", progress=False)
    extended = train(*make(seed=7), TrainConfig(epochs=2, max_steps_per_epoch=5), tmp_path / "a", progress=False)
    model2, task2 = make()
    direct = train(model2, task2, TrainConfig(epochs=2, max_steps_per_epoch=5), tmp_path / "b", progress=False)
    assert extended.epochs_run == 2 and extended.best_val_loss == direct.best_val_loss
    assert len(extended.metrics_log.read_text().splitlines()) == 2


def test_raising_the_patience_continues_an_early_stopped_run(tmp_path):
    cfg = dict(epochs=6, lr=1e-9, max_steps_per_epoch=2, optimizer="sgd")
    r = train(*make(), TrainConfig(patience=0, **cfg), tmp_path, progress=False)
    assert r.epochs_run < 6
    r2 = train(*make(), TrainConfig(patience=None, **cfg), tmp_path, progress=False)
    assert r2.epochs_run == 6


def test_resume_refuses_other_settings_or_model_naming_what_changed(tmp_path):
    model, task = make()
    train(model, task, TrainConfig(epochs=1, max_steps_per_epoch=2), tmp_path, progress=False)
    with pytest.raises(RnnlabError, match=r"lr: 0.002 -> 0.01.*--no-resume"):
        train(*make(), TrainConfig(epochs=2, lr=0.01, max_steps_per_epoch=2), tmp_path, progress=False)
    vocab = Vocab(list("abcdefghij"))
    other = LanguageModel(vocab, LanguageModelConfig("char", 6, RecurrentConfig("lstm", 13, 2, dropout=0.1),
                                                     dropout=0.1), rng=0)
    with pytest.raises(RnnlabError, match=r"model.rnn.hidden_size: 12 -> 13.*--no-resume"):
        train(other, make()[1], TrainConfig(epochs=2, max_steps_per_epoch=2), tmp_path, progress=False)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("lr", 0.0), ("lr", float("nan")), ("clip", -1.0),
                                          ("patience", -1), ("checkpoint_every", -2),
                                          ("schedule_args", {"foo": 1})])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(RnnlabError, match=field):
        TrainConfig(**{field: value, **({"schedule": "step"} if field == "schedule_args" else {})})


def test_corrupted_checkpoint_is_a_clear_error(tmp_path):
    model, task = make()
    r = train(model, task, TrainConfig(epochs=1, max_steps_per_epoch=2), tmp_path, progress=False)
    data = r.last_checkpoint.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_checkpoint(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_checkpoint(tmp_path / "junk.safetensors")


def test_files_honour_the_umask_and_stale_temporaries_are_removed(tmp_path):
    import os
    from rnnlab.train.checkpoint import atomic_write_bytes
    old = os.umask(0o022)
    try:
        (tmp_path / ".last.safetensors.dead.tmp").write_bytes(b"half a checkpoint")
        r = train(*make(), TrainConfig(epochs=1, max_steps_per_epoch=2), tmp_path, progress=False)
        atomic_write_bytes(tmp_path / "x.onnx", b"1")
        for p in (r.last_checkpoint, r.best_checkpoint, tmp_path / "x.onnx"):
            assert p.stat().st_mode & 0o777 == 0o644, p
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "y.onnx", b"1")
        assert (tmp_path / "y.onnx").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".*.tmp"))


def test_run_dir_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RnnlabError, match="run_dir: expected a directory, but .* is a file"):
        train(*make(), TrainConfig(epochs=1, max_steps_per_epoch=1), tmp_path / "f", progress=False)


class Scored:
    """A task whose whole-set validation metric `f1` follows a script, one value an epoch."""

    def __init__(self, task, scores):
        self.task, self.scores, self.carries_state = task, list(scores), task.carries_state

    def train_batches(self, rng):
        return self.task.train_batches(rng)

    def valid_batches(self):
        return self.task.valid_batches()

    def valid_metrics(self, model):
        assert not model.training                          # scored in evaluation mode
        return {"f1": self.scores.pop(0)}


@pytest.mark.parametrize("mode, best_epoch", [("auto", 2), ("max", 2), ("min", 1)])
def test_the_monitored_metric_picks_the_best_checkpoint_and_counts_patience(tmp_path, mode, best_epoch):
    model, task = make()
    weights = {}
    on_epoch = lambda rec: weights.__setitem__(rec["epoch"], {k: a.copy() for k, a in model.named_parameters()})  # noqa: E731
    cfg = TrainConfig(epochs=6, max_steps_per_epoch=3, patience=1, monitor="f1", mode=mode)
    r = train(model, Scored(task, [0.1, 0.5, 0.3, 0.2, 0.9, 0.9]), cfg, tmp_path, progress=False, on_epoch=on_epoch)
    assert r.best_epoch == best_epoch and r.best_score == [0.1, 0.5][best_epoch - 1]
    assert r.epochs_run == best_epoch + 2                   # two epochs without a better score, patience 1
    assert [h["val_f1"] for h in r.history] == [0.1, 0.5, 0.3, 0.2][:r.epochs_run]
    assert r.best_val_loss == r.history[best_epoch - 1]["val_loss"]
    best = load_checkpoint(r.best_checkpoint)[0]
    for k, a in weights[best_epoch].items():
        np.testing.assert_array_equal(best[f"model.{k}"], a, err_msg=k)


def test_an_unknown_monitor_or_mode_is_one_clear_line(tmp_path):
    with pytest.raises(RnnlabError, match=r"monitor: expected one of the validation metrics \['accuracy', 'f1', 'loss'\], got 'bleu'"):
        train(*make()[:1], Scored(make()[1], [0.1]), TrainConfig(epochs=1, max_steps_per_epoch=1, monitor="bleu"),
              tmp_path, progress=False)
    with pytest.raises(RnnlabError, match="mode: expected 'auto', 'min' or 'max', got 'up'"):
        TrainConfig(mode="up")
    assert TrainConfig(monitor="entity_f1").maximise and not TrainConfig(monitor="loss").maximise


def test_a_run_written_before_monitor_existed_resumes(tmp_path):
    from rnnlab.train import save_checkpoint
    r = train(*make(), TrainConfig(epochs=2, max_steps_per_epoch=2), tmp_path, progress=False)
    arrays, meta = load_checkpoint(r.last_checkpoint)
    for k in ("monitor", "mode"):
        del meta["train"][k]
    for k in ("best_score", "best_epoch"):
        del meta["trainer"][k]
    save_checkpoint(r.last_checkpoint, arrays, meta)
    r2 = train(*make(), TrainConfig(epochs=3, max_steps_per_epoch=2), tmp_path, progress=False)
    lowest = min(r2.history, key=lambda h: h["val_loss"])
    assert r2.epochs_run == 3 and r2.best_epoch == lowest["epoch"] and r2.best_score == lowest["val_loss"]


def test_a_run_written_before_a_config_field_existed_resumes_and_a_changed_one_is_still_refused(tmp_path):
    """A checkpoint whose model config lacks fields added since (they take their defaults when
    it loads) describes the same model; a field at another value than its default does not."""
    from rnnlab.train import save_checkpoint
    r = train(*make(), TrainConfig(epochs=1, max_steps_per_epoch=2), tmp_path, progress=False)
    arrays, meta = load_checkpoint(r.last_checkpoint)
    for k in ("eos", "init_range"):                     # fields added after the first releases
        del meta["config"]["model"][k]
    del meta["config"]["model"]["rnn"]["zoneout"]
    save_checkpoint(r.last_checkpoint, arrays, meta)
    assert train(*make(), TrainConfig(epochs=2, max_steps_per_epoch=2), tmp_path, progress=False).epochs_run == 2
    meta["config"]["model"]["dropout"] = 0.3            # not the model being trained
    save_checkpoint(r.last_checkpoint, arrays, meta)
    with pytest.raises(RnnlabError, match=r"model.dropout: 0.3 -> 0.1.*--no-resume"):
        train(*make(), TrainConfig(epochs=3, max_steps_per_epoch=2), tmp_path, progress=False)
    meta["config"]["model"] = {"level": "char", "embedding_dim": 10 ** 9}   # would allocate far more than stored
    save_checkpoint(r.last_checkpoint, arrays, meta)
    with pytest.raises(RnnlabError, match=r"this run's model differs"):
        train(*make(), TrainConfig(epochs=3, max_steps_per_epoch=2), tmp_path, progress=False)


def test_evaluate_leaves_the_model_in_the_mode_it_found():
    from rnnlab.train import evaluate
    model, task = make()
    for mode in (False, True):
        model.train(mode)
        evaluate(model, task.valid_batches()[:2], True)
        assert model.training is mode
