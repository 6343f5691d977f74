"""Classifier recipe: the ensemble of several trained members."""

import pytest

from rnnlab.data import DataError
from rnnlab.recipes.classifier import evaluate_classifier, evaluate_ensemble, train_classifier
from rnnlab.recipes.common import load_model
from rnnlab.train import TrainConfig


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
