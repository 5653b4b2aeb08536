"""Benchmark: meta-training on 2 local workers sharing their students (executor.StudentPool) against 1, side by
side in one run, at the quick look's sizes (issue 34: every core busy).

    python scripts/bench_meta_parallel.py [--params params/tiny.yaml] [--steps 2] [--null-steps 1]   (make bench)

Workload: one grounded meta-training run (`meta.teachers: [grounded]`) of `--steps` outer steps after `--null-steps`
tau-null steps, each step's g*r = 64 inner-loop students at params/tiny.yaml's sizes, into a fresh run directory per
variant (the probe's hard sets are copied from one probe run). Variants: workers 1 (every student in the run's
process, one after another) and workers 2 (the students shared by two processes). Printed: the wall time of each,
the speed-up (target >= 1.7x on an idle 2-core machine), and whether the metrics (metrics.jsonl without its
timings) are identical. The machine's load average is printed beside them: on a shared machine the ratio is only
as good as the cores were free.
"""
import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from soar_lite.config import load_config
from soar_lite.stages import meta_train, probe


def metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "meta" / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "profile")} for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--null-steps", type=int, default=1)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench_meta_"))
    common = ["meta.teachers=[grounded]", f"meta.outer_steps={args.steps}", f"meta.tau_null_steps={args.null_steps}",
              "meta.snr_draws=0"]
    cfg0 = load_config(args.params, [f"results_dir={base / 'probe'}", *common])
    probe.run(cfg0, log=lambda m: None)
    times, rows = {}, {}
    for workers in (1, 2):
        out = base / f"w{workers}"
        cfg = load_config(args.params, [f"results_dir={out}", f"executor.workers={workers}", *common])
        shutil.copytree(cfg0.run_dir / "probe", cfg.run_dir / "probe")
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        meta_train.run(cfg, log=lambda m: None)
        times[workers] = time.perf_counter() - t0
        rows[workers] = metrics(cfg.run_dir)
        print(f"workers {workers}: {times[workers]:.1f} s (load average {load:.1f} at the start)", flush=True)
    print(f"meta-training, {args.null_steps} tau-null + {args.steps} outer steps of one grounded run at "
          f"{Path(args.params).name}'s sizes: workers 2 vs 1 speed-up {times[1] / times[2]:.2f}x; metrics identical: "
          f"{rows[1] == rows[2]}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
