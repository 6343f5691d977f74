"""One thread pool: NumPy's OpenBLAS runs its parallel jobs on numba's threads.

rnnlab's packed LSTM loops (_packed) run on numba's threads; every other product (a Dense
head, the weight gradients, NumPy code around the model) runs on OpenBLAS's. On two cores two
pools fight: after a product OpenBLAS's workers keep spinning for ~2^28 cycles (~70 ms), and
numba's GNU OpenMP workers after a parallel region, so each steals a core from the other.
OpenBLAS (0.3.27 on) lets a caller run its parallel jobs instead
(`openblas_set_threads_callback_function`); `share()` hands them to numba's threads, so one
pool runs everything. Measured (matmuls from 64^3 to 1024^3, interleaved): the same speed as
OpenBLAS's own threads, 0.97-1.03x.

The jobs of one OpenBLAS call wait for each other (a level-3 job reads the panels its
neighbours pack), so all of them must run at once, each on its own thread:
- on numba's threads when there are enough of them (NUMBA_NUM_THREADS; the calling thread's
  numba.set_num_threads is raised for the call if it is lower), with the GNU OpenMP layer,
  whose parallel loop gives each of n iterations on n threads its own thread;
- otherwise on threads started for the call (pthread_create), as OpenBLAS would;
- one call at a time (a lock): OpenBLAS indexes its per-thread buffers by the job's thread
  number, which two concurrent calls would share.

Nothing here happens unless the user asks for it: only inside `rnnlab.threads.shared_pool()`
is the pool shared, from the first call there that would run the packed
loops (`in_use`), and only where it is safe: numba's OpenMP layer without OMP_DYNAMIC or
OMP_THREAD_LIMIT (teams of the size asked for), an OpenBLAS that has the callback, not in a
forked child (the child gets OpenBLAS's own threads back: GNU OpenMP terminates a child that
uses it after a fork). numba's threads start on torch's own GNU OpenMP where torch is
installed and not yet imported (`_torch_openmp_first`). Leaving the last shared_pool gives
OpenBLAS its own threads back. Outside it rnnlab leaves NumPy's BLAS, the OpenMP runtimes and
the process's threads as they were: the packed loops do not run there.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from .. import threads
from . import _blas, _jit

AVAILABLE = _jit.AVAILABLE
# launched: numba's threads started here; forked: a child forked after that; shared: OpenBLAS's
# jobs on numba's threads now; callback: the compiled cfunc, None before the first try to
# share, False where sharing is not safe (not numba's OpenMP layer, or teams that may shrink);
# asked: whether in_use has tried to share since the first rnnlab.threads.shared_pool() opened
_state = {"launched": False, "forked": False, "shared": False, "callback": None, "asked": False}


def reopened() -> None:
    """A first shared_pool() block opens: the next call that asks shares the pool again."""
    _state["asked"] = False


def opted() -> bool:
    """Whether a rnnlab.threads.shared_pool() block is open."""
    return threads.opted()


def in_use() -> bool:
    """Inside shared_pool(): whether OpenBLAS's jobs run on numba's threads, sharing them the
    first time it is asked there (where that is safe). Outside: False, and nothing changes."""
    if not opted():
        return False
    if not _state["asked"]:
        _state["asked"] = True
        share()
    return _state["shared"]


def _setter():
    """OpenBLAS's openblas_set_threads_callback_function (ctypes), or None."""
    fn, _ = _blas._symbol(_blas._LIB, "openblas_set_threads_callback_function") if _blas._LIB else (None, None)
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_void_p], None
    return fn


_SET = _setter() if AVAILABLE else None
_WORDS = (ctypes.c_int64 * 2)()     # the callback's lock and its count of OpenBLAS calls run


def calls() -> int:
    """How many parallel OpenBLAS calls have run on the shared pool in this process."""
    return _WORDS[1]


