"""Independent jobs (a meta-training run, one fresh student) on `executor.workers` local processes.

A job is a picklable top-level function and its arguments; its randomness comes from its own indices
(`soar_lite.seeds`), so the results are the same whichever worker runs it and in whatever order (tested:
workers = 1 vs 2 give identical tables). Workers are spawned (a fresh interpreter, no forked torch state) and
keep what they load between jobs (`worker_cache`). With workers = 1 the jobs run here, one after another.
A spawned worker would normally re-import the caller's script (`__main__`), which breaks any script without an
`if __name__ == "__main__":` guard; the jobs are module functions of this package, so the workers are started
with the main module hidden (`_main_hidden`) and never re-run the caller.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

_CACHE: dict = {}


def worker_cache(key, make: Callable):
    """`make()` once per process for `key` (e.g. the policy of one config), then the same object."""
    if key not in _CACHE:
        _CACHE.clear()  # one config per process at a time
        _CACHE[key] = make()
    return _CACHE[key]


def run_jobs(fn: Callable, jobs: list[tuple], workers: int = 1, on_done: Callable | None = None) -> list:
    """[fn(*job) for job in jobs], on up to `workers` processes; results in job order. `on_done(job, result)` is
    called here as each job finishes (progress lines)."""
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for job in jobs:
            out.append(fn(*job))
            if on_done:
                on_done(job, out[-1])
        return out
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        with _main_hidden():  # the workers start here (on submit)
            futures = [pool.submit(fn, *job) for job in jobs]
        out = []
        for job, f in zip(jobs, futures):
            out.append(f.result())
            if on_done:
                on_done(job, out[-1])
        return out


@contextlib.contextmanager
def _main_hidden():
    """While workers start: the main module has no file or spec, so multiprocessing does not re-import it."""
    main = sys.modules.get("__main__")
    saved = {a: getattr(main, a) for a in ("__file__", "__spec__") if main is not None and hasattr(main, a)}
    try:
        for a in saved:
            if a == "__file__":
                delattr(main, a)
            else:
                setattr(main, a, None)
        yield
    finally:
        for a, v in saved.items():
            setattr(main, a, v)
