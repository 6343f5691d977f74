"""Every CLI option fed a bad value: one line naming the option, exit code 2, no traceback,
and nothing trained."""

import pytest
from click.testing import CliRunner

from rnnlab.cli import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "t.txt").write_text("the cat sat on the mat. " * 100)
    (d / "s.txt").write_text("".join(f"{i % 2} a {'good' if i % 2 else 'bad'} film\n" for i in range(20)))
    (d / "c.csv").write_text("t,v\n" + "".join(f"{i},{i % 7}\n" for i in range(120)))
    (d / "t.conllu").write_text("1\tthe\t_\tDET\t_\t_\t_\t_\t_\t_\n2\tdog\t_\tNOUN\t_\t_\t_\t_\t_\t_\n\n" * 5)
    (d / "a_file").write_text("not a folder")
    res = CliRunner().invoke(cli, ["train-lm", str(d / "t.txt"), "--run-dir", str(d / "lm"), "--epochs", "1",
                                   "--hidden-size", "8", "--num-layers", "1", "--bptt", "8", "--quiet",
                                   "--sample-length", "0", "--max-steps-per-epoch", "2"])
    assert res.exit_code == 0, res.output
    return d


LM = ["train-lm", "{d}/t.txt", "--run-dir", "{d}/r", "--quiet"]
FORECAST = ["train-forecaster", "{d}/c.csv", "--run-dir", "{d}/r", "--quiet"]
CLASSIFY = ["train-classifier", "{d}/s.txt", "--run-dir", "{d}/r", "--quiet"]
TAG = ["train-tagger", "{d}/t.conllu", "{d}/t.conllu", "--run-dir", "{d}/r", "--quiet"]
CKPT = "{d}/lm/best.safetensors"

CASES = [
    (LM + ["--epochs", "0"], "--epochs"), (LM + ["--lr", "0"], "--lr"), (LM + ["--lr", "-1"], "--lr"),
    (LM + ["--lr", "nan"], "lr"), (LM + ["--hidden-size", "0"], "--hidden-size"),
    (LM + ["--hidden-size", "1e9"], "--hidden-size"), (LM + ["--num-layers", "0"], "--num-layers"),
    (LM + ["--batch-size", "0"], "--batch-size"), (LM + ["--bptt", "0"], "--bptt"),
    (LM + ["--dropout", "1.5"], "--dropout"), (LM + ["--clip", "-1"], "--clip"),
    (LM + ["--schedule", "step", "--schedule-arg", "foo=1"], "schedule_args"),
    (LM + ["--schedule-arg", "gamma"], "--schedule-arg"), (LM + ["--schedule-arg", "gamma=x"], "--schedule-arg"),
    (LM + ["--patience", "-1"], "--patience"), (LM + ["--zoneout", "2"], "--zoneout"),
    (LM + ["--input-dropout", "-0.1"], "--input-dropout"), (LM + ["--cell", "transformer"], "--cell"),
    (LM + ["--optimizer", "sgdx"], "--optimizer"), (LM + ["--max-chars", "0"], "--max-chars"),
    (LM + ["--valid-fraction", "0"], "--valid-fraction"), (LM + ["--min-freq", "0"], "--min-freq"),
    (LM + ["--embedding-dim", "0"], "--embedding-dim"), (LM + ["--run-dir", "{d}/a_file"], "--run-dir"),
    (LM + ["--run-dir", "{d}/a_file/sub"], "run_dir"),
    (LM + ["--checkpoint-every", "-1"], "--checkpoint-every"), (LM + ["--weight-decay", "-1"], "--weight-decay"),
    (LM + ["--sample-length", "-1"], "--sample-length"), (LM + ["--max-steps-per-epoch", "0"], "--max-steps-per-epoch"),
    (FORECAST + ["--column", "Nope"], "column"), (FORECAST + ["--column", "9"], "column"),
    (FORECAST + ["--window", "0"], "--window"), (FORECAST + ["--horizon", "0"], "--horizon"),
    (FORECAST + ["--window", "500"], "window"), (FORECAST + ["--dropout", "0.5"], "dropout"),
    (CLASSIFY + ["--embedding-init-std", "0"], "--embedding-init-std"),
    (CLASSIFY + ["--word-dropout", "1"], "--word-dropout"), (CLASSIFY + ["--pooling", "x"], "--pooling"),
    (CLASSIFY + ["--pretrain-epochs", "-1"], "--pretrain-epochs"),
    (TAG + ["--char-hidden", "-1"], "--char-hidden"), (TAG + ["--word-dim", "0"], "--word-dim"),
    (TAG + ["--embedding-init-std", "0"], "--embedding-init-std"),
    (["sample", CKPT, "--length", "-5"], "--length"), (["sample", CKPT, "--temperature", "0"], "--temperature"),
    (["sample", CKPT, "--top-k", "0"], "--top-k"), (["sample", "{d}/t.txt"], "t.txt"),
    (["evaluate", CKPT, "{d}/t.txt", "--column", "v"], "column"),
    (["predict", CKPT, "--column", "v"], "--column"),
    (["inspect", CKPT, "--text", "abc", "--signal", "regex:("], "signal"),
    (["inspect", CKPT, "--text", "abc", "--units", "0"], "--units"),
    (["gradient-flow", "--cells", "foo"], "--cells"), (["gradient-flow", "--length", "0"], "--length"),
    (["compare", "--cells", "foo"], "--cells"), (["bench", "--hidden-sizes", "0"], "--hidden-sizes"),
    (["bench", "--cells", "TRANSFORMER"], "cells"), (["bench", "--models", "gpt"], "--models"),
    (["bench", "--models", "tagger", "--hidden-sizes", "64"], "--hidden-sizes"), (["describe", "{d}/missing.safetensors"], "missing"),
]


@pytest.mark.parametrize("args, names", CASES, ids=[" ".join(a[-2:]) for a, _ in CASES])
def test_bad_value_is_one_line_and_exit_code_2(files, args, names):
    res = CliRunner().invoke(cli, [a.format(d=files) for a in args])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert names in lines[0], res.output
    assert not (files / "r" / "last.safetensors").exists()
