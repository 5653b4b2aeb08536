"""Benchmark: meta-training on 2 local workers sharing their students (executor.StudentPool) against 1, side by
side in one run, at the quick look's sizes (issue 34: every core busy).

    python scripts/bench_meta_parallel.py [--params params/tiny.yaml] [--steps N] [--null-steps N]   (make bench)

Workload: the quick look's meta-training -- one grounded run (`meta.teachers: [grounded]`) of the params' outer
steps after its tau-null steps (params/tiny.yaml: 3 + 8, each step's g*r = 32 inner-loop students; `--steps` and
`--null-steps` shorten it) --, into a fresh run directory per variant (the probe's hard sets are copied from one probe
run). Printed beside the speed-up: where each variant's time went (the null steps, each outer-step phase, the rest),
so the serial share -- the teacher's sampling and update, the model loading and the end diagnostics, which one run
cannot share -- is read off rather than guessed. Variants: workers 1 (every student in the run's
process, one after another) and workers 2 (the students shared by two processes). Printed: the wall time of each,
the speed-up (target >= 1.7x on an idle 2-core machine), and whether the metrics (metrics.jsonl without its
timings) are identical. The machine's load average is printed beside them: on a shared machine the ratio is only
as good as the cores were free.

The machine's own ceiling is measured first, side by side: the same fixed amount of small-matrix torch work (one
thread, the tiny model's sizes) in one process, then in two processes at once; 2 x t1 / t2 is what two processes can
gain on these two cores at best (2.0 on two free physical cores; less where the cores share a physical core or the
machine is loaded). Then the same for inner-loop students themselves (`run_student_job`, 8 in one process, then 8
in each of two at once, no queue between them): the most that sharing students between two processes can gain here,
memory traffic included. The meta-training speed-up is printed beside both and as a share of each.
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


def _torch_work(iterations: int) -> float:
    """A fixed amount of one-thread torch work shaped like the tiny model's (128-wide layers, forward and backward);
    returns its wall seconds."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    w = [torch.randn(128, 128, requires_grad=True) for _ in range(4)]
    x = torch.randn(256, 128)
    t0 = time.perf_counter()
    for _ in range(iterations):
        h = x
        for m in w:
            h = torch.tanh(h @ m)
        h.square().mean().backward()
    return time.perf_counter() - t0


