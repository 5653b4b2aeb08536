"""Benchmark: the students' token log-probabilities through TRL's selective_log_softmax (what soar_lite uses) against
the plain gather - logsumexp it replaced, side by side in one run (issue 33, item 7: does trl earn its place?).

    python scripts/bench_trl_logprobs.py [--params params/tiny.yaml] [--repeats 5]

Workload: one inner-loop student (`student.run_student_job`: meta.inner_steps RLOO steps on a 64-question
dataset, then its score on M hard-train questions) on the shipped tiny model -- the unit meta-training repeats g*r
times per outer step. The two variants run interleaved; the median time of each is printed with their ratio, and
the trained adapters are compared (they must be equal: on CPU the two forms are the same arithmetic).
"""
import argparse
import statistics
import time

import torch

from soar_lite.config import load_config
from soar_lite.models import load_policy, snapshot
from soar_lite.seeds import derive
from soar_lite.student import RLItem, StudentJob, run_student_job
from soar_lite.tasks import make_task


def plain(logits, targets):
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.params)
    task = make_task(cfg.task)
    policy = load_policy(cfg.model, seed=0)
    base = snapshot(policy)
    world = task.world
    problems = [world.problem(x, d) for x, d in world.hard_candidates[:64]]
    items = [RLItem(p.question, p.answer, f"q{i}") for i, p in enumerate(problems)]
    job = StudentJob(baseline=base, items=items, steps=cfg.meta.inner_steps, seed=derive(0, "meta_train", "bench"),
                     reward_problems=problems[: cfg.meta.M], decoding=cfg.meta.reward_decoding)
    import trl.trainer.utils as trl_utils

    variants = {"trl": trl_utils.selective_log_softmax, "plain": plain}
    times, adapters = {v: [] for v in variants}, {}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            trl_utils.selective_log_softmax = fn  # completion_logprobs imports it from trl at call time
            t0 = time.perf_counter()
            res = run_student_job(policy, task, job, cfg.meta.student, cfg.model.gen_batch_size)
            times[name].append(time.perf_counter() - t0)
            adapters[name] = res.trained
    trl_utils.selective_log_softmax = variants["trl"]
    same = all(torch.equal(adapters["trl"][k], adapters["plain"][k]) for k in adapters["trl"])
    med = {v: statistics.median(t) for v, t in times.items()}
    print(f"one inner-loop student ({cfg.meta.inner_steps} RLOO steps, {len(items)} questions, tiny model, 1 thread), "
          f"median of {args.repeats}: trl {med['trl']:.2f} s, plain {med['plain']:.2f} s, plain/trl = "
          f"{med['plain'] / med['trl']:.3f}; trained adapters identical: {same}")


if __name__ == "__main__":
    main()
