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

import numpy as np
import pandas as pd

from ..analysis import (JudgeCache, bootstrap_vendi, embed, judge_pairs, label_summary, make_judge,
                        mean_pairwise_cosine_distance)
from ..arms import ARMS
from .. import stats
from ..evaluate import summarize, train_fresh_student
from ..executor import run_jobs, worker_cache
from ..models import snapshot
from ..rundir import read_jsonl, report_progress, write_json, write_table
from ..seeds import derive, stream_key
from ..student import RLItem
from . import meta_train
from .common import exclusive, hard_sets, load, open_run, teacher_questions


@dataclass
class AnalyzeResult:
    labels: pd.DataFrame  # Table 7 analogue: one row per question set
    vendi: pd.DataFrame  # Table 1 analogue
    diversity: pd.DataFrame  # teacher, step, mean_pairwise_cosine_distance, reward_mean (Fig. 17b/20b)
    ablation: pd.DataFrame  # method, n_questions, seed, k, pass_at_k (v3 Fig. 15)
    judge_calls: int
    embedder: str
    ablation_source: str  # the question set the ablation filtered: pq, grounded-t or base-t

    def ablation_comparison(self, k: int | None = None, a: str = "well-posed", b: str = "correct-only") -> dict | None:
        """Arm a minus arm b (well-posed, correct-only, ill-posed, hard-only) at pass@k (default: the largest k;
        students paired by index: same seed derivation); None when either arm is absent."""
        if k is None:
            k = int(self.ablation.k.max()) if not self.ablation.empty else 32
        t = self.ablation[self.ablation.k == k] if not self.ablation.empty else self.ablation
        arms = {m.split(" ")[0]: m for m in t.method.unique()} if not t.empty else {}
        if a not in arms or b not in arms:
            return None
        x = t[t.method == arms[a]].set_index("seed").pass_at_k.sort_index()
        y = t[t.method == arms[b]].set_index("seed").pass_at_k.sort_index()
        return {"k": k, **stats.compare(x.values, y.values, paired=list(x.index) == list(y.index))}

    def findings(self) -> list[str]:
        """Sentences computed from the tables (the report's closing cell)."""
        out = []
        lab = self.labels.set_index("set")
        for name in lab.index:
            if not lab.loc[name, "n"]:
                out.append(f"{name}: empty (nothing to label).")
                continue
            out.append(f"{name}: {100 * lab.loc[name, 'well_posed_share']:.0f}% well-posed, "
                       f"{100 * lab.loc[name, 'correct_share']:.0f}% correct (n = {int(lab.loc[name, 'n'])}).")
        if not self.vendi.empty:
            v = self.vendi.set_index("set")
            out.append("Vendi score (mean ± SD over bootstrap subsamples): " + ", ".join(
                f"{n} {v.loc[n, 'vendi_mean']:.1f} ± {v.loc[n, 'vendi_sd']:.1f}" for n in v.index) + ".")
        c = self.ablation_comparison()
        if c is not None and not np.isnan(c["p_value"]):
            verdict = "established" if c["p_value"] < stats.ALPHA else "not established"
            out.append(f"Well-posed vs correct-only {self.ablation_source} questions, pass@{c['k']}: "
                       f"{100 * c['difference']:+.1f} points (95% CI {100 * c['ci_low']:+.1f} to {100 * c['ci_high']:+.1f}, "
                       f"{c['test']}, {stats.p_eq(c['p_value'])}, n = {c['n_a']}): difference {verdict}.")
            lab = self.labels.set_index("set")
            src = "pq" if self.ablation_source == "pq" else self.ablation_source
            # finding 3 needs the two arms to differ: many well-posed questions with wrong answers
            gap = (lab.loc[src, "well_posed_share"] - lab.loc[src, "correct_share"]) if src in lab.index else np.nan
            if c["p_value"] < stats.ALPHA:
                v3 = "reproduced" if c["difference"] >= 0 else "contradicted"
            else:
                v3 = "not established"
            out.append(f"Finding 3 (well-posed structure matters more than answer correctness): {v3} -- training on all "
                       f"well-posed questions (of which {100 * gap:.0f}% have a wrong answer) vs only the correct ones "
                       f"differs by {100 * c['difference']:+.1f} points ({stats.p_eq(c['p_value'])}); the paper's claim is "
                       f"that the well-posed set is at least as good.")
        elif c is not None and c.get("test") == "untestable":
            out.append(f"Finding 3 (well-posed structure matters more than answer correctness): untestable -- the two "
                       f"arms' students differ by {100 * c['difference']:+.1f} points with no variance between them.")
        else:
            out.append("Finding 3 (well-posed structure matters more than answer correctness): cannot be tested here "
                       "(ablation arms missing or fewer than 2 students per arm).")
        ill = self.ablation_comparison(a="well-posed", b="ill-posed")
        if ill is None:
            out.append(f"Ill-posed {self.ablation_source} questions: none in the set, so no ill-posed arm was trained.")
        elif np.isnan(ill["p_value"]):
            out.append(f"Well-posed vs ill-posed {self.ablation_source} questions, pass@{ill['k']}: "
                       f"{100 * ill['difference']:+.1f} points, untestable (no variance or too few students).")
        else:
            out.append(f"Well-posed vs ill-posed {self.ablation_source} questions, pass@{ill['k']}: "
                       f"{100 * ill['difference']:+.1f} points (95% CI {100 * ill['ci_low']:+.1f} to "
                       f"{100 * ill['ci_high']:+.1f}, {ill['test']}, {stats.p_eq(ill['p_value'])}, n = {ill['n_a']}): "
                       f"{stats.verdict(ill['difference'], ill['p_value'], ill['n_a'])}.")
        return out


