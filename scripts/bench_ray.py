"""Benchmark: executor.kind ray with 2 actors against local (one process), side by side in one run.

    python scripts/bench_ray.py [--params params/tiny.yaml] [--hard-sets results/tiny-full] [--repeats 2]

Workloads at the params file's sizes on the shipped tiny model:
  outer step   one meta-training outer step (g*r inner-loop students, their Q_R scores, the teacher update) --
               `MetaTrainer.outer_step`, from the same starting state each time;
  evaluation   the evaluate stage for hard-only, base-t and curated with `--students` fresh students each --
               `stages.evaluate.run` (no meta-training needed).
The Ray start-up overhead (a local instance on 127.0.0.1, the actors created and their model loaded) is measured
once, before the timed rounds. The variants run interleaved, `--repeats` rounds; the median time of each is
compared (ratio > 1 = Ray faster). The outputs of both variants are compared (metrics rows and pass@k tables).
"""
import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from soar_lite import executor
from soar_lite.config import load_config
from soar_lite.soar import MetaTrainer
from soar_lite.stages import evaluate
from soar_lite.stages.common import load_problems
from soar_lite.tasks import make_task


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--hard-sets", default="results/tiny-full", help="a run directory whose probe/ holds the hard sets")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--students", type=int, default=2, help="fresh students per method in the evaluation workload")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    src = Path(a.hard_sets) / "probe"
    common = [f"results_dir={tmp}", "meta.teachers=[grounded]", "meta.tau_null_steps=0",
              "evaluate.methods=[hard-only, base-t, curated]", f"evaluate.seeds={a.students}", "evaluate.other_seeds=0"]
    variants = {"local": ["executor.kind=local", "executor.workers=1"],
                "ray x2": ["executor.kind=ray", "executor.workers=2"]}
    cfgs = {}
    for name, over in variants.items():
        cfg = load_config(a.params, common + over + [f"name={name.replace(' ', '')}"])
        (cfg.run_dir / "probe").mkdir(parents=True, exist_ok=True)
        for f in ("hard_train.json", "hard_test.json"):
            shutil.copy(src / f, cfg.run_dir / "probe" / f)
        cfgs[name] = cfg
    hard_train = load_problems(cfgs["local"].layout.hard_train)

    t0 = time.perf_counter()
    ray_cfg = cfgs["ray x2"].executor
    import ray

    actors = executor.ray_actors(ray_cfg)
    ray.get([actor.pid.remote() for actor in actors])  # the actors are up
    start_up = time.perf_counter() - t0

    times = {(w, v): [] for w in ("outer step", "evaluation") for v in variants}
    outputs = {}
    for _ in range(a.repeats):
        for name, cfg in cfgs.items():
            layout = cfg.layout.meta("grounded")
            shutil.rmtree(layout.dir, ignore_errors=True)
            trainer = MetaTrainer(cfg, make_task(cfg.task), hard_train, layout, log=lambda *x: None)
            trainer.state.tau = cfg.meta.tau
            t = time.perf_counter()
            row = trainer.outer_step()
            times[("outer step", name)].append(time.perf_counter() - t)
            t = time.perf_counter()
            res = evaluate.run(cfg, log=lambda *x: None)
            times[("evaluation", name)].append(time.perf_counter() - t)
            outputs[name] = ({k: v for k, v in row.items() if k not in ("seconds", "profile")},
                             res.table.to_csv(index=False))
    executor.shutdown()
    same = outputs["local"] == outputs["ray x2"]
    print(f"Ray start-up (a local instance and 2 actors up; each actor loads the model on its first job): {start_up:.1f} s")
    print(f"{'workload':12s} {'local s':>9s} {'ray x2 s':>9s} {'ratio':>7s}")
    report = {"ray_start_up_s": round(start_up, 2), "outputs_identical": same}
    for w in ("outer step", "evaluation"):
        lo, ra = statistics.median(times[(w, "local")]), statistics.median(times[(w, "ray x2")])
        print(f"{w:12s} {lo:9.1f} {ra:9.1f} {lo / ra:7.2f}x")
        report[w] = {"local_s": round(lo, 2), "ray2_s": round(ra, 2), "ratio": round(lo / ra, 3)}
    print(f"outputs identical (metrics row, pass@k table): {same}")
    print(json.dumps(report))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
