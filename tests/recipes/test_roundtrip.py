"""Every configuration the trainers accept writes a checkpoint that loads again and predicts
identically: the loader's guard against hostile files must never refuse a file rnnlab wrote."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.cli import cli
from rnnlab.data import Vocab
from rnnlab.models import (CELLS, ClassifierConfig, Forecaster, ForecasterConfig, LanguageModel,
                           LanguageModelConfig, PianoRollConfig, PianoRollModel, RecurrentConfig,
                           RegressorConfig, SequenceClassifier, SequenceRegressor, Tagger, TaggerConfig)
from rnnlab.recipes import load_model
from rnnlab.recipes.classifier import ClassifierTask, Examples
from rnnlab.recipes.language_model import StreamTask
from rnnlab.recipes.series import RollTask, WindowTask
from rnnlab.recipes.tagger import TaggerTask
from rnnlab.train import TrainConfig, train

FAST = settings(max_examples=6, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@st.composite
def recurrent(draw, bidirectional=None):
    cell = draw(st.sampled_from(CELLS))
    return RecurrentConfig(cell, draw(st.integers(1, 9)), draw(st.integers(1, 3)),
                           bidirectional=draw(st.booleans()) if bidirectional is None else bidirectional)


def _roundtrip(tmp_path, model, task, batch) -> None:
    """Train one step, load the checkpoint, compare every parameter and the predictions."""
    train(model, task, TrainConfig(epochs=1, max_steps_per_epoch=1), tmp_path, resume=False, progress=False)
    loaded, meta = load_model(tmp_path / "last.safetensors")
    assert meta["kind"] == model.kind
    for (k, a), (k2, b) in zip(model.named_parameters(), loaded.named_parameters()):
        assert k == k2 and np.array_equal(a, b), k
    model.eval()
    mine, _, _ = model.evaluate_batch(batch, None)
    theirs, _, _ = loaded.evaluate_batch(batch, None)
    assert mine == theirs


@FAST
@given(rc=recurrent(bidirectional=False), emb=st.integers(1, 12), data=st.data())
def test_language_model(tmp_path_factory, rc, emb, data):
    vocab = Vocab.build(list("abcdefgh"), specials=("<unk>",))
    ids = np.random.default_rng(0).integers(0, len(vocab), 400)
    model = LanguageModel(vocab, LanguageModelConfig("char", emb, rc), rng=0)
    task = StreamTask(ids[:300], ids[300:], 4, 8)
    _roundtrip(tmp_path_factory.mktemp("lm"), model, task, task.valid_batches()[0])


@FAST
@given(rc=recurrent(), features=st.booleans(), emb=st.integers(1, 200), channels=st.integers(1, 4),
       pooling=st.sampled_from(["last", "mean", "max"]), classes=st.integers(2, 5))
def test_classifier(tmp_path_factory, rc, features, emb, channels, pooling, classes):
    rng = np.random.default_rng(1)
    labels = [str(i) for i in range(classes)]
    if features:                               # embedding_dim is unused: it must not matter
        cfg = ClassifierConfig(classes, channels, emb, rc, pooling, feature_mean=[0.0] * channels,
                               feature_std=[1.0] * channels)
        model = SequenceClassifier(None, cfg, labels, rng=0)
        seqs = [rng.standard_normal((int(rng.integers(1, 9)), channels)).astype(np.float32) for _ in range(12)]
    else:
        vocab = Vocab.build("the a cat dog sat ran".split())
        model = SequenceClassifier(vocab, ClassifierConfig(classes, 0, emb, rc, pooling), labels, rng=0)
        seqs = [rng.integers(2, len(vocab), int(rng.integers(1, 9))) for _ in range(12)]
    ex = Examples(seqs, rng.integers(0, classes, 12))
    task = ClassifierTask(model, ex, ex, 4)
    _roundtrip(tmp_path_factory.mktemp("clf"), model, task, task.valid_batches()[0])


@FAST
@given(rc=recurrent(bidirectional=True), word_dim=st.integers(1, 12), char_dim=st.integers(1, 8),
       char_hidden=st.integers(0, 6))
def test_tagger(tmp_path_factory, rc, word_dim, char_dim, char_hidden):
    sents = [("the cat sat".split(), "DET NOUN VERB".split()), ("a dog".split(), "DET NOUN".split())] * 3
    words = Vocab.build(w for ws, _ in sents for w in ws)
    chars = Vocab.build(c for ws, _ in sents for w in ws for c in w)
    tags = Vocab.build((t for _, ts in sents for t in ts), specials=())
    model = Tagger(words, chars, tags, TaggerConfig(word_dim, char_dim, char_hidden, rc), rng=0)
    task = TaggerTask(model, sents, sents, 2)
    _roundtrip(tmp_path_factory.mktemp("tag"), model, task, task.valid_batches()[0])


@FAST
@given(rc=recurrent(), window=st.integers(1, 80), horizon=st.integers(1, 7))
def test_forecaster(tmp_path_factory, rc, window, horizon):
    z = np.sin(np.arange(window + horizon + 20) / 3).astype(np.float32)
    from rnnlab.recipes.series import windows
    x, y = windows(z, window, horizon)
    model = Forecaster(ForecasterConfig(1, horizon, rc, window, horizon, 0.0, 1.0), rng=0)
    _roundtrip(tmp_path_factory.mktemp("fc"), model, WindowTask(x, y, x, y, 8), (x, y))


@FAST
@given(rc=recurrent(), inputs=st.integers(1, 5), outputs=st.integers(1, 5), keys=st.integers(1, 20))
def test_regressor_and_piano_roll(tmp_path_factory, rc, inputs, outputs, keys):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 5, inputs)).astype(np.float32)
    y = rng.standard_normal((5, outputs)).astype(np.float32)
    model = SequenceRegressor(RegressorConfig(inputs, outputs, rc), rng=0)
    _roundtrip(tmp_path_factory.mktemp("reg"), model, WindowTask(x, y, x, y, 5), (x, y))
    if rc.bidirectional:
        return                                 # the piano-roll model predicts the next step
    rolls = [(rng.random((int(rng.integers(2, 9)), keys)) < 0.3).astype(np.float32) for _ in range(6)]
    model = PianoRollModel(PianoRollConfig(keys, rc), rng=0)
    task = RollTask(rolls, rolls, 3)
    _roundtrip(tmp_path_factory.mktemp("roll"), model, task, task.valid_batches()[0])


def _ts_file(path, n=20):
    rng = np.random.default_rng(0)
    lines = ["@problemName t", "@data"]
    for i in range(n):
        chans = [",".join(f"{v:.3f}" for v in rng.standard_normal(6)) for _ in range(3)]
        lines.append(":".join(chans) + f":{i % 2}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("cmd, extra", [
    ("train-classifier", ["--cell", "rnn", "--hidden-size", "64"]),
    ("train-forecaster", ["--window", "48", "--hidden-size", "8"]),
])
def test_reported_configurations_load_again(tmp_path, cmd, extra):
    """The two commands from issue 33 whose checkpoints could not be loaded."""
    if cmd == "train-classifier":
        data = _ts_file(tmp_path / "d_TRAIN.ts")
    else:
        data = tmp_path / "s.csv"
        data.write_text("t,v\n" + "".join(f"{i},{np.sin(i / 5):.4f}\n" for i in range(200)))
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(cli, [cmd, str(data), "--run-dir", str(run), "--epochs", "1", "--quiet", *extra])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["evaluate", str(run / "best.safetensors"), str(data)])
    assert res.exit_code == 0, res.output
