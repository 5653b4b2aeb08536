"""Stage `evaluate` (notebook 04): every method evaluated the same way (paper §2.9, §3, Tables 4-6).

Methods (names as in tables/pass_at_k.csv):
    base-model   the untrained student sampled on hard-test (inference seeds)
    hard-only    fresh student, RLOO on hard-train only
    soar-pq      fresh student on the Promotion Questions + hard-train
    soar-ps      the promoted student with the best hard-train greedy accuracy, inference only
    grounded-t   fresh student on n questions sampled from the trained (grounded) teacher + hard-train
    base-t       same, questions from the untrained model
    intrinsic-t  same, questions from the teacher meta-trained with the learnability reward
    curated      fresh student on real easier problems (`Task.curated_pool`: the tiny world's oracle stepping
                 stones; MATH train for the math worlds) + hard-train, the upper bound
Each fresh student (`soar_lite.evaluate.train_fresh_student`): pass@k on hard-test over training, the stop
step from the training reward (App. B.8), pass@k averaged over the window after it. A method whose inputs do
not exist (no promotion -> no PQ/PS) is reported as skipped, with the reason.

Writes tables/pass_at_k.csv, tables/curves.csv, evaluate/stops.csv, evaluate/summary.json.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..evaluate import summarize, test_pass_at_k, train_fresh_student
from ..models import load_snapshot, restore, snapshot
from ..rundir import write_json, write_table
from ..student import RLItem
from . import meta_train
from .common import hard_sets, load, open_run, teacher_question_sets

INFERENCE_METHODS = ("base-model", "soar-ps")


@dataclass
class EvaluateResult:
    table: pd.DataFrame  # method, seed, k, pass_at_k (the window mean after the stop step)
    curves: pd.DataFrame  # step, k, pass_at_k, method, seed (hard-test over training)
    stops: pd.DataFrame  # method, seed, stop_step, train_reward_last
    skipped: dict[str, str]  # method -> why it was not evaluated
    timings: dict[str, float]  # method -> seconds
    n_questions: dict[str, int]  # method -> size of its synthetic question set
    ps_stage: int | None  # the promotion stage SOAR-PS evaluates


def curated_items(task, count: int, seed: int) -> list[RLItem]:
    """Real easier problems from the task's curated pool: all of it, or `count` sampled (Table 4's MATH train (128))."""
    pool = task.problems(task.curated_pool)
    count = 0 if task.curated_all else count
    rng = np.random.default_rng(seed)
    pick = pool if count <= 0 or count >= len(pool) else [pool[i] for i in rng.choice(len(pool), count, replace=False)]
    return [RLItem(p.question, p.answer, f"cur-{p.id}") for p in pick]


def question_sets(cfg, policy, task, base_snapshot) -> tuple[dict[str, list[RLItem]], dict[str, str]]:
    """The synthetic question set of each method and the reasons for the ones that cannot run."""
    n, seed = cfg.evaluate.n_questions, cfg.seed
    sets, skipped = {"hard-only": [], "curated": curated_items(task, n, seed)}, {}
    sampled = teacher_question_sets(cfg, policy, task, base_snapshot, n, seed + 11, seed + 13)
    for method, prefix in (("base-t", "bt"), ("grounded-t", "gr"), ("intrinsic-t", "in")):
        if method in sampled:
            sets[method] = [RLItem(qa.question, qa.answer, f"{prefix}{i}") for i, qa in enumerate(sampled[method])]
        else:
            skipped[method] = f"no trained teacher in {cfg.layout.meta(meta_train.TEACHER_REWARD[method]).dir}"
    pq = meta_train.read(cfg).pq
    if pq:
        sets["soar-pq"] = [RLItem(r["question"], r["answer"], f"pq{i}") for i, r in enumerate(pq)]
    else:
        skipped["soar-pq"] = "meta-training made no promotion: PQ is empty"
    return sets, skipped


def best_promoted_student(cfg):
    """Paper §2.9: the promoted student with the best hard-train greedy accuracy ((None, None) without promotions)."""
    proms = meta_train.read(cfg).promotions
    if not proms:
        return None, None
    best = int(np.argmax([p["hard_train_greedy_acc"] for p in proms]))
    return load_snapshot(cfg.layout.meta().promoted(best + 1)), best + 1


def run(cfg, log=print) -> EvaluateResult:
    layout = open_run(cfg)
    ecfg = cfg.evaluate
    policy, task = load(cfg)
    base = snapshot(policy)
    hard_train, hard_test = hard_sets(cfg)
    real = [RLItem(p.question, p.answer, p.id) for p in hard_train]
    sets, skipped = question_sets(cfg, policy, task, base)
    ps, ps_stage = best_promoted_student(cfg)
    if ps is None:
        skipped["soar-ps"] = "meta-training made no promotion: no promoted student"
    finals, curves, stops, timings = [], [], [], {}
    for method in ecfg.methods:
        if method in skipped:
            log(f"{method}: skipped ({skipped[method]})")
            continue
        t0 = time.time()
        for seed in range(ecfg.seeds):
            if method in INFERENCE_METHODS:
                restore(policy, base if method == "base-model" else ps)
                pk = test_pass_at_k(policy, task, hard_test, samples=ecfg.samples, ks=ecfg.ks,
                                    seed=cfg.seed + 1000 + seed, batch_size=cfg.model.gen_batch_size)
                finals += [{"method": method, "seed": seed, "k": k, "pass_at_k": v} for k, v in pk.items()]
                continue
            curve, rewards = train_fresh_student(policy, task, base, synthetic=sets[method], hard_train=real,
                                                 test_problems=hard_test, ecfg=ecfg, seed=cfg.seed + seed,
                                                 batch_size=cfg.model.gen_batch_size)
            stop, window = summarize(curve, rewards, ecfg)
            curve["method"], curve["seed"] = method, seed
            curves.append(curve)
            stops.append({"method": method, "seed": seed, "stop_step": stop,
                          "train_reward_last": float(np.mean(rewards[-10:]))})
            finals += [{"method": method, "seed": seed, "k": int(k), "pass_at_k": float(v)} for k, v in window.items()]
        timings[method] = round(time.time() - t0, 1)
        log(f"{method}: {timings[method]} s")
    table = pd.DataFrame(finals)
    write_table(table, layout.table("pass_at_k"))
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    write_table(curves, layout.table("curves"))
    stops = pd.DataFrame(stops)
    write_table(stops, layout.stops)
    n_questions = {m: len(v) for m, v in sets.items()}
    write_json(layout.summary("evaluate"), {"skipped": skipped, "timings_s": timings, "ps_stage": ps_stage,
                                            "n_questions": n_questions})
    return EvaluateResult(table=table, curves=curves, stops=stops, skipped=skipped, timings=timings,
                          n_questions=n_questions, ps_stage=ps_stage)


# Paper Tables 4/5 (pass@k %, mean ± SD), the cells our methods map to.
PAPER_TABLES = {
    "MATH (Table 4)": {
        "base-model": "0.3±0.1 1.0±0.2 2.0±0.4 3.9±0.8 7.5±1.3", "hard-only": "0.5±0.1 1.7±0.4 3.2±0.8 5.7±1.5 9.6±2.6",
        "soar-pq": "1.7±1.0 5.3±2.6 8.5±3.7 13.0±4.8 18.9±5.3", "soar-ps": "1.0±0.2 3.8±0.6 6.8±1.1 11.5±1.6 18.1±2.4",
        "grounded-t": "1.6±0.5 5.1±1.4 8.4±2.1 13.1±2.9 19.1±3.7", "intrinsic-t": "1.0±0.6 3.3±2.1 5.7±3.5 9.2±5.3 14.1±7.5",
        "curated": "2.1±0.0 6.6±0.1 10.5±0.3 15.7±0.5 21.8±0.9",
    },
    "HARP (Table 5)": {
        "base-model": "0.2±0.0 0.9±0.0 1.7±0.0 3.4±0.0 6.4±0.0", "hard-only": "0.4±0.1 1.4±0.2 2.6±0.4 4.7±0.6 8.2±1.0",
        "soar-pq": "0.7±0.3 2.5±0.8 4.5±1.3 7.7±1.7 12.3±2.0", "soar-ps": "0.6±0.1 2.1±0.3 3.9±0.6 7.0±0.9 11.8±1.2",
        "grounded-t": "0.5±0.2 2.0±0.5 3.8±0.9 6.7±1.3 11.2±1.7", "intrinsic-t": "0.4±0.1 1.6±0.5 3.1±0.8 5.6±1.4 9.6±2.1",
        "curated": "0.6±0.1 2.1±0.4 4.0±0.7 7.1±0.9 11.9±0.9",
    },
}


def paper_table(name: str) -> pd.DataFrame:
    """A paper table as a DataFrame (rows: our method names; curated = the paper's 'MATH train (128)' row,
    which is what our math-world curated arm samples; base-t is not reported in the paper's tables)."""
    rows = {m: dict(zip([1, 4, 8, 16, 32], v.split())) for m, v in PAPER_TABLES[name].items()}
    return pd.DataFrame(rows).T
