"""The recipes from Python: a bad argument or file is an RnnlabError naming it, never a
ZeroDivisionError or a NumPy error from deep inside."""

import pytest

from rnnlab.errors import RnnlabError
from rnnlab.recipes import evaluate_checkpoint, load_model
from rnnlab.recipes.classifier import train_classifier
from rnnlab.recipes.language_model import train_language_model
from rnnlab.recipes.series import train_forecaster, train_music
from rnnlab.recipes.tagger import train_tagger
from rnnlab.train import TrainConfig

TC = TrainConfig(epochs=1, max_steps_per_epoch=1)


@pytest.fixture()
def d(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00abc" * 10)
    (tmp_path / "t.txt").write_text("the cat sat on the mat\n" * 50)
    (tmp_path / "dir").mkdir()
    (tmp_path / "c.csv").write_text("a\n" + "".join(f"{i}\n" for i in range(40)))
    (tmp_path / "j.json").write_text('{"train": [[[60, 200]]], "valid": [], "test": []}')
    return tmp_path


CASES = [
    (lambda d: train_language_model(d / "bin.txt", d / "r", train_config=TC, progress=False), "not UTF-8"),
    (lambda d: train_language_model(d / "dir", d / "r", train_config=TC, progress=False), "got a directory"),
    (lambda d: train_language_model(d / "t.txt", d / "r", level="sentence", progress=False), "level"),
    (lambda d: train_language_model(d / "t.txt", d / "r", batch_size=0, progress=False), "batch_size"),
    (lambda d: train_language_model(d / "t.txt", d / "r", bptt=0, progress=False), "bptt"),
    (lambda d: train_language_model(d / "t.txt", d / "r", valid_fraction=1.5, progress=False), "valid_fraction"),
    (lambda d: train_language_model(d / "t.txt", d / "r", hidden_size=0, progress=False), "hidden_size"),
    (lambda d: train_forecaster(d / "c.csv", d / "r", batch_size=0, progress=False), "batch_size"),
    (lambda d: train_forecaster(d / "c.csv", d / "r", window=0, progress=False), "window"),
    (lambda d: train_forecaster(d / "c.csv", d / "r", column="nope", progress=False), "column"),
    (lambda d: train_music(d / "j.json", d / "r", batch_size=0, progress=False), "batch_size"),
    (lambda d: train_music(d / "j.json", d / "r", progress=False), "pitch 200"),
    (lambda d: train_classifier(d / "t.txt", None, d / "r", batch_size=0, progress=False), "batch_size"),
    (lambda d: train_classifier(d / "t.txt", None, d / "r", progress=False), "<label> <tokens"),
    (lambda d: train_tagger(d / "t.txt", d / "t.txt", d / "r", batch_size=0, progress=False), "batch_size"),
    (lambda d: train_tagger(d / "t.txt", d / "t.txt", d / "r", progress=False), "tab-separated"),
    (lambda d: load_model(d / "dir"), "no such checkpoint"),
    (lambda d: evaluate_checkpoint(d / "t.txt", d / "t.txt"), "not a readable safetensors"),
]


@pytest.mark.parametrize("call, pattern", CASES)
def test_bad_argument_is_an_rnnlab_error(d, call, pattern):
    with pytest.raises(RnnlabError, match=pattern):
        call(d)
