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
    assert res.exit_code == 1 and "the file is empty" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["sample", str(text_file)])
    assert res.exit_code == 1 and "not a readable safetensors file" in res.output
    res = runner.invoke(cli, ["train-lm", str(text_file), "--cell", "transformer"])
    assert res.exit_code == 2 and "transformer" in res.output