def question_sets(cfg, policy, task, base) -> dict[str, list[tuple[str, str]]]:
    """(question, answer) pairs per set: base-t, intrinsic-t, grounded-t (`analyze.n_questions` sampled from
    each teacher of seed 0, on common random numbers), pq (all Promotion Questions of the first grounded run)."""
    sets = {}
    for name in ("base-t", "intrinsic-t", "grounded-t"):
        kind = ARMS[name].teacher
        ckpt = None if kind is None else meta_train.trained_teacher_path(cfg, kind)
        if ckpt is None or ckpt.exists():
            pairs = teacher_questions(cfg, policy, task, ckpt, base, cfg.analyze.n_questions, stage="analyze", draw=0)
            sets[name] = [(qa.question, qa.answer) for qa in pairs]
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
    for kind, run in meta_train.runs_of(cfg):
        for r in read_jsonl(cfg.layout.meta(kind, run).metrics):
            if r.get("questions"):
                rows.append({"teacher": kind, "run": run, "step": r["step"],
                             "mean_pairwise_cosine_distance": mean_pairwise_cosine_distance(embed(r["questions"], embedder)),
                             "reward_mean": r["reward_mean"]})
    return pd.DataFrame(rows)


def ablation_job(cfg, arm: str, items: list[RLItem], seed: int) -> list[dict]:
    """One fresh student of the ablation (`analyze.ablation`): pass@k rows of its window after the stop."""
    def setup():
        policy, task = load(cfg)
        hard_train, hard_test = hard_sets(cfg)
        real = [RLItem(p.question, p.answer, stream_key("problem", p.id)) for p in hard_train]
        return policy, task, snapshot(policy), real, hard_test

    policy, task, base, real, hard_test = worker_cache(("analyze", repr(cfg)), setup)
    acfg = cfg.analyze.ablation
    curve, rewards = train_fresh_student(policy, task, base, synthetic=items, hard_train=real, test_problems=hard_test,
                                         ecfg=acfg, seed_of=lambda role, *i: derive(cfg.seed, "analyze", role, seed, *i),
                                         batch_size=cfg.model.gen_batch_size)
    _, window = summarize(curve, rewards, acfg)
    return [{"method": arm, "n_questions": len(items), "seed": seed, "k": int(k), "pass_at_k": float(v)}
            for k, v in window.items()]


def wellposed_ablation(cfg, pairs, labels, source: str, log=print) -> pd.DataFrame:
    """Fresh students (`analyze.ablation`) on hard-train + correct-only vs + all well-posed vs + ill-posed questions
    (each where the set has any), and Hard-Only; student s of every arm shares its seeds (paired), and a question
    keeps its key (`q<i>`, its index in `pairs`) in every arm, so it draws the same samples there; on
    `executor.workers` processes."""
    arms = {
        f"correct-only {source}": [RLItem(q, a, stream_key("ablation", i))
                                   for i, ((q, a), l) in enumerate(zip(pairs, labels)) if l["is_correct"]],
        f"well-posed {source}": [RLItem(q, a, stream_key("ablation", i))
                                 for i, ((q, a), l) in enumerate(zip(pairs, labels)) if l["is_well_posed"]],
        # questions that parse but have no answer (a world with holes: the tiny world's undefined inputs), with the
        # teacher's answers: structure without a truth (paper Finding 3's other side)
        f"ill-posed {source}": [RLItem(q, a, stream_key("ablation", i))
                                for i, ((q, a), l) in enumerate(zip(pairs, labels)) if l["error_type"] == "Ill_Posed"],
        "hard-only": [],
    }
    arms = {name: items for name, items in arms.items() if items or name == "hard-only"}  # an empty set trains nothing
    jobs = [(cfg, arm, items, s) for arm, items in arms.items() for s in range(cfg.analyze.ablation.seeds)]
    finished = []

    def done(job, _):
        finished.append(job)
        log(f"{job[1]} student {job[3]}: {len(job[2])} questions, done")
        report_progress(cfg.layout, "analyze", "ablation", len(finished), len(jobs), "students")

    rows = run_jobs(ablation_job, jobs, cfg.executor, on_done=done)
    return pd.DataFrame([r for rs in rows for r in rs])


@exclusive("analyze")
def run(cfg, log=print) -> AnalyzeResult:
    meta_train.check_finished(cfg, [k for k in ("grounded", "intrinsic") if k in cfg.meta.teachers], "analyze")
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
                                    cfg.analyze.vendi_bootstrap, derive(cfg.seed, "analyze", "vendi_bootstrap", name))
            vendi.append({"set": name, "vendi_mean": m, "vendi_sd": sd})
    vendi = pd.DataFrame(vendi)
    write_table(vendi, layout.table("vendi"))
    div = diversity_over_training(cfg, embedder)
    write_table(div, layout.table("diversity_over_training"))
    source = "pq" if sets["pq"] else "grounded-t" if "grounded-t" in sets else "base-t"
    ablation = wellposed_ablation(cfg, sets[source], labels[source], source, log)
    write_table(ablation, layout.table("wellposed_ablation"))
    write_json(layout.summary("analyze"), {"judge_calls": calls, "embedder": embedder, "ablation_source": source,
                                           "set_sizes": {k: len(v) for k, v in sets.items()}})
    return AnalyzeResult(labels=table, vendi=vendi, diversity=div, ablation=ablation, judge_calls=calls,
                         embedder=embedder, ablation_source=source)
