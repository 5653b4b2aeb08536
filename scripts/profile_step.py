"""Where the quick look's time goes (issue 34, item 2): one outer step of meta-training and one evaluation student,
phase by phase, at a params file's sizes, in one process (workers 1).

    python scripts/profile_step.py [--params params/tiny.yaml]

Outer step (the grounded teacher, after a fresh probe of the params' pool into a temporary folder; tau fixed so
that no null is measured): the phases `MetaTrainer` records in each step's profile -- teacher sampling, the g*r
students (the baseline's score, every student's RLOO steps and score on Q_R), promotion, teacher update with the
collapse guard's probes -- and the tokens and seconds per kind of work (generation, training, scoring).
Evaluation student: one Hard-Only fresh student at `evaluate` sizes; the time in its hard-test evaluations
(`evaluate.test_pass_at_k`, every eval_every steps) against the rest (its RLOO training).
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

from soar_lite import evaluate as fresh
from soar_lite.config import load_config
from soar_lite.stages import meta_train, probe
from soar_lite.stages.common import hard_sets, load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params/tiny.yaml")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="profile_step_"))
    cfg = load_config(args.params, [f"results_dir={out}", "meta.teachers=[grounded]", "meta.outer_steps=1",
                                    "meta.tau=1.0", "meta.tau_null_steps=0", "executor.workers=1"])
    probe.run(cfg, log=lambda m: None)
    meta_train.run(cfg, log=lambda m: None)
    row = json.loads((cfg.layout.meta("grounded", 0).metrics).read_text().splitlines()[0])
    prof, total = row["profile"], row["seconds"]
    print(f"one outer step at {Path(args.params).name}'s sizes (g x n x r = {cfg.meta.g} x {cfg.meta.n} x "
          f"{cfg.meta.r}, {row['inner_steps']} inner steps): {total:.1f} s")
    for k in ("teacher_sample_s", "students_s", "promotion_s", "teacher_update_s"):
        print(f"  {k[:-2]:16s} {prof.get(k, 0):7.1f} s  {100 * prof.get(k, 0) / total:5.1f}%")
    print(f"  by kind of work: generation {prof['gen_s']:.1f} s ({prof['gen_tokens']:,} tokens), training "
          f"{prof['train_s']:.1f} s ({prof['train_tokens']:,}), scoring {prof['score_s']:.1f} s ({prof['score_tokens']:,})")

    policy, task = load(cfg)
    from soar_lite.models import snapshot
    from soar_lite.seeds import derive, stream_key
    from soar_lite.student import RLItem

    base = snapshot(policy)
    hard_train, hard_test = hard_sets(cfg)
    real = [RLItem(p.question, p.answer, stream_key("problem", p.id)) for p in hard_train]
    spent = {"evaluation": 0.0}
    original = fresh.test_pass_at_k

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            spent["evaluation"] += time.perf_counter() - t0

    fresh.test_pass_at_k = timed
    t0 = time.perf_counter()
    fresh.train_fresh_student(policy, task, base, synthetic=[], hard_train=real, test_problems=hard_test,
                              ecfg=cfg.evaluate, seed_of=lambda role, *i: derive(cfg.seed, "evaluate", role, 0, *i),
                              batch_size=cfg.model.gen_batch_size)
    total = time.perf_counter() - t0
    fresh.test_pass_at_k = original
    e = cfg.evaluate
    print(f"one Hard-Only evaluation student ({e.steps} RL steps, hard-test x {e.samples} samples every "
          f"{e.eval_every} steps): {total:.1f} s -- evaluation sampling {spent['evaluation']:.1f} s "
          f"({100 * spent['evaluation'] / total:.0f}%), training {total - spent['evaluation']:.1f} s")


if __name__ == "__main__":
    main()
