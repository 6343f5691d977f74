"""Data-parallel training on MPI: `mpiexec -n 2` and one process, same global batches, end with
the same weights (float32, 1e-5 relative) for a language model, a tagger and a classifier; a
rank killed mid-run, or one that raises, ends the job with an error, and the job resumes from
the last checkpoint to the same weights. Skipped without mpi4py and an mpiexec
(`pip install "rnnlab[mpi]"`); `.ci/run` installs them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnlab.train.checkpoint import load_checkpoint
from rnnlab.train.distributed import Comm, GradientSum, gather_columns, local_threads, shard

SCRIPT = Path(__file__).with_name("mpi_script.py")
ROOT = Path(__file__).resolve().parents[2]


def _mpiexec():
    pytest.importorskip("mpi4py")
    exe = shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec on PATH (pip install 'rnnlab[mpi]')")
    return exe


def _env():
    # Open MPI refuses root without these (CI containers run as root); idle ranks yield the core
    # (a loaded machine would otherwise starve the busy-polling ranks)
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_mpi_yield_when_idle="1", PYTHONPATH=str(ROOT))


def _run(args, n=None, check=True, timeout=300):
    cmd = [sys.executable, str(SCRIPT), *map(str, args)]
    if n is not None:
        cmd = [_mpiexec(), "-n", str(n), "--oversubscribe", *cmd]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


def _weights(run: Path, processes: int | None = None) -> dict[str, np.ndarray]:
    arrays, meta = load_checkpoint(run / "last.safetensors")
    assert meta["trainer"]["epoch"] == 3
    assert processes is None or meta["processes"] == processes      # mpiexec's ranks trained together
    return {k: v for k, v in arrays.items() if k.startswith("model.")}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mpi_data")
    _run(["data", folder])
    return folder


@pytest.mark.parametrize("kind", ["lm", "tagger", "classifier"])
def test_two_processes_end_with_the_weights_of_one(kind, data, tmp_path):
    _mpiexec()
    _run([kind, data, tmp_path / "one"])
    _run([kind, data, tmp_path / "two"], n=2)
    one, two = _weights(tmp_path / "one", 1), _weights(tmp_path / "two", 2)
    assert one.keys() == two.keys()
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=1e-6, err_msg=k)
    log = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(log) == 3                                   # rank 0 alone wrote the log


def test_a_killed_rank_ends_the_job_and_it_resumes(data, tmp_path):
    _mpiexec()
    _run(["lm", data, tmp_path / "whole"], n=2)
    died = _run(["lm", data, tmp_path / "cut", "--die-at-step", "5"], n=2, check=False)
    assert died.returncode != 0
    assert "signal 9" in (died.stdout + died.stderr) or "killed" in (died.stdout + died.stderr).lower()
    assert (tmp_path / "cut" / "last.safetensors").exists()
    _run(["lm", data, tmp_path / "cut"], n=2)              # the same command again: it resumes
    whole, cut = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    for k in whole:
        np.testing.assert_allclose(cut[k], whole[k], rtol=1e-6, atol=1e-7, err_msg=k)
    _run(["lm", data, tmp_path / "cut2", "--die-at-step", "5"], n=2, check=False)
    _run(["lm", data, tmp_path / "cut2"])                  # resumed by one process instead of two
    for k, v in _weights(tmp_path / "cut2").items():
        np.testing.assert_allclose(v, whole[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_an_error_on_one_rank_ends_the_job(data, tmp_path):
    # rank 1's error, not rank 0's: rank 0 would otherwise wait in the allreduce for ever
    failed = _run(["cli", data, tmp_path / "c", "--fail-at-step", "3"], n=2, check=False, timeout=120)
    assert failed.returncode != 0
    assert "RuntimeError: rank 1 failed in step 3" in failed.stderr
    assert "MPI_ABORT" in failed.stderr


def test_outside_mpiexec_errors_pass_through_unchanged(capsys, monkeypatch):
    from rnnlab.train.distributed import LAUNCH_VARS, ends_job_on_error
    for v in LAUNCH_VARS:
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(SystemExit) as exit_:
        with ends_job_on_error():
            raise SystemExit(2)
    assert exit_.value.code == 2
    with pytest.raises(KeyError):
        with ends_job_on_error():
            raise KeyError("k")
    assert capsys.readouterr().err == ""                       # Python shows it, once


def test_one_process_pieces():
    comm = Comm()
    assert (comm.rank, comm.size, comm.is_root) == (0, 1, True)
    assert shard(5, comm).tolist() == [0, 1, 2, 3, 4]
    grads = {"a": np.ones((2, 3), np.float32), "b": np.full(4, 2.0, np.float32)}
    total, n, stop = GradientSum(["a", "b"], grads)(comm, grads, 6.0, 3, stop=True)
    assert (total, n, stop) == (6.0, 3, True) and np.all(grads["a"] == 1) and np.all(grads["b"] == 2)
    a = np.arange(6.0).reshape(1, 3, 2)
    assert gather_columns(comm, a, 1) is a
    assert local_threads(comm, cores=8) == 8


class _Fake(Comm):
    def __init__(self, rank, size):
        super().__init__()
        self.rank, self.size = rank, size


class _Stop(Exception):
    pass


def test_only_rank_0_cleans_the_run_directory(tmp_path):
    # a write rank 0 has in flight looks like a stale temporary: another rank must leave it
    from rnnlab.data import Vocab
    from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig
    from rnnlab.recipes.language_model import StreamTask
    from rnnlab.train import TrainConfig, train

    class SetUpOnly(_Fake):
        def barrier(self):                                 # past the set-up: enough
            raise _Stop

    model = LanguageModel(Vocab(list("abc")), LanguageModelConfig("char", 4, RecurrentConfig("lstm", 5, 1)), rng=0)
    task = StreamTask(np.arange(60) % 3, np.arange(30) % 3, 2, 5)
    in_flight = tmp_path / ".metrics.jsonl.0123456789ab.tmp"
    in_flight.write_text("rank 0 writing")
    with pytest.raises(_Stop):
        train(model, task, TrainConfig(epochs=1), tmp_path, progress=False, comm=SetUpOnly(1, 2))
    assert in_flight.exists()
    with pytest.raises(_Stop):
        train(model, task, TrainConfig(epochs=1), tmp_path, progress=False, comm=SetUpOnly(0, 2))
    assert not in_flight.exists()                          # rank 0 does clean up


def test_shards_cover_a_batch_once():
    for size in (2, 3, 4):
        parts = [shard(10, _Fake(r, size)).tolist() for r in range(size)]
        assert sum(parts, []) == list(range(10))


def test_the_cli_under_mpiexec(data, tmp_path):
    exe = _mpiexec()
    cmd = [exe, "-n", "2", "--oversubscribe", sys.executable, "-m", "rnnlab", "train-classifier",
           str(data / "sst.txt"), "--epochs", "1", "--hidden-size", "8", "--run-dir", str(tmp_path / "c"), "--quiet"]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("best checkpoint:") == 1           # rank 0 alone reports
    assert load_checkpoint(tmp_path / "c" / "best.safetensors")[1]["processes"] == 2
