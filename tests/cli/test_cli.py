"""The CLI through click's test runner, on tiny data."""

import json

import pytest
from click.testing import CliRunner

from rnnlab.cli import cli


@pytest.fixture()
def text_file(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("the cat sat on the mat. " * 200)
    return p


def test_train_lm_sample_describe(tmp_path, text_file):
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(cli, ["train-lm", str(text_file), "--run-dir", str(run), "--epochs", "1",
                              "--hidden-size", "16", "--num-layers", "1", "--bptt", "16",
                              "--batch-size", "4", "--quiet", "--sample-length", "20"])
    assert res.exit_code == 0, res.output
    assert f"best checkpoint: {run / 'best.safetensors'}" in res.output
    assert "metrics log:" in res.output and (run / "metrics.jsonl").exists()
    res = runner.invoke(cli, ["sample", str(run / "best.safetensors"), "--prime", "the ", "--length", "10", "--seed", "1"])
    assert res.exit_code == 0 and res.output.startswith("the ")
    res = runner.invoke(cli, ["describe", str(run / "last.safetensors")])
    info = json.loads(res.output)
    assert info["kind"] == "language_model" and info["epochs_done"] == 1


def test_cli_errors_are_one_clear_line(tmp_path, text_file):
    runner = CliRunner()
    (tmp_path / "empty.txt").write_text("")
    res = runner.invoke(cli, ["train-lm", str(tmp_path / "empty.txt"), "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "the file is empty" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["sample", str(text_file)])
    assert res.exit_code == 2 and "not a readable safetensors file" in res.output
    res = runner.invoke(cli, ["train-lm", str(text_file), "--cell", "transformer"])
    assert res.exit_code == 2 and "transformer" in res.output


def test_classifier_with_pretraining(tmp_path):
    sst = tmp_path / "s.txt"
    sst.write_text("".join(f"{i % 2} the {'good fine' if i % 2 else 'bad awful'} film\n" for i in range(40)))
    res = CliRunner().invoke(cli, ["train-classifier", str(sst), "--run-dir", str(tmp_path / "c"), "--epochs", "1",
                                   "--hidden-size", "4", "--bidirectional", "--pretrain-epochs", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "c/pretrain/metrics.jsonl").read_text().splitlines()) == 2
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "c/pretrain/last.safetensors"), str(sst)])
    assert res.exit_code == 2 and "the pretraining stage of a classifier run" in res.output
    res = CliRunner().invoke(cli, ["train-classifier", str(sst), "--run-dir", str(tmp_path / "d"),
                                   "--pretrain-epochs", "1", "--quiet"])
    assert res.exit_code == 2 and "pretraining needs a bidirectional classifier" in res.output


