"""Stage `analyze` (notebook 05): labels, error taxonomy, diversity, and the well-posed vs correct-only ablation
(paper §5, Tables 1 and 7, v3 Fig. 15, Fig. 17/20). The metrics are in `soar_lite.analysis`.

Writes tables/question_labels.csv (set, n, well_posed_share, correct_share, <error>_share ...),
tables/vendi.csv (set, vendi_mean, vendi_sd), tables/diversity_over_training.csv,
tables/wellposed_ablation.csv (method, n_questions, seed, k, pass_at_k), analyze/labels.csv, analyze/summary.json.
The ablation (paper v3 Fig. 15, App. C.5) uses PQ; when meta-training made no promotion it uses the
Grounded-T sample instead (Base-T without a trained teacher) and says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..analysis import (JudgeCache, bootstrap_vendi, embed, judge_pairs, label_summary, make_judge,
                        mean_pairwise_cosine_distance)
from ..evaluate import summarize, train_fresh_student
from ..models import snapshot
from ..rundir import read_jsonl, write_json, write_table
from ..student import RLItem
from . import meta_train
from .common import hard_sets, load, open_run, teacher_question_sets


@dataclass
class AnalyzeResult:
    labels: pd.DataFrame  # Table 7 analogue: one row per question set
    vendi: pd.DataFrame  # Table 1 analogue
    diversity: pd.DataFrame  # teacher, step, mean_pairwise_cosine_distance, reward_mean (Fig. 17b/20b)
    ablation: pd.DataFrame  # method, n_questions, seed, k, pass_at_k (v3 Fig. 15)
    judge_calls: int
    embedder: str
    ablation_source: str  # the question set the ablation filtered: pq, grounded-t or base-t


def question_sets(cfg, policy, task, base) -> dict[str, list[tuple[str, str]]]:
    """(question, answer) pairs per set: base-t, intrinsic-t, grounded-t (`analyze.n_questions` sampled from
    each teacher), pq (all Promotion Questions of meta-training)."""
    sampled = teacher_question_sets(cfg, policy, task, base, cfg.analyze.n_questions, cfg.seed + 21, cfg.seed + 23)
    sets = {name: [(qa.question, qa.answer) for qa in sampled[name]]
            for name in ("base-t", "intrinsic-t", "grounded-t") if name in sampled}
    sets["pq"] = [(r["question"], r["answer"]) for r in meta_train.read(cfg).pq]
    return sets


def labels_for(cfg, task, pairs) -> tuple[list[dict], int]:
    """Labels of (question, answer) pairs and the number of judge calls they cost."""
    if cfg.analyze.judge == "exact":
        return [task.exact_label(q, a) for q, a in pairs], 0
    cache = JudgeCache(cfg.layout.judge_cache)
    return judge_pairs(pairs, cfg.analyze.judge, make_judge(cfg.analyze.judge, cfg.analyze.judge_base_url), cache)


def diversity_over_training(cfg, embedder: str) -> pd.DataFrame:
    """Mean pairwise cosine distance of each outer step's teacher questions (Fig. 17b/20b)."""
    rows = []
    for reward in ("grounded", "intrinsic"):
        for r in read_jsonl(cfg.layout.meta(reward).metrics):
            if r.get("questions"):
                rows.append({"teacher": reward, "step": r["step"],
                             "mean_pairwise_cosine_distance": mean_pairwise_cosine_distance(embed(r["questions"], embedder)),
                             "reward_mean": r["reward_mean"]})
    return pd.DataFrame(rows)


def wellposed_ablation(cfg, policy, task, base, pairs, labels, source: str, log=print) -> pd.DataFrame:
    """Fresh students (`analyze.ablation`) on hard-train + correct-only vs + all well-posed questions."""
    hard_train, hard_test = hard_sets(cfg)
    real = [RLItem(p.question, p.answer, p.id) for p in hard_train]
    arms = {
        f"correct-only {source}": [RLItem(q, a, f"c{i}") for i, ((q, a), l) in enumerate(zip(pairs, labels)) if l["is_correct"]],
        f"well-posed {source}": [RLItem(q, a, f"w{i}") for i, ((q, a), l) in enumerate(zip(pairs, labels)) if l["is_well_posed"]],
        "hard-only": [],
    }
    acfg = cfg.analyze.ablation
    rows = []
    for arm, items in arms.items():
        for seed in range(acfg.seeds):
            curve, rewards = train_fresh_student(policy, task, base, synthetic=items, hard_train=real,
                                                 test_problems=hard_test, ecfg=acfg, seed=cfg.seed + seed,
                                                 batch_size=cfg.model.gen_batch_size)
            _, window = summarize(curve, rewards, acfg)
            rows += [{"method": arm, "n_questions": len(items), "seed": seed, "k": int(k), "pass_at_k": float(v)}
                     for k, v in window.items()]
        log(f"{arm}: {len(items)} questions done")
    return pd.DataFrame(rows)


def run(cfg, log=print) -> AnalyzeResult:
    layout = open_run(cfg)
    policy, task = load(cfg)
    base = snapshot(policy)
    sets = question_sets(cfg, policy, task, base)
    labels, summaries, calls = {}, [], 0
    for name, pairs in sets.items():
        labels[name], c = labels_for(cfg, task, pairs)
        calls += c
        summaries.append(label_summary(name, labels[name]))
    table = pd.DataFrame(summaries)
    write_table(table, layout.table("question_labels"))
    write_table(pd.DataFrame([{"set": s, "question": q, "answer": a, **l}
                              for s in sets for (q, a), l in zip(sets[s], labels[s])]), layout.labels)
    embedder = task.default_embedder if cfg.analyze.embedder == "auto" else cfg.analyze.embedder
    vendi = []
    for name, pairs in sets.items():
        if len(pairs) >= 2:
            m, sd = bootstrap_vendi(embed([q for q, _ in pairs], embedder), cfg.analyze.vendi_subsample,
                                    cfg.analyze.vendi_bootstrap, cfg.seed)
            vendi.append({"set": name, "vendi_mean": m, "vendi_sd": sd})
    vendi = pd.DataFrame(vendi)
    write_table(vendi, layout.table("vendi"))
    div = diversity_over_training(cfg, embedder)
    write_table(div, layout.table("diversity_over_training"))
    source = "pq" if sets["pq"] else "grounded-t" if "grounded-t" in sets else "base-t"
    ablation = wellposed_ablation(cfg, policy, task, base, sets[source], labels[source], source, log)
    write_table(ablation, layout.table("wellposed_ablation"))
    write_json(layout.summary("analyze"), {"judge_calls": calls, "embedder": embedder, "ablation_source": source,
                                           "set_sizes": {k: len(v) for k, v in sets.items()}})
    return AnalyzeResult(labels=table, vendi=vendi, diversity=div, ablation=ablation, judge_calls=calls,
                         embedder=embedder, ablation_source=source)
