"""Word-level language models: sentence ends, a separate validation file, Zaremba's init."""

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import cli
from rnnlab.recipes import load_model
from rnnlab.recipes.language_model import evaluate_language_model, sample_text, tokenize, train_language_model
from rnnlab.train import TrainConfig


def test_word_tokens_keep_line_ends():
    assert tokenize("a b\n\nc\n", "word", eos=True) == ["a", "b", "<eos>", "c", "<eos>"]
    assert tokenize("a b\nc", "word") == ["a", "b", "c"]
    assert tokenize("ab\n", "char") == ["a", "b", "\n"]


@pytest.fixture()
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = "the cat dog sat ran on a mat".split()
    lines = [" ".join(rng.choice(words, int(rng.integers(3, 8)))) for _ in range(400)]
    (tmp_path / "train.txt").write_text("\n".join(lines[:300]) + "\n")
    (tmp_path / "valid.txt").write_text("\n".join(lines[300:]) + "\n")
    return tmp_path


def test_word_model_with_valid_file_and_init_range(corpus):
    r = train_language_model(corpus / "train.txt", corpus / "run", level="word", valid_path=corpus / "valid.txt",
                             init_range=0.1, hidden_size=16, num_layers=1, embedding_dim=8, bptt=10,
                             batch_size=4, train_config=TrainConfig(epochs=1, lr=0.01), progress=False)
    model, _ = load_model(r.best_checkpoint)
    assert model.cfg.eos and "<eos>" in model.vocab.itos and model.cfg.init_range == 0.1
    n_valid = len(tokenize((corpus / "valid.txt").read_text(), "word", eos=True))
    metrics = evaluate_language_model(r.best_checkpoint, corpus / "valid.txt")
    assert metrics["tokens"] == n_valid
    assert abs(metrics["loss"] - r.best_val_loss) < 0.05          # validated on that very file
    assert "<eos>" not in sample_text(r.best_checkpoint, "the", 30, seed=0)


def test_init_range_draws_every_parameter_uniformly(corpus):
    from rnnlab.data import Vocab
    from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig
    m = LanguageModel(Vocab(list("abcdef")), LanguageModelConfig("word", 30, RecurrentConfig("lstm", 40),
                                                                 init_range=0.05), rng=0)
    for k, a in m.named_parameters():
        assert np.abs(a).max() <= 0.05 and (a.size < 50 or np.abs(a).max() > 0.045), k


def test_cli_valid_and_init_range(corpus):
    res = CliRunner().invoke(cli, ["train-lm", str(corpus / "train.txt"), "--valid", str(corpus / "valid.txt"),
                                   "--level", "word", "--init-range", "0.1", "--epochs", "1", "--hidden-size", "8",
                                   "--num-layers", "1", "--bptt", "10", "--batch-size", "4", "--quiet",
                                   "--run-dir", str(corpus / "cli"), "--sample-length", "5"])
    assert res.exit_code == 0, res.output
    assert "best validation: val_loss" in res.output and "val_accuracy" in res.output
