"""Benchmark: the speed switches of the student path against the old path, side by side in one run.

    python scripts/bench.py [--params params/tiny.yaml] [--repeats 3]      (make bench)

Workloads at the params file's sizes, on the shipped tiny model with a non-zero adapter:
  inner loop   one inner-loop student: meta.inner_steps RLOO steps on a 64-question teacher dataset, then its
               score on Q_R (M hard-train questions, meta.reward_decoding) -- `student.run_student_job`;
  evaluation   one pass@k evaluation of a student: hard-test x evaluate.samples at T=1 -- `evaluate.test_pass_at_k`;
  teacher      one teacher sampling call: g*n format-valid pairs -- `teacher.sample_qa_pairs`.
Variants: old (every switch off), each switch alone, all on (the default). The variants of a workload run
interleaved, `--repeats` rounds, and the median time of each is compared with old's median (ratio > 1 = faster).
Achieved GFLOP/s on real tokens is printed beside a large sgemm measured in the same run: 2N per forward token
(prefill, generated, scored), 6N per trained token (forward 2N + backward 2N -- the frozen base weights need
input gradients only, LoRA's own weight gradients are small -- + the KL reference forward 2N), N = every
parameter of the model (base + LoRA); attention's own FLOPs are not counted (short sequences). Every variant's outputs are
compared with old's (sampled rows identical; trained adapter and score within float tolerance).
"""
import argparse
import statistics
import time

import torch

from soar_lite.config import load_config
from soar_lite.evaluate import test_pass_at_k
from soar_lite.models import load_policy, restore, snapshot
from soar_lite.profile import tally
from soar_lite.rundir import RunLayout
from soar_lite.seeds import derive
from soar_lite.teacher import sample_qa_pairs
from soar_lite.stages.common import load_problems
from soar_lite.student import RLItem, StudentJob, reward_questions, run_student_job
from soar_lite.tasks import make_task

VARIANTS = {  # (merge_for_inference, compact_rows, sorted_micro_batch)
    "old": (False, False, 0),
    "merge": (True, False, 0),
    "compact": (False, True, 0),
    "sort": (False, False, 32),
    "all": (True, True, 32),
}


def sgemm_gflops(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hard-sets", default="results/tiny", help="a run directory whose probe/ holds the hard sets")
    ap.add_argument("--sort-sizes", default="", help="extra length-sorted micro-batch sizes to try with every other "
                                                     "switch on, e.g. 16,64")
    a = ap.parse_args()
    for size in filter(None, a.sort_sizes.split(",")):
        VARIANTS[f"all/{size}"] = (True, True, int(size))
    cfg = load_config(a.params)
    torch.set_num_threads(cfg.model.threads)
    policy, task = load_policy(cfg.model, seed=cfg.seed), make_task(cfg.task)
    task.bind_tokenizer(policy.tokenizer)
    n_params = sum(p.numel() for p in policy.model.parameters())
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: B != 0, so merging does real work
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    start = snapshot(policy)
    layout = RunLayout(a.hard_sets)
    hard_train, hard_test = load_problems(layout.hard_train), load_problems(layout.hard_test)
    m, bs = cfg.meta, cfg.model.gen_batch_size
    pairs = sample_qa_pairs(policy, task, m.n, stream=lambda r: (f"bench{r}", derive(cfg.seed, "meta_train", "bench", r)),
                            batch_size=bs).pairs
    items = [RLItem(qa.question, qa.answer, f"b{i}") for i, qa in enumerate(pairs)]
    q_r = reward_questions(hard_train, m.M, derive(cfg.seed, "meta_train", "bench", "qr"))

    def inner_loop():
        job = StudentJob(baseline=start, items=items, steps=m.inner_steps, seed=derive(cfg.seed, "meta_train", "bench", "student"),
                         reward_problems=q_r, decoding=m.reward_decoding, reward_samples=m.reward_samples,
                         eval_seed=derive(cfg.seed, "meta_train", "bench", "eval"))
        res = run_student_job(policy, task, job, m.student, bs)
        return res.trained, res.score

    def evaluation():
        restore(policy, start)
        return test_pass_at_k(policy, task, hard_test, samples=cfg.evaluate.samples, ks=cfg.evaluate.ks,
                              seed=derive(cfg.seed, "meta_train", "bench", "test"), batch_size=bs)

    def teacher():
        restore(policy, start)
        s = sample_qa_pairs(policy, task, m.g * m.n, stream=lambda r: (f"t{r}", derive(cfg.seed, "meta_train", "bench", "t", r)),
                            batch_size=bs)
        return s.completion_ids

    print(f"{a.params}: {n_params:,} parameters, {cfg.model.threads} thread(s); inner loop = {m.inner_steps} RLOO steps x "
          f"{m.student.batch_questions}x{m.student.group_size} + Q_R {len(q_r)} ({m.reward_decoding}); evaluation = "
          f"{len(hard_test)} x {cfg.evaluate.samples}; teacher = {m.g * m.n} pairs")
    peak = sgemm_gflops()
    print(f"large sgemm (1024^3, fp32): {peak:.1f} GFLOP/s")
    for name, fn in (("inner loop", inner_loop), ("evaluation", evaluation), ("teacher", teacher)):
        times = {v: [] for v in VARIANTS}
        outputs, work = {}, {}
        for _ in range(a.repeats):
            for v, (merge, compact, sort) in VARIANTS.items():
                policy.merge_for_inference, policy.compact_rows, policy.sorted_micro_batch = merge, compact, sort
                with tally() as w:
                    t = time.perf_counter()
                    outputs[v] = fn()
                    times[v].append(time.perf_counter() - t)
                work[v] = w
        base = statistics.median(times["old"])
        print(f"\n{name}: median of {a.repeats} (s), ratio old/variant, achieved GFLOP/s on real tokens, same output")
        for v in VARIANTS:
            t, w = statistics.median(times[v]), work[v]
            flops = 2 * n_params * (w.gen_tokens + w.gen_prompt_tokens + w.score_tokens) + 6 * n_params * w.train_tokens
            print(f"  {v:8s} {t:7.2f}  x{base / t:5.2f}  {flops / t / 1e9:6.2f} GFLOP/s ({flops / t / 1e9 / peak:5.1%} of sgemm)"
                  f"  {same(outputs['old'], outputs[v])}")
    restore(policy, start)


def same(a, b) -> str:
    if isinstance(a, tuple):  # (trained snapshot, score)
        diff = max(float((a[0][k] - b[0][k]).abs().max()) for k in a[0])
        return f"adapter max |diff| {diff:.1e}, score {a[1]:.6f} vs {b[1]:.6f}"
    if isinstance(a, dict):
        return "pass@k identical" if a == b else f"pass@k {a} vs {b}"
    return "rows identical" if a == b else f"rows identical {sum(x == y for x, y in zip(a, b))}/{len(a)}"


if __name__ == "__main__":
    main()