def launch() -> int:
    """Start numba's threads (if not yet) and return how many a parallel loop runs on
    (NUMBA_NUM_THREADS, numba.set_num_threads)."""
    import numba
    if not _state["launched"]:
        _torch_openmp_first()
    _state["launched"] = True
    return numba.get_num_threads()


def _torch_openmp_first() -> None:
    """Where torch is installed but not imported, load its GNU OpenMP (torch/lib/libgomp.so.1)
    before numba's OpenMP layer loads the system's: both are named libgomp.so.1, so whichever
    loads first serves both. torch on the system's libgomp ran a GRU (H = 64, B = 128, T = 50,
    inference) in 156-168 ms against 4.7-5.5 on its own; rnnlab's LSTM runs as fast on torch's."""
    import importlib.util
    import sys
    if "torch" in sys.modules or "numba.np.ufunc.omppool" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return
    if spec is None or spec.origin is None:
        return
    path = os.path.join(os.path.dirname(spec.origin), "lib", "libgomp.so.1")
    if os.path.exists(path):
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass


def forked() -> bool:
    """Whether this process is a child forked after its parent started numba's threads."""
    return _state["forked"]


def shared() -> bool:
    """Whether OpenBLAS's parallel jobs run on numba's threads now."""
    return _state["shared"]


def share(on: bool = True) -> bool:
    """Hand OpenBLAS's parallel jobs to numba's threads (on) or give them back to OpenBLAS's
    own (off); returns whether they are shared now. rnnlab.threads.shared_pool() and tests
    call it; benchmarks switch it to compare."""
    _state["asked"] = True                                     # a choice made: in_use keeps it
    if _SET is None or forked():
        return False
    if on and not _state["shared"]:
        import numba
        launch()
        if numba.threading_layer() != "omp" or _smaller_teams():   # see the module's doc
            _state["callback"] = False
            return False
        if not _state["callback"]:
            _state["callback"] = _compile()
        _SET(_state["callback"].address)
        _state["shared"] = True
    elif not on and _state["shared"]:
        _SET(None)
        _state["shared"] = False
    return _state["shared"]


def _smaller_teams() -> bool:
    """Whether OpenMP may give a parallel loop fewer threads than it asks for (OMP_DYNAMIC,
    OMP_THREAD_LIMIT): then two jobs could land on one thread and wait for each other."""
    dynamic = os.environ.get("OMP_DYNAMIC", "").strip().lower() in ("1", "true", "yes")
    return dynamic or "OMP_THREAD_LIMIT" in os.environ


def _after_fork_in_child() -> None:
    _state["forked"] = _state["forked"] or _state["launched"]
    if _state["shared"]:
        _SET(None)                                             # OpenBLAS's own threads again
        _state["shared"] = False


os.register_at_fork(after_in_child=_after_fork_in_child)


def _compile():
    """The callback (numba's cfunc, compiled on first use): void(int sync, dojob, int numjobs,
    size_t elsize, void *jobdata, int arg), each job dojob(int thread, jobdata + i elsize, arg).
    The addresses it needs are this process's, so only this small function is compiled per
    process; what it calls is cached."""
    from numba import cfunc, types

    libc = ctypes.CDLL(None)
    create, join, yield_ = (ctypes.cast(getattr(libc, name), ctypes.c_void_p).value
                            for name in ("pthread_create", "pthread_join", "sched_yield"))
    lock_at = ctypes.addressof(_WORDS)
    start = _thread_start().address

    @cfunc(types.void(types.int32, types.int64, types.int32, types.int64, types.int64, types.int32),
           nogil=True)
    def callback(sync, dojob, numjobs, elsize, jobdata, arg):
        _run(dojob, numjobs, elsize, jobdata, arg, lock_at, yield_, create, join, start)

    return callback