def test_classifier_tagger_forecaster_music_commands(tmp_path):
    runner = CliRunner()
    common = ["--epochs", "1", "--hidden-size", "8", "--quiet"]
    sst = tmp_path / "s.txt"
    sst.write_text("".join(f"{i % 2} {'good fine' if i % 2 else 'bad awful'} film\n" for i in range(40)))
    res = runner.invoke(cli, ["train-classifier", str(sst), "--run-dir", str(tmp_path / "c"), *common])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["predict", str(tmp_path / "c/best.safetensors")], input="good film\nbad film\n")
    assert res.exit_code == 0 and len(res.output.split()) == 2
    unseen = tmp_path / "u.txt"
    unseen.write_text("7 good film\n")
    res = runner.invoke(cli, ["evaluate", str(tmp_path / "c/best.safetensors"), str(unseen)])
    assert res.exit_code == 2 and "labels ['7'] were not seen in training" in res.output

    conllu = tmp_path / "t.conllu"
    conllu.write_text("1\tthe\t_\tDET\t_\t_\t_\t_\t_\t_\n2\tdog\t_\tNOUN\t_\t_\t_\t_\t_\t_\n\n" * 10)
    res = runner.invoke(cli, ["train-tagger", str(conllu), str(conllu), "--run-dir", str(tmp_path / "t"), *common])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["predict", str(tmp_path / "t/best.safetensors")], input="the cat\n")
    assert res.exit_code == 0 and res.output.strip().startswith("the/") and "cat/" in res.output
    res = runner.invoke(cli, ["evaluate", str(tmp_path / "t/best.safetensors"), str(conllu)])
    assert res.exit_code == 0 and "accuracy" in res.output

    csv = tmp_path / "s.csv"
    csv.write_text("t,v\n" + "".join(f"{i},{(i % 12) * 1.5}\n" for i in range(120)))
    res = runner.invoke(cli, ["train-forecaster", str(csv), "--window", "12", "--horizon", "2",
                              "--run-dir", str(tmp_path / "f"), *common])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["predict", str(tmp_path / "f/best.safetensors"), str(csv)])
    assert res.exit_code == 0 and len(json.loads(res.output)) == 2

    jsb = tmp_path / "j.json"
    piece = [[60, 64, 67], [62], [], [65, 69]] * 3
    jsb.write_text(json.dumps({"train": [piece] * 4, "valid": [piece], "test": [piece]}))
    res = runner.invoke(cli, ["train-music", str(jsb), "--run-dir", str(tmp_path / "m"), *common])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["evaluate", str(tmp_path / "m/best.safetensors"), str(jsb)])
    assert res.exit_code == 0 and "loss" in res.output
    res = runner.invoke(cli, ["sample", str(tmp_path / "m/best.safetensors")])
    assert res.exit_code == 2 and "a checkpoint of a piano_roll, expected a language_model" in res.output


