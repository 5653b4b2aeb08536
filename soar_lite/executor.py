"""Independent jobs -- a meta-training run, one inner-loop student, one fresh student -- run here, on local worker
processes, or on Ray actors (`executor` section of the params).

A job is a top-level function and its arguments; its randomness comes from its own indices (`soar_lite.seeds`),
so the results are the same whichever worker runs it and in whatever order (tested: local, 2 local processes and
2 Ray actors give identical tables). Workers keep what they load between jobs (`worker_cache`: the model is loaded
once per worker, and only adapter snapshots and job data travel).

- `kind: local`, `workers: 1`: the jobs run in this process, one after another (the default; exactly the code path
  of a run without an executor).
- `kind: local`, `workers: N`: N spawned processes (a fresh interpreter, no forked torch state). A spawned worker
  would normally re-import the caller's script (`__main__`), which breaks any script without an
  `if __name__ == "__main__":` guard; the workers are started with the main module hidden (`main_hidden`).
- `kind: ray`: N Ray actors (`workers`), each reserving `num_cpus` / `num_gpus` (fractional allowed), created once
  per process and reused across calls (so across outer steps), restarted by Ray when they die and the interrupted
  job retried (`max_restarts`, `max_task_retries`: Ray's own retry). `ray_address: ""` starts a local Ray instance
  on the loopback interface; `auto` or `ray://host:10001` joins a cluster started with `ray start --head`.
  Ray is an optional extra: `pip install -e ".[ray]"`.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable

_CACHE: dict = {}
_RAY_ACTORS: dict = {}  # (address, workers, num_cpus, num_gpus) -> actor handles of this process
CHAOS_ENV = "SOAR_LITE_KILL_WORKER_ONCE"  # fault injection for the tests: see _maybe_die


def worker_cache(key, make: Callable):
    """`make()` once per process for `key` (e.g. the policy of one config), then the same object. A worker keeps
    the last few keys (an actor may serve inner-loop students and evaluation students in turn)."""
    if key not in _CACHE:
        if len(_CACHE) >= 3:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = make()
    return _CACHE[key]


def run_jobs(fn: Callable, jobs: list[tuple], executor=1, on_done: Callable | None = None) -> list:
    """[fn(*job) for job in jobs] on the `executor` (an ExecutorConfig, or a number of local workers); results in
    job order. `on_done(job, result)` is called here as jobs finish (progress lines)."""
    kind = getattr(executor, "kind", "local")
    workers = getattr(executor, "workers", executor)
    if kind == "ray":
        return _run_ray(fn, jobs, executor, on_done)
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for job in jobs:
            out.append(fn(*job))
            if on_done:
                on_done(job, out[-1])
        return out
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        with main_hidden():  # the workers start here (on submit)
            futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        out = [None] * len(jobs)
        for f in as_completed(futures):  # on_done as each finishes (a caller that saves results loses none to a kill)
            i = futures[f]
            out[i] = f.result()
            if on_done:
                on_done(jobs[i], out[i])
        return out


# ---- work sharing between the processes of one stage (local workers) ----------------------------------------
class StudentPool:
    """The students of every meta-training run of a stage, shared between its worker processes (executor.kind
    local, workers > 1): a run puts its outer step's g*r inner-loop students on one queue and, while it waits for
    them, runs students from that queue itself -- its own or another run's --, sending each result to its owner; a
    worker with no run of its own (`help_until_done`) does the same until every run has ended. So both cores stay
    busy while any run is left, whatever the number of runs. A student's result depends only on its job (its seeds
    come from its indices; `soar.student_job` restores the baseline in the worker's own copy of the model), so the
    metrics are the same whichever process runs it (tested: byte-identical to serial). A run may `submit` its
    students, do its own serial work (the baseline's score) while the others start on them, then `collect`; the
    baseline travels as one shared file per step (models.shared_snapshot), not in every job."""

    def __init__(self, tasks, results: list, active, owner: int = -1):
        self.tasks, self.results, self.active, self.owner = tasks, results, active, owner
        self._batches = 0  # batches this process has submitted (ids for its results)
        self._stash: dict[int, dict[int, tuple]] = {}  # results of a batch not being collected yet

    def run(self, fn: Callable, jobs: list[tuple]) -> list:
        """[fn(*job) for job in jobs], in job order, run by every process of the stage that is free."""
        return self.collect(self.submit(fn, jobs))

    def submit(self, fn: Callable, jobs: list[tuple]) -> tuple[int, int]:
        """Queue the jobs for any free process (this one included, once it collects); returns the batch's handle.
        The caller may do other work in between (e.g. score the baseline) while the other processes start."""
        batch = self._batches
        self._batches += 1
        for i, job in enumerate(jobs):
            self.tasks.put((self.owner, (batch, i), fn, job))
        return batch, len(jobs)

    def collect(self, handle: tuple[int, int]) -> list:
        """The results of a submitted batch, in job order; while waiting, this process runs queued jobs itself."""
        import queue

        batch, n = handle
        got = self._stash.pop(batch, {})
        while len(got) < n:
            try:
                (b, i), ok, res = self.results[self.owner].get_nowait()
            except queue.Empty:
                if self.help_once(timeout=0.0):
                    continue
                try:
                    (b, i), ok, res = self.results[self.owner].get(timeout=0.05)
                except queue.Empty:
                    continue
            if not ok:
                raise RuntimeError(f"a student job failed in another worker: {res}")
            if b == batch:
                got[i] = res
            else:
                self._stash.setdefault(b, {})[i] = res
        return [got[i] for i in range(n)]

    def help_once(self, timeout: float) -> bool:
        """Run one queued job (any run's) and send its result to its owner; False when none was queued."""
        import queue

        try:
            owner, key, fn, job = self.tasks.get(timeout=timeout) if timeout else self.tasks.get_nowait()
        except queue.Empty:
            return False
        try:
            self.results[owner].put((key, True, fn(*job)))
        except Exception as e:  # noqa: BLE001 - the owner raises it, naming it
            self.results[owner].put((key, False, f"{type(e).__name__}: {e}"))
        return True

    def help_until_done(self) -> None:
        """A worker without a run of its own: run queued students until every run of the stage has ended."""
        while self.active.value > 0:
            self.help_once(timeout=0.1)
        while self.help_once(timeout=0.0):  # nothing is left behind
            pass


_POOL: StudentPool | None = None  # this worker process's share of the stage's StudentPool (None: no sharing)


def _init_pool(tasks, results, active) -> None:
    global _POOL
    _POOL = StudentPool(tasks, results, active)


def current_pool() -> StudentPool | None:
    """The StudentPool of the stage this worker serves (with the owner of the job it runs), or None."""
    return _POOL


def _pooled(index: int, fn: Callable, job: tuple):
    """A run job on a pooled worker: its students go to the stage's pool as owner `index`; the run counts as ended
    when it returns or fails."""
    _POOL.owner = index
    try:
        return fn(*job)
    finally:
        _POOL.owner = -1
        with _POOL.active.get_lock():
            _POOL.active.value -= 1


def _helper() -> None:
    _POOL.help_until_done()


def run_pooled(fn: Callable, jobs: list[tuple], workers: int, on_done: Callable | None = None) -> list:
    """[fn(*job) for job in jobs] on `workers` spawned processes that share their students (`StudentPool`): each job
    runs on a worker and puts its students on the pool; `workers` helper jobs queued after them keep every worker
    busy with students once no job is left to start. Results in job order; `on_done` as each job finishes."""
    ctx = multiprocessing.get_context("spawn")
    tasks, results, active = ctx.Queue(), [ctx.Queue() for _ in jobs], ctx.Value("i", len(jobs))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool, initargs=(tasks, results, active)) as pool:
        with main_hidden():
            futures = {pool.submit(_pooled, i, fn, job): i for i, job in enumerate(jobs)}
            helpers = [pool.submit(_helper) for _ in range(workers)]
        out = [None] * len(jobs)
        for f in as_completed(futures):
            i = futures[f]
            out[i] = f.result()
            if on_done:
                on_done(jobs[i], out[i])
        for h in helpers:
            h.result()
        return out


def fans_out_students(executor) -> bool:
    """Whether the g*r inner-loop students of an outer step go to the executor (Ray), or run in the meta-training
    process (local: there the whole meta-training runs are what the workers share)."""
    return getattr(executor, "kind", "local") == "ray"


# ---- Ray -----------------------------------------------------------------------------------------------
def _maybe_die() -> None:
    """Fault injection (tests only): when SOAR_LITE_KILL_WORKER_ONCE names a file that does not exist yet, create it
    and kill this worker process with SIGKILL, mid-job, as the OOM killer would."""
    path = os.environ.get(CHAOS_ENV)
    if path and not os.path.exists(path):
        open(path, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


class _JobRunner:
    """The Ray actor: runs jobs; its process keeps `worker_cache` (the loaded model) between jobs."""

    def run(self, fn, *args):
        _maybe_die()
        return fn(*args)

    def pid(self) -> int:
        return os.getpid()


def ray_init(executor) -> None:
    """Start (ray_address "") or join the Ray instance once per process."""
    import ray

    if ray.is_initialized():
        return
    # PYTHONPATH: a world of your own (task.module_path) must import in the actors too
    env = {"env_vars": {k: v for k, v in os.environ.items()
                        if k in (CHAOS_ENV, "HF_HUB_OFFLINE", "OMP_NUM_THREADS", "PYTHONPATH")}}
    if executor.ray_address:
        ray.init(address=executor.ray_address, runtime_env=env, log_to_driver=False)
    else:  # a local instance, loopback only, no dashboard
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, runtime_env=env, log_to_driver=False,
                 num_cpus=max(1, int(round(executor.workers * executor.num_cpus))),
                 num_gpus=executor.workers * executor.num_gpus if executor.num_gpus else None)


def ray_actors(executor) -> list:
    """This process's actors for `executor` (created on first use, then reused)."""
    import ray

    ray_init(executor)
    key = (executor.ray_address, executor.workers, executor.num_cpus, executor.num_gpus)
    if key not in _RAY_ACTORS:
        cls = ray.remote(_JobRunner).options(num_cpus=executor.num_cpus, num_gpus=executor.num_gpus,
                                             max_restarts=executor.max_restarts,
                                             max_task_retries=executor.max_restarts)
        _RAY_ACTORS[key] = [cls.remote() for _ in range(executor.workers)]
    return _RAY_ACTORS[key]


def _run_ray(fn, jobs, executor, on_done) -> list:
    import ray

    actors = ray_actors(executor)
    out, pending, next_job = [None] * len(jobs), {}, 0
    free = list(actors)
    while next_job < len(jobs) or pending:
        while free and next_job < len(jobs):
            actor = free.pop()
            pending[actor.run.remote(fn, *jobs[next_job])] = (next_job, actor)
            next_job += 1
        ready, _ = ray.wait(list(pending), num_returns=1)
        i, actor = pending.pop(ready[0])
        out[i] = ray.get(ready[0])
        free.append(actor)
        if on_done:
            on_done(jobs[i], out[i])
    return out


def shutdown() -> None:
    """Drop this process's actors and disconnect from Ray (a local instance stops with its driver)."""
    _RAY_ACTORS.clear()
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


@contextlib.contextmanager
def main_hidden():
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