if AVAILABLE:
    import numba
    from llvmlite import ir
    from numba import carray, njit, prange, types
    from numba.extending import intrinsic

    _I64 = ir.IntType(64)

    @intrinsic
    def _ccall(typingctx, fn, args):
        """fn(*args): the C function at address fn, every argument passed as a 64-bit integer
        (pointers, and ints in the low half of their registers: the x86-64 and AArch64 ABIs);
        its int result."""
        def codegen(context, builder, signature, llargs):
            values = [builder.extract_value(llargs[1], k) for k in range(len(signature.args[1]))]
            values = [builder.sext(v, _I64) if v.type.width < 64 else v for v in values]
            fnty = ir.FunctionType(ir.IntType(32), [_I64] * len(values))
            return builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), values)
        return types.int32(fn, args), codegen

    @intrinsic
    def _exchange(typingctx, at, old, new):
        """Atomically: if *at == old, *at = new; whether it was."""
        def codegen(context, builder, signature, llargs):
            ptr = builder.inttoptr(llargs[0], _I64.as_pointer())
            pair = builder.cmpxchg(ptr, llargs[1], llargs[2], "acq_rel", "acquire")
            return builder.extract_value(pair, 1)
        return types.boolean(at, old, new), codegen

    @intrinsic
    def _add(typingctx, at, v):
        """Atomically *at += v."""
        def codegen(context, builder, signature, llargs):
            ptr = builder.inttoptr(llargs[0], _I64.as_pointer())
            builder.atomic_rmw("add", ptr, llargs[1], "monotonic")
            return context.get_dummy_value()
        return types.void(at, v), codegen

    @njit(cache=True, nogil=True, parallel=True)
    def _on_pool(dojob, numjobs, elsize, jobdata, arg):
        for i in prange(numjobs):                              # one job a thread (OpenMP layer)
            _ccall(dojob, (i, jobdata + i * elsize, arg))

    @njit(cache=True, nogil=True)
    def _on_threads(dojob, numjobs, elsize, jobdata, arg, create, join, start):
        recs = np.zeros((numjobs, 4), dtype=np.int64)          # job i: (dojob, i, jobdata_i, arg)
        tids = np.zeros(numjobs, dtype=np.int64)               # their pthread_t
        for i in range(1, numjobs):
            recs[i, 0], recs[i, 1], recs[i, 2], recs[i, 3] = dojob, i, jobdata + i * elsize, arg
            _ccall(create, (tids.ctypes.data + 8 * i, 0, start, recs.ctypes.data + 32 * i))
        _ccall(dojob, (0, jobdata, arg))                       # job 0 on the calling thread
        for i in range(1, numjobs):
            _ccall(join, (tids[i], 0))

    @njit(nogil=True)                  # not cached: numba's thread count functions are ctypes pointers
    def _run(dojob, numjobs, elsize, jobdata, arg, lock_at, yield_, create, join, start):
        """Run one OpenBLAS call's jobs, all at once (see the module's doc)."""
        while not _exchange(lock_at, 0, 1):                    # one OpenBLAS call at a time
            _ccall(yield_, ())
        _add(lock_at + 8, 1)                                   # calls()
        if numjobs <= numba.config.NUMBA_NUM_THREADS:
            before = numba.get_num_threads()
            if before < numjobs:
                numba.set_num_threads(numjobs)
            _on_pool(dojob, numjobs, elsize, jobdata, arg)
            if before < numjobs:
                numba.set_num_threads(before)
        else:
            _on_threads(dojob, numjobs, elsize, jobdata, arg, create, join, start)
        _exchange(lock_at, 1, 0)

    def _thread_start():
        """A started thread's body: void *(void *job), job -> (dojob, i, jobdata_i, arg)."""
        from numba import cfunc

        @cfunc(types.int64(types.CPointer(types.int64)), nogil=True, cache=True)
        def thread_start(job):
            rec = carray(job, 4)
            _ccall(rec[0], (rec[1], rec[2], rec[3]))
            return 0
        return thread_start
