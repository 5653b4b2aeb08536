"""Notebook 04's computation: labels, error taxonomy, diversity, and the well-posed vs correct-only ablation.

Writes tables/question_labels.csv (set, n, well_posed_share, correct_share, <error>_share ...),
tables/vendi.csv (set, vendi_mean, vendi_sd), tables/diversity_over_training.csv and
tables/wellposed_ablation.csv (method, seed, k, pass_at_k).
The ablation (paper v3 Fig. 15, App. C.5) uses PQ; when meta-training made no promotion it uses the
Grounded-T sample instead and says so.
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from .analysis import (JudgeCache, bootstrap_vendi, embed, judge_pairs, label_summary, label_tiny, make_judge,
                       mean_pairwise_cosine_distance)
from .evaluate import summarize, train_fresh_student
from .models import snapshot
from .pipeline import hard_sets, load, meta_outputs, setup, teacher_question_sets
from .rundir import read_jsonl, write_json
from .student import RLItem


def question_sets(cfg, policy, task, base) -> dict[str, list[tuple[str, str]]]:
    """(question, answer) pairs per set: base-t, intrinsic-t, grounded-t (`analyze.n_questions` sampled from
    each teacher), pq (all Promotion Questions of meta-training)."""
    sampled = teacher_question_sets(cfg, policy, task, base, cfg.analyze.n_questions, cfg.seed + 21, cfg.seed + 23)
    sets = {name: [(qa.question, qa.answer) for qa in sampled[name]]
            for name in ("base-t", "intrinsic-t", "grounded-t") if name in sampled}
    sets["pq"] = [(r["question"], r["answer"]) for r in meta_outputs(cfg)["pq"]]
    return sets


def labels_for(cfg, task, pairs) -> tuple[list[dict], int]:
    if cfg.analyze.judge == "exact":
        if cfg.task.name != "tiny":
            raise ValueError("analyze.judge 'exact' exists only for the tiny world: name an LLM judge (openai:/hf:)")
        return [label_tiny(task, q, a) for q, a in pairs], 0
    cache = JudgeCache(cfg.run_dir / "analyze" / cfg.analyze.judge_cache)
    return judge_pairs(pairs, cfg.analyze.judge, make_judge(cfg.analyze.judge, cfg.analyze.judge_base_url), cache)


def embedder_for(cfg) -> str:
    if cfg.analyze.embedder != "auto":
        return cfg.analyze.embedder
    return "char-ngram" if cfg.task.name == "tiny" else "minilm"


def diversity_over_training(cfg, embedder: str) -> pd.DataFrame:
    """Mean pairwise cosine distance of each outer step's teacher questions (Fig. 17b/20b)."""
    rows = []
    for name, sub in (("grounded", "meta"), ("intrinsic", "meta_intrinsic")):
        for r in read_jsonl(cfg.run_dir / sub / "metrics.jsonl"):
            if r.get("questions"):
                rows.append({"teacher": name, "step": r["step"],
                             "mean_pairwise_cosine_distance": mean_pairwise_cosine_distance(embed(r["questions"], embedder)),
                             "reward_mean": r["reward_mean"]})
    return pd.DataFrame(rows)


def wellposed_ablation(cfg, policy, task, base, pairs, labels, source: str, log=print) -> pd.DataFrame:
    """Fresh students on hard-train + correct-only vs + all well-posed questions (mixed, 3 seeds)."""
    hard_train, hard_test = hard_sets(cfg)
    real = [RLItem(p.question, p.answer, p.id) for p in hard_train]
    arms = {
        f"correct-only {source}": [RLItem(q, a, f"c{i}") for i, ((q, a), l) in enumerate(zip(pairs, labels)) if l["is_correct"]],
        f"well-posed {source}": [RLItem(q, a, f"w{i}") for i, ((q, a), l) in enumerate(zip(pairs, labels)) if l["is_well_posed"]],
        "hard-only": [],
    }
    ecfg = dataclasses.replace(cfg.evaluate, mode="mixed")
    rows = []
    for arm, items in arms.items():
        for seed in range(ecfg.seeds):
            curve, rewards = train_fresh_student(policy, task, base, items, real, hard_test, ecfg, cfg.seed + seed,
                                                 cfg.model.gen_batch_size)
            _, window = summarize(curve, rewards, ecfg)
            rows += [{"method": arm, "n_questions": len(items), "seed": seed, "k": int(k), "pass_at_k": float(v)}
                     for k, v in window.items()]
        log(f"{arm}: {len(items)} questions done")
    return pd.DataFrame(rows)


def run_analyze(cfg, log=print) -> dict:
    out = setup(cfg, "analyze")
    policy, task = load(cfg)
    base = snapshot(policy)
    sets = question_sets(cfg, policy, task, base)
    labels, summaries, calls = {}, [], 0
    for name, pairs in sets.items():
        labels[name], c = labels_for(cfg, task, pairs)
        calls += c
        summaries.append(label_summary(name, labels[name]))
    table = pd.DataFrame(summaries)
    table.to_csv(cfg.run_dir / "tables" / "question_labels.csv", index=False)
    pd.DataFrame([{"set": s, "question": q, "answer": a, **l} for s in sets for (q, a), l in zip(sets[s], labels[s])])\
        .to_csv(out / "labels.csv", index=False)
    embedder = embedder_for(cfg)
    vendi = []
    for name, pairs in sets.items():
        if len(pairs) >= 2:
            m, sd = bootstrap_vendi(embed([q for q, _ in pairs], embedder), cfg.analyze.vendi_subsample,
                                    cfg.analyze.vendi_bootstrap, cfg.seed)
            vendi.append({"set": name, "vendi_mean": m, "vendi_sd": sd})
    vendi = pd.DataFrame(vendi)
    vendi.to_csv(cfg.run_dir / "tables" / "vendi.csv", index=False)
    div = diversity_over_training(cfg, embedder)
    div.to_csv(cfg.run_dir / "tables" / "diversity_over_training.csv", index=False)
    source = "pq" if sets["pq"] else "grounded-t"
    if source == "grounded-t" and "grounded-t" not in sets:
        source = "base-t"
    ablation = wellposed_ablation(cfg, policy, task, base, sets[source], labels[source], source, log)
    ablation.to_csv(cfg.run_dir / "tables" / "wellposed_ablation.csv", index=False)
    write_json(out / "summary.json", {"judge_calls": calls, "embedder": embedder, "ablation_source": source,
                                      "set_sizes": {k: len(v) for k, v in sets.items()}})
    return {"labels": table, "vendi": vendi, "diversity": div, "ablation": ablation, "judge_calls": calls,
            "embedder": embedder, "ablation_source": source, "pairs": sets, "pair_labels": labels}
