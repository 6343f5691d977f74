"""Classifier recipe: the ensemble of several trained members."""

import json

import numpy as np
import pytest

from rnnlab.data import DataError
from rnnlab.recipes.classifier import evaluate_classifier, evaluate_ensemble, train_classifier
from rnnlab.recipes.common import load_model
from rnnlab.train import TrainConfig, load_checkpoint


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    data = d / "s.txt"
    data.write_text("".join(f"{i % 2} {'good fine' if i % 2 else 'bad awful'} film {'x' * (i % 3)}\n"
                            for i in range(60)))
    models = []
    for seed in (0, 1):
        r = train_classifier(data, None, d / f"run{seed}", hidden_size=6, embedding_dim=5, embedding_init_std=0.1,
                             word_dropout=0.1, train_config=TrainConfig(epochs=10, lr=3e-2, seed=seed),
                             progress=False)
        models.append(load_model(r.best_checkpoint)[0])
    return models, data


def test_ensemble_scores_members_and_their_average(members):
    models, data = members
    res = evaluate_ensemble(models, data)
    assert res["members"] == [pytest.approx(evaluate_classifier(m, data)["accuracy"]) for m in models]
    assert res["accuracy"] > 0.9                                 # an easy task
    assert evaluate_ensemble(models[:1], data)["accuracy"] == pytest.approx(res["members"][0])


def test_ensemble_errors(members):
    models, data = members
    with pytest.raises(DataError, match="at least one"):
        evaluate_ensemble([], data)
    m = models[1]
    saved = m.labels
    m.labels = ["neg", "pos"]
    try:
        with pytest.raises(DataError, match="disagree"):
            evaluate_ensemble(models, data)
    finally:
        m.labels = saved


def sentiment_file(path, n=60):
    words = [["good", "fine", "great"], ["bad", "awful", "dull"]]
    path.write_text("".join(f"{i % 2} the {words[i % 2][i % 3]} film {'was ' * (i % 3)}{words[i % 2][(i + 1) % 3]}\n"
                            for i in range(n)))
    return path


def pretrained(data, run_dir, **kw):
    return train_classifier(data, None, run_dir, hidden_size=6, embedding_dim=5, embedding_init_std=0.1,
                            bidirectional=True, pooling="max", pretrain_epochs=3,
                            train_config=TrainConfig(epochs=2, lr=3e-2, seed=4, checkpoint_every=2),
                            progress=False, **kw)


def test_pretraining_trains_the_encoder_as_a_bidirectional_lm_first(tmp_path, monkeypatch):
    import rnnlab.recipes.classifier as recipe
    data = sentiment_file(tmp_path / "s.txt")
    real, start = recipe.train, {}

    def spy(model, *args, **kw):                          # the classifier's weights as its phase starts
        if model.kind == "sequence_classifier":
            start.update({k: a.copy() for k, a in model.named_parameters()})
        return real(model, *args, **kw)

    monkeypatch.setattr(recipe, "train", spy)
    r = pretrained(data, tmp_path / "run")
    lm_log = [json.loads(x) for x in (tmp_path / "run/pretrain/metrics.jsonl").read_text().splitlines()]
    assert len(lm_log) == 3 and lm_log[-1]["val_loss"] < lm_log[0]["val_loss"]   # it learns the text
    lm, meta = load_checkpoint(tmp_path / "run/pretrain/last.safetensors")
    assert meta["kind"] == "bidirectional_lm" and "model.head_forward.weight" in lm
    encoder = [k for k in start if not k.startswith("head")]
    assert encoder and all(np.array_equal(start[k], lm[f"model.{k}"]) for k in encoder)
    assert r.epochs_run == 2


class Killed(Exception):
    pass


@pytest.mark.parametrize("die_in", ["bidirectional_lm", "sequence_classifier"])
def test_a_run_killed_in_either_phase_resumes_exactly(tmp_path, monkeypatch, die_in):
    from rnnlab.models.bilm import BidirectionalLM
    from rnnlab.models.classifier import SequenceClassifier
    data = sentiment_file(tmp_path / "s.txt")
    cls = {"bidirectional_lm": BidirectionalLM, "sequence_classifier": SequenceClassifier}[die_in]
    original, calls = cls.forward_backward, {"n": 0, "die_at": None}

    def counted(self, batch, carry=None):
        calls["n"] += 1
        if calls["n"] == calls["die_at"]:                 # the process dies in the phase's 2nd epoch
            raise Killed
        return original(self, batch, carry)

    monkeypatch.setattr(cls, "forward_backward", counted)
    full = load_model(pretrained(data, tmp_path / "full").last_checkpoint)[0]
    steps, calls["n"], calls["die_at"] = calls["n"], 0, 3
    with pytest.raises(Killed):
        pretrained(data, tmp_path / "resumed")
    calls["n"], calls["die_at"] = 0, None
    resumed = load_model(pretrained(data, tmp_path / "resumed").last_checkpoint)[0]
    assert calls["n"] == steps - 2                        # it went on from the end of the 1st epoch
    for (k, a), (_, b) in zip(full.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_pretraining_errors(tmp_path):
    data = sentiment_file(tmp_path / "s.txt")
    with pytest.raises(DataError, match="pretrain_epochs: pretraining needs a bidirectional classifier"):
        train_classifier(data, None, tmp_path / "r", hidden_size=4, pretrain_epochs=1, progress=False)
    with pytest.raises(ValueError, match="pretrain_epochs: expected a whole number >= 0, got -1"):
        train_classifier(data, None, tmp_path / "r", bidirectional=True, pretrain_epochs=-1, progress=False)
