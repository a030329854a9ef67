"""Worker processes: how many, and a process pool that keeps a bounded number of jobs
in flight. Used by ingest (read, parse and stage groups of files). Reports draw their
plots in one process: drawn over one shared drawing of each tap axis, a profile takes
a few hundredths of a second, less than a worker would cost.

The pool is :class:`concurrent.futures.ProcessPoolExecutor` with a fork context where
the platform has one (workers start with the parent's modules and never touch its
database connection), else spawn. Two things it does not do are added here: a
window of jobs in flight (``Executor.map`` submits every job at once, and an
ingest's staged groups are tens of MB each), and workers that exit when the parent
is killed (a worker blocks on the job queue, whose pipe its siblings also hold
open, so it would wait forever and keep the parent's stdout and stderr open).
"""

from __future__ import annotations

import os

ENV_WORKERS = "TRACEDB_WORKERS"
#: Default workers: one per CPU, at most this many (one writer keeps up with a few).
MAX_DEFAULT_WORKERS = 4
#: Workers yield the CPU to the parent (the writer), which then never waits for a core.
WORKER_NICENESS = 10


def count(requested: int | None = None, default: int | None = None) -> int:
    """``requested``, else ``$TRACEDB_WORKERS``, else ``default``, else one per CPU (at
    most MAX_DEFAULT_WORKERS)."""
    if requested is not None:
        return max(0, requested)
    env = os.environ.get(ENV_WORKERS, "")
    if env.isdigit():
        return int(env)
    if default is not None:
        return default
    return min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS)


def _context():
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _worker_init(parent: int, init, initargs: tuple) -> None:
    """In a worker: a lower priority, an exit once the parent is gone, then ``init``."""
    import threading
    import time

    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # not on this platform, or not allowed
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="tracedb-orphan-watch", daemon=True).start()
    if init is not None:
        init(*initargs)


class WindowedPool:
    """An ordered map over a process pool with at most ``window`` jobs in flight.

    ``init(*initargs)`` runs in each worker; ``initargs`` may hold objects made with
    :attr:`context` (shared values, conditions).
    """

    def __init__(self, workers: int, window: int = 64, init=None, initargs_of=None):
        from concurrent.futures import ProcessPoolExecutor

        self.context = _context()
        initargs = initargs_of(self.context) if initargs_of is not None else ()
        self.pool = ProcessPoolExecutor(workers, mp_context=self.context,
                                        initializer=_worker_init,
                                        initargs=(os.getpid(), init, initargs))
        self.window = window

    def __call__(self, fn, jobs):
        from collections import deque

        pending: deque = deque()
        it = iter(jobs)
        for job in it:
            pending.append(self.pool.submit(fn, job))
            if len(pending) >= self.window:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(self.pool.submit(fn, nxt))
            yield result

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
