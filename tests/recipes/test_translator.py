"""The translation recipe end to end on a small made-up language: train, held-out files, a
checkpoint that loads, translate (greedy, beam, unknown words copied), BLEU and chrF, the CLI."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import cli
from rnnlab.data import DataError
from rnnlab.recipes import evaluate_checkpoint
from rnnlab.recipes.common import load_model
from rnnlab.recipes.translator import (attention_heatmap, score_translations, train_translator,
                                       translate)
from rnnlab.train import TrainConfig

pytest.importorskip("sacrebleu")
EN = ["cat", "dog", "house", "tree", "car", "bird", "fish", "book"]
FR = ["chat", "chien", "maison", "arbre", "voiture", "oiseau", "poisson", "livre"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("tr")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(360):                          # "the cat and the dog ." <-> "le chat et le chien ."
        a, b = rng.integers(0, len(EN), 2)
        if i % 6 == 5:                            # a name seen once: <unk> at min_freq 2
            lines.append(f"The {EN[a]} and Name{i}.\tLe {FR[a]} et Name{i}.")
        else:
            lines.append(f"The {EN[a]} and the {EN[b]}.\tLe {FR[a]} et le {FR[b]}.")
    data = d / "pairs.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = train_translator(data, d / "run", cell="gru", hidden_size=24, embedding_dim=24, batch_size=16,
                              label_smoothing=0.0, dropout=0.0, min_freq=2,
                              train_config=TrainConfig(epochs=30, lr=1e-2, seed=0), progress=False)
    return data, result


def test_training_writes_held_out_pairs_and_a_checkpoint_that_loads(run):
    data, result = run
    test = (result.run_dir / "test.tsv").read_text(encoding="utf-8").splitlines()
    valid = (result.run_dir / "valid.tsv").read_text(encoding="utf-8").splitlines()
    train_lines = set(data.read_text(encoding="utf-8").splitlines()) - set(test) - set(valid)
    held = {line.split("\t")[0].lower() for line in test + valid}
    assert test and valid and not held & {line.split("\t")[0].lower() for line in train_lines}
    model, meta = load_model(result.best_checkpoint, expect_kind="translator")
    assert meta["kind"] == "translator"
    assert translate(model, ["The cat and the dog."]) == ["Le chat et le chien."]


def test_translate_copies_unknown_words_and_beam_agrees(run):
    model, _ = load_model(run[1].best_checkpoint)
    out = translate(model, ["The dog and the cat.", "The bird and Zorglub."], beam=3)
    assert out[0] == "Le chien et le chat."
    assert out[1] == "Le oiseau et zorglub."      # <unk> -> the source word it attended to
    assert translate(model, ["The bird and Zorglub."]) == out[1:]
    assert translate(model, ["The dog and the cat."], recase=False) == ["le chien et le chat."]
    with pytest.raises(DataError, match="at least one sentence"):
        translate(model, [])


def test_evaluate_scores_bleu_and_chrf_on_the_held_out_file(run):
    _, result = run
    m = evaluate_checkpoint(result.best_checkpoint, result.run_dir / "test.tsv")
    assert {"loss", "accuracy", "bleu", "bleu_lowercase", "chrf", "sentences"} <= set(m)
    assert m["bleu_lowercase"] > 80 and m["chrf"] > 80 and m["accuracy"] > 0.95
    assert m["bleu"] < m["bleu_lowercase"]        # the names come out lower-cased
    assert evaluate_checkpoint(result.best_checkpoint, result.run_dir / "test.tsv", beam=4)["beam"] == 4


def test_scores_use_every_reference_of_a_source():
    import sacrebleu
    hyps = ["the cat sat", "a dog", "the cat sat"]
    srcs = ["s1", "s2", "s1"]
    refs = ["the cat sat down", "a dog", "the cat was sitting"]
    got = score_translations(hyps, srcs, refs)
    want = sacrebleu.corpus_bleu(["the cat sat", "a dog"], [["the cat sat down", "a dog"], ["the cat was sitting", None]])
    assert got["bleu"] == pytest.approx(want.score) and got["sentences"] == 2 and got["references"] == 2


def test_attention_heatmap(run, tmp_path):
    model, _ = load_model(run[1].best_checkpoint)
    words = attention_heatmap(model, "The cat and the dog.", tmp_path / "a.png")
    assert words == ["le", "chat", "et", "le", "chien", "."]
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_inspect_writes_translations_and_attention_into_the_html_report(run, tmp_path):
    out = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ["inspect", str(run[1].best_checkpoint), "--text", "The cat and the dog.\n<b>x</b>",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text(encoding="utf-8")
    assert "Le chat et le chien." in page and page.count("<img") == 2 and "<b>x</b>" not in page   # escaped


def test_cli_translate_and_evaluate(run, tmp_path):
    _, result = run
    r = CliRunner().invoke(cli, ["translate", str(result.best_checkpoint), "--beam", "2",
                                 "--attention-plot", str(tmp_path / "p.png")],
                           input="The bird and the fish.\n\nThe book and the car.\n")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[:2] == ["Le oiseau et le poisson.", "Le livre et le voiture."]
    assert (tmp_path / "p.png").exists()
    r = CliRunner().invoke(cli, ["evaluate", str(result.best_checkpoint), str(result.run_dir / "test.tsv")])
    assert r.exit_code == 0 and json.loads(r.output)["bleu_lowercase"] > 80


def test_convert_writes_the_encoder_and_a_decoder_step(run, tmp_path):
    pytest.importorskip("onnx")
    r = CliRunner().invoke(cli, ["convert", str(run[1].best_checkpoint), str(tmp_path / "t.onnx")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.encoder.onnx").stat().st_size > 0 and (tmp_path / "t.step.onnx").stat().st_size > 0


@pytest.mark.parametrize("args, names", [
    (["translate", "{ckpt}", "--beam", "0"], "--beam"),
    (["train-translator", "{data}", "--cell", "clockwork"], "--cell"),
    (["train-translator", "{data}", "--zoneout", "0.1"], "--zoneout"),
    (["train-translator", "{missing}"], "missing.tsv"),
    (["evaluate", "{ckpt}", "{data}", "--column", "1"], "column"),
])
def test_cli_bad_input_is_one_line(run, tmp_path, args, names):
    data, result = run
    fill = dict(ckpt=str(result.best_checkpoint), data=str(data), missing=str(tmp_path / "missing.tsv"))
    r = CliRunner().invoke(cli, [a.format(**fill) for a in args] + ["--run-dir", str(tmp_path / "r")]
                           if args[0] == "train-translator" else [a.format(**fill) for a in args])
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and names in lines[0], r.output
