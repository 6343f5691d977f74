"""The documentation site builds in strict mode: a broken reference or link fails the tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(tmp_path / "site")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("rnnlab.LSTM") >= 1
    assert "train-forecaster" in (tmp_path / "site" / "cli" / "index.html").read_text()
    shutil.rmtree(tmp_path / "site")


def test_readme_is_a_first_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "session" not in readme.lower()
    for needed in ("pip install . && python -m rnnlab train-lm", 'pip install "torch==2.13.0" -e ".[test]" && python -m pytest -n 2'):
        assert needed in readme
    assert "python -m pytest -n 2 " in (ROOT / ".ci" / "run").read_text()      # CI runs the README's command