def test_inspect_command_writes_an_escaped_report(tmp_path, text_file):
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(cli, ["train-lm", str(text_file), "--run-dir", str(run), "--epochs", "1",
                              "--hidden-size", "8", "--num-layers", "1", "--bptt", "16", "--batch-size", "4",
                              "--quiet", "--sample-length", "5"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "i.html"
    res = runner.invoke(cli, ["inspect", str(run / "best.safetensors"), "--text",
                              'the "cat" sat <script>alert(1)</script> on the "mat"', "--signal", "quotes",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output                  # unseen characters read as <unk>
    page = out.read_text()
    assert "l0 cell: unit" in res.output and page.count("<figure>") >= 3
    assert "<script>" not in page and "&lt;" in page
    res = runner.invoke(cli, ["inspect", str(run / "best.safetensors"), "--text", "xy", "--signal", "nope"])
    assert res.exit_code == 2 and "signal: expected quotes, line_position" in res.output
    res = runner.invoke(cli, ["inspect", str(run / "best.safetensors"), "--text", "x"])
    assert res.exit_code == 2 and "text: expected at least two characters" in res.output


def test_convert_command(tmp_path, text_file):
    torch = pytest.importorskip("torch")
    runner = CliRunner()
    torch.manual_seed(0)
    torch.save(torch.nn.LSTM(3, 4, 2, bidirectional=True).state_dict(), tmp_path / "w.pt")
    res = runner.invoke(cli, ["convert", str(tmp_path / "w.pt"), str(tmp_path / "w.onnx")])
    assert res.exit_code == 0 and "ONNX graph of a LSTM (2 layer(s))" in res.output, res.output
    res = runner.invoke(cli, ["convert", str(tmp_path / "w.onnx"), str(tmp_path / "back.safetensors")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["convert", str(tmp_path / "back.safetensors"), str(tmp_path / "back.pt")])
    assert res.exit_code == 0, res.output
    a, b = torch.load(tmp_path / "w.pt", weights_only=True), torch.load(tmp_path / "back.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    run = tmp_path / "run"
    res = runner.invoke(cli, ["train-lm", str(text_file), "--run-dir", str(run), "--epochs", "1", "--hidden-size", "8",
                              "--num-layers", "1", "--bptt", "16", "--batch-size", "4", "--quiet", "--sample-length", "5"])
    res = runner.invoke(cli, ["convert", str(run / "best.safetensors"), str(tmp_path / "lm.onnx")])
    assert res.exit_code == 0 and "ONNX graph of the language_model" in res.output, res.output
    res = runner.invoke(cli, ["convert", str(text_file), str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "expected a .safetensors, .pt or .pth file" in res.output


@pytest.mark.parametrize("cell", ["lstm_ln", "gru_ln", "rnn", "clockwork", "dg_lstm"])
def test_train_lm_with_layer_norm_cells_and_regularisers(tmp_path, text_file, cell):
    runner = CliRunner()
    run = tmp_path / "run"
    extra = ["--recurrent-dropout", "0.2"]
    res = runner.invoke(cli, ["train-lm", str(text_file), "--run-dir", str(run), "--epochs", "1", "--cell", cell,
                              "--hidden-size", "8", "--num-layers", "2", "--bptt", "16", "--batch-size", "4",
                              "--zoneout", "0.1", "--input-dropout", "0.1", *extra, "--quiet", "--sample-length", "5"])
    assert res.exit_code == 0, res.output
    info = json.loads(runner.invoke(cli, ["describe", str(run / "best.safetensors")]).output)
    rnn = info["config"]["model"]["rnn"]
    assert (rnn["cell"], rnn["zoneout"], rnn["input_dropout"]) == (cell, 0.1, 0.1)
    res = runner.invoke(cli, ["train-lm", str(text_file), "--run-dir", str(tmp_path / "g"), "--cell", cell,
                              "--zoneout", "1.0", "--quiet"])
    assert res.exit_code == 2 and "--zoneout" in res.output and "1.0 is not in the range" in res.output


def test_predict_reads_a_conllu_file_as_sentences_and_describe_counts_vocabularies(tmp_path):
    runner = CliRunner()
    conllu = tmp_path / "t.conllu"
    conllu.write_text("# sent_id = 1\n# text = the dog\n1\tthe\t_\tDET\t_\t_\t_\t_\t_\t_\n"
                      "2\tdog\t_\tNOUN\t_\t_\t_\t_\t_\t_\n\n" * 10)
    res = runner.invoke(cli, ["train-tagger", str(conllu), str(conllu), "--run-dir", str(tmp_path / "t"),
                              "--epochs", "1", "--hidden-size", "4", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "best validation: val_loss" in res.output and "val_accuracy" in res.output
    res = runner.invoke(cli, ["predict", str(tmp_path / "t/best.safetensors"), str(conllu)])
    assert res.exit_code == 0 and len(res.output.splitlines()) == 10 and "#" not in res.output
    info = json.loads(runner.invoke(cli, ["describe", str(tmp_path / "t/best.safetensors")]).output)
    assert info["vocab_sizes"]["words"] == 4 and "words" not in info["config"]
    assert info["config"]["tags"] == ["DET", "NOUN"]


def test_diagnostics_write_under_runs_like_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["gradient-flow", "--cells", "rnn", "--length", "5", "--hidden-size", "4"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs/gradient-flow/gradient_flow.png").exists()
    assert not (tmp_path / "gradient_flow.png").exists()


def test_a_full_disk_is_one_line_and_the_last_checkpoint_survives(tmp_path, text_file, monkeypatch):
    import errno

    import rnnlab.train.checkpoint as ck
    from rnnlab.recipes import load_model
    args = ["train-lm", str(text_file), "--run-dir", str(tmp_path / "r"), "--hidden-size", "8", "--num-layers",
            "1", "--bptt", "8", "--quiet", "--sample-length", "0", "--max-steps-per-epoch", "2"]
    assert CliRunner().invoke(cli, args + ["--epochs", "1"]).exit_code == 0

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(ck.os, "fsync", full)
    res = CliRunner().invoke(cli, args + ["--epochs", "2"])
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert res.exit_code == 1 and lines == ["Error: No space left on device"], res.output
    monkeypatch.undo()
    _, meta = load_model(tmp_path / "r/last.safetensors")
    assert meta["trainer"]["epoch"] == 1 and not list((tmp_path / "r").glob(".*.tmp"))


def test_help_shows_defaults_a_user_can_read_and_the_classifier_starts_small(tmp_path):
    res = CliRunner().invoke(cli, ["sample", "--help"])
    assert "[default: (a newline)]" in " ".join(res.output.split())
    sst = tmp_path / "s.txt"
    sst.write_text("".join(f"{i % 2} a {'good' if i % 2 else 'bad'} film\n" for i in range(20)))
    res = CliRunner().invoke(cli, ["train-classifier", str(sst), "--run-dir", str(tmp_path / "c"), "--epochs", "1",
                                   "--hidden-size", "4", "--quiet"])
    assert res.exit_code == 0, res.output
    info = json.loads(CliRunner().invoke(cli, ["describe", str(tmp_path / "c/best.safetensors")]).output)
    assert info["config"]["model"]["embedding_init_std"] == 0.05


def test_ner_and_segmentation_commands(tmp_path):
    runner = CliRunner()
    common = ["--epochs", "1", "--hidden-size", "8", "--quiet"]
    ner = tmp_path / "n.conll"
    ner.write_text("Ann\tB-PER\nlives\tO\nin\tO\nParis\tB-LOC\n\t\n" * 10)
    res = runner.invoke(cli, ["train-tagger", str(ner), str(ner), "--scheme", "iob2", "--crf", "--monitor",
                              "entity_f1", "--run-dir", str(tmp_path / "n"), *common])
    assert res.exit_code == 0 and "val_entity_f1" in res.output, res.output
    res = runner.invoke(cli, ["train-tagger", str(ner), str(ner), "--scheme", "iob2", "--monitor", "bleu",
                              "--run-dir", str(tmp_path / "m"), *common])
    assert res.exit_code == 2 and "monitor: expected one of the validation metrics" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
    res = runner.invoke(cli, ["evaluate", str(tmp_path / "n/best.safetensors"), str(ner)])
    assert res.exit_code == 0 and {"accuracy", "entity_f1", "entity_precision"} <= set(json.loads(res.output))
    res = runner.invoke(cli, ["predict", str(tmp_path / "n/best.safetensors")], input="Ann lives in Paris\n")
    assert res.exit_code == 0 and len(res.output.splitlines()) == 1
    res = runner.invoke(cli, ["segment", str(tmp_path / "n/best.safetensors")], input="我们\n")
    assert res.exit_code == 2 and "a word segmenter (scheme 'bmes') is needed" in res.output

    seg = tmp_path / "s.txt"
    seg.write_text("我们 是 学生\n老师 好\n" * 10, encoding="utf-8")
    res = runner.invoke(cli, ["train-tagger", str(seg), str(seg), "--scheme", "bmes", "--crf", "--bigram-dim", "3",
                              "--embedding-init-std", "0.05", "--run-dir", str(tmp_path / "s"), *common])
    assert res.exit_code == 0, res.output
    from rnnlab.recipes import load_model
    assert load_model(tmp_path / "s/best.safetensors")[0].cfg.embedding_init_std == 0.05
    res = runner.invoke(cli, ["segment", str(tmp_path / "s/best.safetensors")], input="我们是学生\n老师好\n")
    assert res.exit_code == 0 and [line.replace(" ", "") for line in res.output.splitlines()] == ["我们是学生", "老师好"]
    res = runner.invoke(cli, ["evaluate", str(tmp_path / "s/best.safetensors"), str(seg)])
    assert res.exit_code == 0 and "word_f1" in json.loads(res.output)
    res = runner.invoke(cli, ["train-tagger", str(seg), str(seg), "--scheme", "iob2", "--run-dir",
                              str(tmp_path / "x"), *common])
    assert res.exit_code == 2 and "expected tab-separated token<TAB>tag" in res.output
    res = runner.invoke(cli, ["segment", str(tmp_path / "nothing.safetensors")])
    assert res.exit_code == 2 and "Traceback" not in res.output
