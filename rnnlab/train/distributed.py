"""Data-parallel training on MPI (mpi4py), Horovod's pattern: every process holds the model,
computes gradients on its shard of each global batch, and one allreduce a step sums them.

`world()` is the communicator of the processes `mpiexec` started (it looks for the launcher's
variables once, when called; mpi4py is imported only then), or a one-process stand-in that
does nothing, so code written for N processes runs unchanged in one. Install the optional
extra `rnnlab[mpi]` (mpi4py and Open MPI from the package index).

Sums travel as one flat float64 buffer: the gradients times each rank's count (so the sum
over ranks divided by the total count is the gradient of the global batch's mean loss), then
the loss sum and the count.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import ConfigError

LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
LOCAL_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE")


class Comm:
    """One process: rank 0 of 1; every collective is the identity."""
    rank, size, local_size = 0, 1, 1

    def __init__(self) -> None:
        self.reduce_seconds = 0.0                 # time spent in allreduce_sum, for benchmarks
        self.reduce_calls = 0

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce_sum(self, buf: np.ndarray) -> np.ndarray:
        """Sum `buf` (float64, contiguous) over the ranks, in place."""
        self.reduce_calls += 1
        return buf

    def bcast(self, buf: np.ndarray) -> np.ndarray:
        """Rank 0's `buf` on every rank, in place."""
        return buf

    def bcast_json(self, obj):
        return obj

    def allgather_rows(self, a: np.ndarray) -> np.ndarray:
        """The ranks' arrays stacked along axis 0, in rank order."""
        return a

    def barrier(self) -> None:
        pass


