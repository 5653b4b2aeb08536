"""Stage functions the notebooks call: each reads a `RunConfig`, computes, and writes its outputs into
the run directory (tables as CSV, artefacts as JSON/JSONL). Notebooks only call these and plot.

    probe        -> <run>/probe/hard_{train,test}.jsonl, tables/hard_sets.csv, tables/pass_at_k_by_level.csv
    meta_train   -> <run>/meta/metrics.jsonl, meta/pq.json, meta/promotions.json, meta/checkpoints/
    (evaluate and analyze live in evaluate_stage.py / analysis.py)
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .models import load_policy
from .probe import count_correct, find_hard_set, mean_pass_at_k
from .rundir import prepare, read_json, write_json
from .tasks import make_task
from .tasks.base import Problem

PAPER_TABLE2 = pd.DataFrame([
    {"pool": "MATH (test split)", "n_pool": 5000, "n_fail": 719, "n_train": 359, "n_test": 360},
    {"pool": "HARP", "n_pool": 4768, "n_fail": 1428, "n_train": 714, "n_test": 714},
    {"pool": "OlympiadBench", "n_pool": 674, "n_fail": 316, "n_train": 158, "n_test": 158},
])


def banner(cfg) -> str:
    """What runs, and every deviation from the paper (printed at the top of each notebook)."""
    lines = [f"run '{cfg.name}': task={cfg.task.name}, model={cfg.model.path}, seed={cfg.seed}"]
    if cfg.description:
        lines.append(cfg.description.strip())
    if cfg.deviations:
        lines.append("Deviations from the paper:")
        lines += [f"  - {d}" for d in cfg.deviations]
    return "\n".join(lines)


def setup(cfg, stage: str) -> Path:
    """Prepare the run directory and return the stage's folder."""
    d = prepare(cfg)
    out = d / stage
    out.mkdir(parents=True, exist_ok=True)
    return out


def load(cfg, seed: int | None = None):
    """(policy, task) for a config."""
    policy, task = load_policy(cfg.model, seed=cfg.seed if seed is None else seed), make_task(cfg.task)
    if hasattr(task, "bind_tokenizer"):
        task.bind_tokenizer(policy.tokenizer)
    return policy, task


def _problem_rows(problems: list[Problem]) -> list[dict]:
    return [{"id": p.id, "question": p.question, "answer": p.answer, "level": p.level, "meta": p.meta} for p in problems]


def save_problems(path: Path, problems: list[Problem]) -> None:
    write_json(path, _problem_rows(problems))


def load_problems_json(path: Path) -> list[Problem]:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} not found: run the earlier stage first (soar-lite run PARAMS --only probe)")
    return [Problem(r["id"], r["question"], r["answer"], r.get("level", ""), r.get("meta", {})) for r in read_json(path)]


def probe_pool(cfg, task) -> list[Problem]:
    probs = task.problems(cfg.probe.pool)
    return probs[: cfg.probe.limit] if cfg.probe.limit else probs


def run_probe(cfg, log=print) -> dict:
    """fail@k hard set (confirmed), split, saved; pass@k of the base model per difficulty level."""
    out = setup(cfg, "probe")
    policy, task = load(cfg)
    log(f"backend: {policy.backend} on {policy.device}")
    pool = probe_pool(cfg, task)
    t0 = time.time()
    hs = find_hard_set(policy, task, cfg.probe.pool, pool, cfg.probe.samples, cfg.probe.confirm_samples,
                       cfg.probe.temperature, cfg.probe.test_fraction, cfg.probe.split_seed, cfg.seed,
                       cfg.model.gen_batch_size)
    seconds = time.time() - t0
    save_problems(out / "hard_train.json", hs.train)
    save_problems(out / "hard_test.json", hs.test)
    pd.DataFrame({"id": [p.id for p in pool], "level": [p.level for p in pool], "first_correct": hs.first_counts})\
        .to_csv(out / "first_batch_counts.csv", index=False)
    table = pd.DataFrame([hs.row()])
    table.to_csv(cfg.run_dir / "tables" / "hard_sets.csv", index=False)
    n_first = int((hs.first_counts == 0).sum())
    summary = {"seconds": round(seconds, 1), "n_pool": len(pool), "fail_first_batch": n_first,
               "fail_both_batches": hs.n_fail, "leaked_in_confirmation": n_first - hs.n_fail,
               "n_train": len(hs.train), "n_test": len(hs.test), "split_seed": cfg.probe.split_seed}
    levels = None
    if cfg.probe.level_pool:
        levels = pass_at_k_by_level(cfg, policy, task)
        levels.to_csv(cfg.run_dir / "tables" / "pass_at_k_by_level.csv", index=False)
    write_json(out / "summary.json", summary)
    return {"table": table, "summary": summary, "levels": levels, "hard_set": hs}