def two_process_ceiling(iterations: int = 3000) -> tuple[float, float, float]:
    """(t1, t2, 2 * t1 / t2): the same work alone, then twice at once in two spawned processes."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_torch_work, [10, 10])  # imports and warm-up
        t1 = pool.apply(_torch_work, (iterations,))
        t0 = time.perf_counter()
        pool.map(_torch_work, [iterations, iterations], chunksize=1)
        t2 = time.perf_counter() - t0
    return t1, t2, 2 * t1 / t2


def _student_work(params: str, overrides: list[str], jobs: int) -> float:
    """`jobs` inner-loop students exactly as meta-training runs them (`run_student_job`: the baseline restored, the
    params' inner steps of RLOO on n hard-train questions, scored on M hard-train problems), one after another in
    this process; returns their wall seconds (the model's loading excluded)."""
    from soar_lite.models import snapshot
    from soar_lite.seeds import derive, stream_key
    from soar_lite.stages.common import hard_sets, load
    from soar_lite.student import RLItem, StudentJob, run_student_job

    cfg = load_config(params, overrides)
    policy, task = load(cfg)
    hard_train, _ = hard_sets(cfg)
    m, base = cfg.meta, snapshot(policy)
    q_r = hard_train[:m.M]
    t0 = time.perf_counter()
    for i in range(jobs):
        items = [RLItem(p.question, p.answer, stream_key("problem", p.id)) for p in hard_train[:m.n]]
        run_student_job(policy, task, StudentJob(baseline=base, items=items, steps=m.inner_steps,
                                                 seed=derive(cfg.seed, "meta_train", "bench_student", i), reward_problems=q_r,
                                                 decoding=m.reward_decoding, reward_samples=m.reward_samples,
                                                 eval_seed=derive(cfg.seed, "meta_train", "bench_score")),
                        m.student, cfg.model.gen_batch_size)
    return time.perf_counter() - t0


def student_ceiling(params: str, overrides: list[str], jobs: int = 8) -> tuple[float, float, float]:
    """(t1, t2, 2 * t1 / t2) for inner-loop students: `jobs` of them alone in one process, then `jobs` in each of two
    processes at once, no queue between them -- what sharing students can gain at most on this machine."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.starmap(_student_work, [(params, overrides, 1)] * 2, chunksize=1)  # imports, the model, warm-up
        t1 = pool.apply(_student_work, (params, overrides, jobs))
        t0 = time.perf_counter()
        pool.starmap(_student_work, [(params, overrides, jobs)] * 2, chunksize=1)
        t2 = time.perf_counter() - t0
    return t1, t2, 2 * t1 / t2


def metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "meta" / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "profile")} for r in rows]


PHASES = ("teacher_sample_s", "students_s", "promotion_s", "teacher_update_s")


def breakdown(cfg, total: float) -> dict[str, float]:
    """Where one variant's wall seconds went: the tau calibration's null steps (state.json), each outer-step phase
    summed over the steps (metrics.jsonl's profile), and the rest (loading the models, the base student's scores on
    hard-train, the end diagnostics, writing checkpoints)."""
    layout = cfg.layout.meta("grounded", 0)
    rows = [json.loads(line) for line in layout.metrics.read_text().splitlines()]
    state = json.loads(layout.state.read_text())
    out = {"tau null steps": sum(t.get("seconds", 0.0) for t in state.get("tau_stages", []))}
    for k in PHASES:
        out[k[:-2].replace("_", " ")] = sum(r["profile"].get(k, 0.0) for r in rows)
    out["the rest"] = total - sum(out.values())
    out["total"] = total
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--steps", type=int, default=None, help="outer steps (default: the params' meta.outer_steps)")
    ap.add_argument("--null-steps", type=int, default=None, help="tau-null steps (default: the params')")
    args = ap.parse_args()
    own = load_config(args.params, []).meta
    args.steps = own.outer_steps if args.steps is None else args.steps
    args.null_steps = own.tau_null_steps if args.null_steps is None else args.null_steps
    t1, t2, ceiling = two_process_ceiling()
    print(f"this machine's two-process ceiling: the same torch work alone {t1:.1f} s, twice at once {t2:.1f} s -> "
          f"{ceiling:.2f}x (load average {os.getloadavg()[0]:.1f})", flush=True)
    base = Path(tempfile.mkdtemp(prefix="bench_meta_"))
    common = ["meta.teachers=[grounded]", f"meta.outer_steps={args.steps}", f"meta.tau_null_steps={args.null_steps}",
              "meta.snr_draws=0"]
    cfg0 = load_config(args.params, [f"results_dir={base / 'probe'}", *common])
    probe.run(cfg0, log=lambda m: None)
    s1, s2, s_ceiling = student_ceiling(args.params, [f"results_dir={base / 'probe'}", *common])
    print(f"inner-loop students, two processes with no queue between them: 8 alone {s1:.1f} s, 8 in each at once "
          f"{s2:.1f} s -> {s_ceiling:.2f}x (load average {os.getloadavg()[0]:.1f})", flush=True)
    times, rows, parts = {}, {}, {}
    for workers in (1, 2):
        out = base / f"w{workers}"
        cfg = load_config(args.params, [f"results_dir={out}", f"executor.workers={workers}", *common])
        shutil.copytree(cfg0.run_dir / "probe", cfg.run_dir / "probe")
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        meta_train.run(cfg, log=lambda m: None)
        times[workers] = time.perf_counter() - t0
        rows[workers] = metrics(cfg.run_dir)
        parts[workers] = breakdown(cfg, times[workers])
        print(f"workers {workers}: {times[workers]:.1f} s (load average {load:.1f} at the start)", flush=True)
    print(f"meta-training, {args.null_steps} tau-null + {args.steps} outer steps of one grounded run at "
          f"{Path(args.params).name}'s sizes: workers 2 vs 1 speed-up {times[1] / times[2]:.2f}x (target 1.7x; "
          f"{times[1] / times[2] / ceiling:.0%} of the machine's {ceiling:.2f}x ceiling, "
          f"{times[1] / times[2] / s_ceiling:.0%} of its {s_ceiling:.2f}x for students); metrics identical: "
          f"{rows[1] == rows[2]}")
    print(f"{'where the time went':34s} {'workers 1':>10s} {'workers 2':>10s} {'ratio':>6s}")
    for k, v1 in parts[1].items():
        v2 = parts[2][k]
        print(f"  {k:32s} {v1:9.1f}s {v2:9.1f}s {v1 / v2 if v2 > 0 else float('nan'):6.2f}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