class MPIComm(Comm):
    def __init__(self, mpi) -> None:
        super().__init__()
        self.mpi = mpi
        self.comm = mpi.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.local_size = self.comm.Split_type(mpi.COMM_TYPE_SHARED).Get_size()

    def allreduce_sum(self, buf: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        self.comm.Allreduce(self.mpi.IN_PLACE, buf, op=self.mpi.SUM)
        self.reduce_seconds += time.perf_counter() - t0
        self.reduce_calls += 1
        return buf

    def bcast(self, buf: np.ndarray) -> np.ndarray:
        self.comm.Bcast(buf, root=0)
        return buf

    def bcast_json(self, obj):
        """Rank 0's JSON-able object on every rank (as UTF-8 bytes, never a pickle)."""
        data = json.dumps(obj).encode() if self.rank == 0 else b""
        n = np.array([len(data)], dtype=np.int64)
        self.comm.Bcast(n, root=0)
        buf = np.frombuffer(data, dtype=np.uint8).copy() if self.rank == 0 else np.empty(int(n[0]), np.uint8)
        self.comm.Bcast(buf, root=0)
        return json.loads(buf.tobytes().decode())

    def allgather_rows(self, a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a)
        counts = np.zeros(self.size, dtype=np.int64)
        self.comm.Allgather(np.array([a.shape[0]], dtype=np.int64), counts)
        row = int(np.prod(a.shape[1:], dtype=np.int64))
        out = np.empty((int(counts.sum()),) + a.shape[1:], dtype=a.dtype)
        self.comm.Allgatherv(a, [out, counts * row])
        return out

    def barrier(self) -> None:
        self.comm.Barrier()


def _launcher_int(names: tuple[str, ...]) -> int | None:
    """The first of the launcher's variables that holds a number (read when asked, never at
    import or in a loop: how mpiexec tells a process its place, as torch.distributed reads)."""
    for v in names:
        value = os.environ.get(v, "")
        if value.isdigit():
            return int(value)
    return None


def launched() -> bool:
    """Whether an MPI launcher started this process as one of several."""
    return (_launcher_int(LAUNCH_VARS) or 1) > 1


RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")


def launch_rank() -> int:
    """This process's rank as the launcher says (0 when none does)."""
    return _launcher_int(RANK_VARS) or 0


def local_ranks() -> int:
    """How many ranks the launcher started on this machine (1 when none says)."""
    return max(1, _launcher_int(LOCAL_VARS) or 1)


def world() -> Comm:
    """The processes mpiexec started, or one process on its own."""
    if not launched():
        return Comm()
    try:
        from mpi4py import MPI
    except ImportError:
        raise ConfigError("started by an MPI launcher, but mpi4py is not installed: "
                          "pip install 'rnnlab[mpi]'") from None
    comm = MPIComm(MPI)
    return comm if comm.size > 1 else Comm()


@contextlib.contextmanager
def ends_job_on_error() -> Iterator[None]:
    """Under mpiexec, an error that ends this rank ends the job: the error is shown (its
    traceback, or the message of a `sys.exit`), then MPI_Abort stops every rank, instead of
    leaving the others waiting forever in a collective for a rank that is gone. Outside
    mpiexec, or when mpi4py was never imported (no collective can be waiting), it does
    nothing. Every `rnnlab` command runs in it; a training script of your own started by
    mpiexec can use it the same way (or be started as `python -m mpi4py script.py`)."""
    try:
        yield
    except SystemExit as exc:
        if exc.code not in (None, 0) and (mpi := _running_mpi()) is not None:
            if not isinstance(exc.code, int):             # sys.exit("message"): Python would print it
                sys.stderr.write(f"{exc.code}\n")
            _abort(mpi, exc.code if isinstance(exc.code, int) else 1)
        raise
    except BaseException:
        if (mpi := _running_mpi()) is not None:
            traceback.print_exc()                         # what Python would have printed
            _abort(mpi, 1)
        raise


def _running_mpi():
    """mpi4py's MPI module when this process is one of several that started MPI, else None."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not launched() or not mpi.Is_initialized() or mpi.Is_finalized():
        return None
    return mpi


def _abort(mpi, code: int) -> None:
    """End every rank of the job with `code` (MPI_Abort), this one's output flushed first."""
    sys.stdout.flush()
    sys.stderr.flush()
    mpi.COMM_WORLD.Abort(code)


def local_threads(comm: Comm, cores: int | None = None) -> int:
    """Threads for each rank so that the ranks on this machine share its cores."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(comm.local_size, 1))


def shard(n: int, comm: Comm) -> np.ndarray:
    """This rank's rows of n: contiguous blocks as even as they go (np.array_split)."""
    return np.array_split(np.arange(n), comm.size)[comm.rank]


class GradientSum:
    """One flat buffer for a model's gradients plus the loss sum and the count."""

    def __init__(self, names: Sequence[str], grads: dict[str, np.ndarray]) -> None:
        self.names = list(names)
        self.sizes = [grads[k].size for k in self.names]
        self.buf = np.zeros(sum(self.sizes) + 3)          # gradients, loss sum, count, stop
        self.calls, self.seconds = 0, 0.0                 # steps summed, time in the allreduce

    def __call__(self, comm: Comm, grads: dict[str, np.ndarray], loss_sum: float, n: int,
                 stop: bool = False) -> tuple[float, int, bool]:
        """grads (this rank's gradients of its mean loss over n; anything when n is 0) -> the
        gradients of the global batch's mean loss, written into `grads`; -> (global loss sum,
        global count, whether any rank asked to stop)."""
        at = 0
        for k, size in zip(self.names, self.sizes):
            seg = self.buf[at:at + size]
            if n:
                np.multiply(grads[k].reshape(-1), n, out=seg)
            else:
                seg[:] = 0
            at += size
        self.buf[-3:] = (loss_sum if n else 0.0, n, float(stop))
        t0 = time.perf_counter()
        comm.allreduce_sum(self.buf)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        total = int(round(self.buf[-2]))
        at = 0
        for k, size in zip(self.names, self.sizes):
            grads[k][...] = (self.buf[at:at + size] / max(total, 1)).reshape(grads[k].shape)
            at += size
        return float(self.buf[-3]), total, self.buf[-1] > 0


def bcast_arrays(comm: Comm, arrays: Sequence[np.ndarray]) -> None:
    """Rank 0's values of every array on every rank (in place)."""
    if comm.size == 1:
        return
    for a in arrays:
        buf = np.ascontiguousarray(a)
        comm.bcast(buf)
        if buf is not a:
            a[...] = buf


def gather_columns(comm: Comm, a: np.ndarray, axis: int) -> np.ndarray:
    """The ranks' arrays joined along `axis` (their batch axis), in rank order."""
    if comm.size == 1:
        return a
    return np.moveaxis(comm.allgather_rows(np.moveaxis(a, axis, 0)), 0, axis)