def pass_at_k_by_level(cfg, policy, task, ks=(1, 4, 8, 16, 32)) -> pd.DataFrame:
    """The base model's pass@k per difficulty level on the level pool."""
    probs = task.problems(cfg.probe.level_pool)
    if cfg.probe.level_limit:
        rng = np.random.default_rng(cfg.seed)
        probs = [probs[i] for i in sorted(rng.choice(len(probs), min(cfg.probe.level_limit, len(probs)), replace=False))]
    counts = count_correct(policy, task, probs, cfg.probe.level_samples, cfg.probe.temperature, cfg.seed + 1,
                           cfg.model.gen_batch_size)
    ks = [k for k in ks if k <= cfg.probe.level_samples]
    rows = []
    for level in sorted({p.level for p in probs}, key=_level_key):
        c = [int(n) for p, n in zip(probs, counts) if p.level == level]
        for k, v in mean_pass_at_k(c, cfg.probe.level_samples, ks).items():
            rows.append({"level": level, "n": len(c), "k": k, "pass_at_k": v})
    return pd.DataFrame(rows)


def _level_key(level: str):
    digits = "".join(ch for ch in str(level) if ch.isdigit())
    return (int(digits) if digits else 10**6, str(level))


def hard_sets(cfg) -> tuple[list[Problem], list[Problem]]:
    d = cfg.run_dir / "probe"
    return load_problems_json(d / "hard_train.json"), load_problems_json(d / "hard_test.json")


# ---- meta-training -----------------------------------------------------------------------------
def run_meta_train(cfg, resume: bool = False, log=print, reward: str | None = None, subdir: str = "meta") -> dict:
    """Algorithm 1 on hard-train; `reward='intrinsic'` runs the Intrinsic-T teacher into `subdir`."""
    import dataclasses

    from .soar import MetaTrainer

    if reward is not None:
        cfg = dataclasses.replace(cfg, meta=dataclasses.replace(cfg.meta, reward=reward))
    out = setup(cfg, subdir)
    hard_train, _ = hard_sets(cfg)
    trainer = MetaTrainer(cfg, make_task(cfg.task), hard_train, out, log=log)
    t0 = time.time()
    rows = trainer.run(resume=resume)
    return {"metrics": pd.DataFrame(rows), "trainer": trainer, "seconds": time.time() - t0}


def meta_outputs(cfg, subdir: str = "meta") -> dict:
    """Read what meta-training wrote (for notebooks 03/04, which may run in a fresh kernel)."""
    from .rundir import read_jsonl

    d = cfg.run_dir / subdir
    return {"metrics": pd.DataFrame(read_jsonl(d / "metrics.jsonl")),
            "pq": read_json(d / "pq.json") if (d / "pq.json").exists() else [],
            "promotions": read_json(d / "promotions.json") if (d / "promotions.json").exists() else [],
            "dir": d}


TEACHERS = {"base-t": None, "grounded-t": "meta", "intrinsic-t": "meta_intrinsic"}  # set -> meta-training subdir


def trained_teacher_path(cfg, sub: str) -> Path:
    """The checkpoint a trained teacher is sampled from: Grounded-T at evaluate.teacher_step (paper: step 170
    for HARP, 200 for MATH), else the last step; Intrinsic-T at its last step ("trained 200 steps", §3)."""
    from .soar import teacher_snapshot_name

    ckpt = cfg.run_dir / sub / "checkpoints"
    if sub == TEACHERS["grounded-t"] and cfg.evaluate.teacher_step:
        return ckpt / teacher_snapshot_name(cfg.evaluate.teacher_step)
    return ckpt / "teacher.pt"


def teacher_question_sets(cfg, policy, task, base, n: int, seed_base: int, seed_trained: int) -> dict:
    """`n` format-valid QA pairs from each teacher: the untrained model (base-t, sampled with `seed_base`)
    and the teachers meta-training saved (grounded-t, intrinsic-t, sampled with `seed_trained`); a teacher
    without a checkpoint is absent from the result. Leaves `policy` holding `base`."""
    from .models import load_snapshot, restore
    from .soar import sample_questions

    sets = {}
    for name, sub in TEACHERS.items():
        ckpt = None if sub is None else trained_teacher_path(cfg, sub)
        if ckpt is not None and not ckpt.exists():
            if ckpt.name != "teacher.pt" and ckpt.with_name("teacher.pt").exists():
                raise FileNotFoundError(f"{ckpt} is missing: the run has not reached evaluate.teacher_step="
                                        f"{cfg.evaluate.teacher_step} (or was trained without it in meta.teacher_snapshots)")
            continue
        restore(policy, base if ckpt is None else load_snapshot(ckpt))
        sets[name] = sample_questions(policy, task, n, seed_base if ckpt is None else seed_trained,
                                      batch_size=cfg.model.gen_batch_size)
    restore(policy, base)
    return sets


def promotion_stage_table(cfg, outputs: dict) -> pd.DataFrame:
    """Stage 0 (base student) and each promotion: greedy accuracy of the baseline on all of hard-train."""
    state_path = outputs["dir"] / "checkpoints" / "state.json"
    initial = read_json(state_path).get("initial_hard_train_acc") if state_path.exists() else None
    rows = [{"stage": 0, "step": 0, "hard_train_greedy_acc": initial}]
    rows += [{"stage": i + 1, "step": p["step"], "hard_train_greedy_acc": p["hard_train_greedy_acc"]}
             for i, p in enumerate(outputs["promotions"])]
    return pd.DataFrame(rows)


def dump_json(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
