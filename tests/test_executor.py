"""executor.py: a Ray worker killed during an outer step is restarted by Ray and the step completes with the same
result; a local worker with no run of its own trains another run's students. (Local processes and Ray actors give
the tables of one process: tests/test_stages.py.) Ray runs locally (loopback only), started by the tests and shut
down at the end."""
import json
import os
from pathlib import Path

import pytest

from soar_lite.config import load_config
from soar_lite.stages import evaluate, meta_train, probe

ray = pytest.importorskip("ray")


def _outputs(run) -> dict:
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "profile")}  # noqa: E731
    return {
        "metrics": {d.name: [strip(json.loads(line)) for line in (d / "metrics.jsonl").read_text().splitlines()]
                    for d in sorted(run.glob("meta*"))},
        "promotions": {d.name: (d / "promotions.json").read_text() for d in sorted(run.glob("meta*"))},
        "tables": {t: (run / "tables" / f"{t}.csv").read_text() for t in ("pass_at_k", "curves", "comparisons")
                   if (run / "tables" / f"{t}.csv").exists()},
    }


def _run(tmp_path, name, overrides, stages=(probe, meta_train, evaluate)):
    cfg = load_config("ci", [f"results_dir={tmp_path}", f"name={name}", "meta.runs=2", *overrides])
    for stage in stages:
        stage.run(cfg, log=lambda *a: None)
    return cfg.run_dir


@pytest.fixture(scope="module")
def ray_local():
    from soar_lite import executor

    yield
    executor.shutdown()


@pytest.mark.whole_run(seconds=35)
@pytest.mark.xdist_group("ray")  # one local Ray instance at a time
def test_a_ray_worker_killed_mid_step_is_restarted_and_the_step_completes_the_same(tmp_path, ray_local, monkeypatch):
    """The first student job that reaches a worker kills that worker's process (SIGKILL, as the OOM killer would);
    Ray restarts the actor and retries the job; the metrics equal those of an undisturbed run."""
    from soar_lite import executor

    executor.shutdown()  # new actors that see the fault-injection variable
    marker = tmp_path / "killed"
    monkeypatch.setenv(executor.CHAOS_ENV, str(marker))
    overrides = ["executor.kind=ray", "executor.workers=2", "meta.teachers=[grounded]", "meta.runs=1"]
    killed = _outputs(_run(tmp_path, "killed", overrides, stages=(probe, meta_train)))
    assert marker.exists()  # a worker did die
    monkeypatch.delenv(executor.CHAOS_ENV)
    executor.shutdown()
    clean = _outputs(_run(tmp_path, "clean", ["meta.teachers=[grounded]", "meta.runs=1"], stages=(probe, meta_train)))
    assert killed["metrics"]["meta"] == clean["metrics"]["meta"] and len(clean["metrics"]["meta"]) == 2
    assert killed["promotions"] == clean["promotions"]


def _strip(path):
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "profile")}
            for line in path.read_text().splitlines()]


@pytest.mark.whole_run(seconds=30)
def test_a_worker_with_no_run_of_its_own_trains_the_other_runs_students(tmp_path):
    """Issue 34: the stage's local workers share every run's inner-loop students (executor.StudentPool). One grounded
    run on two workers: the second worker has no run of its own and trains the first one's students; metrics.jsonl
    (without timings), PQ, promotions and the end diagnostics byte-identical to one process; the baseline travels as
    one shared file per step (models.shared_snapshot), and none is left behind. (Runs beside each other, with every
    table: tests/test_stages.py, test_local_workers_and_ray_actors_give_the_tables_of_one_process.)"""
    quiet = lambda *a: None  # noqa: E731
    dirs = []
    for workers in (1, 2):
        cfg = load_config("ci", [f"results_dir={tmp_path / str(workers)}", f"executor.workers={workers}",
                                 "meta.teachers=[grounded]", "meta.runs=1", "meta.g=4"])
        probe.run(cfg, log=quiet)
        meta_train.run(cfg, log=quiet)
        dirs.append(cfg.run_dir)
    assert [p.name for p in dirs[0].glob("meta*")] == ["meta"]
    a, b = dirs[0] / "meta", dirs[1] / "meta"
    assert _strip(a / "metrics.jsonl") == _strip(b / "metrics.jsonl")
    for f in ("pq.json", "promotions.json", "diagnostics.json"):
        assert (a / f).read_text() == (b / f).read_text(), f
    shm = Path("/dev/shm")
    if shm.is_dir():  # every step's shared baseline file was removed after its students (files are named by their
        # writer's pid: another test running beside this one, on the other pytest-xdist worker, may have its own)
        assert not list(shm.glob(f"soar_lite_snapshot_{os.getpid()}_*"))
