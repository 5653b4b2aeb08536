"""Stage `analyze` (notebook 05): labels, error taxonomy, diversity, and the well-posed vs correct-only ablation
(paper §5, Tables 1 and 7, v3 Fig. 15, Fig. 17/20). The metrics are in `soar_lite.analysis`.

Writes tables/question_labels.csv (set, n, well_posed_share, correct_share, <error>_share ...),
tables/vendi.csv (set, vendi_mean, vendi_sd), tables/diversity_over_training.csv, tables/diversity_per_teacher.csv
and tables/diversity_strata.csv (diversity per teacher seed, pooled, within the world's strata, unique share and the
world's coverage of hard-test: the teacher is the unit, as for every teacher claim),
tables/wellposed_ablation.csv (method, n_questions, seed, k, pass_at_k), analyze/labels.csv, analyze/summary.json,
analyze/students/ (each finished ablation student with its key: a killed analyze trains only the ones it lacks).
The ablation (paper v3 Fig. 15, App. C.5) uses PQ; when meta-training made no promotion it uses the
Grounded-T sample instead (Base-T without a trained teacher) and says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..analysis import (JudgeCache, bootstrap_vendi, embed, judge_pairs, label_summary, make_judge,
                        mean_pairwise_cosine_distance, reweighted, strata_diversity, vendi_score)
from ..arms import ARMS
from .. import stats
from ..evaluate import summarize, train_fresh_student
from ..executor import run_jobs, worker_cache
from ..models import snapshot
from ..rundir import read_jsonl, report_progress, write_json, write_table
from ..seeds import derive, stream_key
from ..student import RLItem
from . import meta_train
from .common import (display_path, exclusive, hard_sets, input_digest, load, open_run, pass_at_k_row_problem,
                     saved_result, teacher_questions)


@dataclass
class AnalyzeResult:
    labels: pd.DataFrame  # Table 7 analogue: one row per question set
    vendi: pd.DataFrame  # Table 1 analogue
    diversity: pd.DataFrame  # teacher, step, mean_pairwise_cosine_distance, reward_mean (Fig. 17b/20b)
    ablation: pd.DataFrame  # method, n_questions, seed, k, pass_at_k (v3 Fig. 15)
    judge_calls: int
    embedder: str
    ablation_source: str  # the question set the ablation filtered: pq, grounded-t or base-t
    # diversity at the world's level, per teacher seed (`teacher_diversity`): one row per (set, teacher_seed) --
    # vendi_pooled, vendi_within (per-stratum Vendi at the paired Base-T draw's stratum mix), unique_share and the
    # world's coverage columns -- and one row per (set, teacher_seed, stratum)
    per_teacher: pd.DataFrame = field(default_factory=pd.DataFrame)
    strata: pd.DataFrame = field(default_factory=pd.DataFrame)

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
        out += self.diversity_findings()
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


    def diversity_comparison(self, a: str = "grounded-t", b: str = "base-t") -> pd.DataFrame:
        """Set a minus set b on every per-teacher diversity column, paired by teacher seed (seed i's teacher vs the
        untrained model's draw i: common random numbers): difference, 95% CI, test, p, n seeds, verdict."""
        t = self.per_teacher
        if t.empty or a not in set(t.set) or b not in set(t.set):
            return pd.DataFrame()
        x, y = (t[t.set == name].set_index("teacher_seed").sort_index() for name in (a, b))
        seeds = sorted(set(x.index) & set(y.index))
        rows = []
        for col in [c for c in DIVERSITY_COLUMNS if c in t] + [c for c in t if c.startswith("coverage:")]:
            xa, ya = x.loc[seeds, col].astype(float).values, y.loc[seeds, col].astype(float).values
            ok = ~(np.isnan(xa) | np.isnan(ya))
            r = stats.compare(xa[ok], ya[ok], paired=True)
            word = stats.verdict(r["difference"], r["p_value"], int(ok.sum()), r["test"])
            # a difference in diversity is not a claim reproduced or contradicted: it is higher, lower or neither
            word = {"reproduced": f"higher in {a}", "contradicted": f"lower in {a}"}.get(word, word)
            rows.append({"measure": col, "a": a, "b": b, "mean_a": float(np.mean(xa[ok])) if ok.any() else np.nan,
                         "mean_b": float(np.mean(ya[ok])) if ok.any() else np.nan, **r, "verdict": word})
        return pd.DataFrame(rows)

    def diversity_findings(self) -> list[str]:
        """Which diversity measures moved between Grounded-T and Base-T, across teacher seeds (computed)."""
        c = self.diversity_comparison()
        if c.empty:
            return ["Diversity per teacher seed: not measured (no Grounded-T or no Base-T set)."]
        n = int(c.n_a.iloc[0])
        parts = [f"{DIVERSITY_NAMES.get(r.measure, r.measure.replace('coverage:', ''))} {r.mean_a:.3g} vs {r.mean_b:.3g} "
                 + (f"({r.difference:+.3g}, 95% CI {r.ci_low:+.3g} to {r.ci_high:+.3g}, {stats.p_eq(r.p_value)}: "
                    f"{r.verdict})" if np.isfinite(r.p_value) else f"({r.difference:+.3g}: {r.verdict})")
                 for r in c.itertuples()]
        moved = [DIVERSITY_NAMES.get(r.measure, r.measure.replace("coverage:", "")) for r in c.itertuples()
                 if r.verdict.startswith(("higher", "lower"))]
        return [f"Diversity, Grounded-T vs Base-T across {n} teacher seed{'s' * (n != 1)} (paired by seed; a "
                f"teacher-level test): " + "; ".join(parts) + ". "
                + (f"Moved (p < 0.05, >= 3 seeds): {', '.join(moved)}." if moved else
                   "None of these moved at the teacher level.")]


DIVERSITY_COLUMNS = ("vendi_pooled", "vendi_within", "unique_share")
DIVERSITY_NAMES = {"vendi_pooled": "pooled Vendi", "vendi_within": "within-stratum Vendi at Base-T's mix",
                   "unique_share": "unique share"}


def teacher_diversity(cfg, policy, task, base, embedder: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Diversity at the world's level (issue 35, item 5), per teacher seed: `analyze.n_questions` questions from
    Base-T (draw i of the untrained model), Intrinsic-T and Grounded-T (teacher seed i, draw i: common random
    numbers), each read pooled (Vendi of the whole draw, at `analyze.stratum_vendi_size`), within the strata the world
    names (`Task.question_stratum`; re-weighted to the paired Base-T draw's stratum mix), by its unique share and by
    the world's coverage of hard-test (`Task.coverage`). Returns (per set and seed, per set, seed and stratum)."""
    _, hard_test = hard_sets(cfg)
    a = cfg.analyze
    per, strata = [], []
    for i in range(max(cfg.meta.runs_for(k) for k in cfg.meta.teachers)):
        mix = None
        for name in ("base-t", "intrinsic-t", "grounded-t"):
            kind = ARMS[name].teacher
            ckpt = None if kind is None else meta_train.trained_teacher_path(cfg, kind, i)
            if ckpt is not None and not ckpt.exists():
                continue
            pairs = teacher_questions(cfg, policy, task, ckpt, base, a.n_questions, stage="analyze", draw=i)
            questions = [qa.question for qa in pairs]
            if len(questions) < 2:
                continue
            emb = embed(questions, embedder)
            by = strata_diversity(questions, [task.question_stratum(q) for q in questions], emb,
                                  size=a.stratum_vendi_size, seed=derive(cfg.seed, "analyze", "stratum_vendi", name, i))
            mix = mix if mix is not None else dict(zip(by.stratum, by.share))  # Base-T's draw comes first
            rng = np.random.default_rng(derive(cfg.seed, "analyze", "pooled_vendi", name, i))
            size = min(len(questions), a.stratum_vendi_size)
            pooled = float(np.mean([vendi_score(emb[rng.choice(len(questions), size=size, replace=False)])
                                    for _ in range(20)]))
            cov = {f"coverage:{k}": v for k, v in task.coverage(pairs, hard_test).items()}
            per.append({"set": name, "teacher_seed": i, "n": len(questions), "vendi_pooled": pooled,
                        "vendi_within": reweighted(by, mix), "unique_share": len(set(questions)) / len(questions),
                        **cov})
            strata += [{"set": name, "teacher_seed": i, **row} for row in by.to_dict(orient="records")]
    return pd.DataFrame(per), pd.DataFrame(strata)


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


def ablation_row_problem(rows) -> str | None:
    """What is malformed in a saved ablation student's rows (None when every field the report reads is well formed):
    a non-empty list of (method, n_questions, seed, k, pass_at_k in [0, 1])."""
    if not isinstance(rows, list) or not rows:
        return "no pass@k rows"
    for row in rows:
        if (why := pass_at_k_row_problem(row, ("n_questions", "seed"))) is not None:
            return f"a pass@k row is {why}"
    return None


def ablation_key(cfg, arm: str, items: list[RLItem], seed: int) -> str:
    """What ablation student `seed` of `arm` depends on, hashed (`common.input_digest`): the world, model, seed and
    probe params with `analyze.ablation` (not meta-training's or evaluation's: its questions are in the key
    themselves), the arm, the index, every question with its reference and stream key, and the hard sets' bytes."""
    import dataclasses

    other_analyze = tuple(f.name for f in dataclasses.fields(cfg.analyze) if f.name != "ablation")
    return input_digest(cfg, {"meta": None, "evaluate": None, "analyze": other_analyze},
                        (arm, seed, [[i.question, i.reference, i.key] for i in items]),
                        [cfg.layout.hard_train, cfg.layout.hard_test])


def wellposed_ablation(cfg, pairs, labels, source: str, log=print) -> pd.DataFrame:
    """Fresh students (`analyze.ablation`) on hard-train + correct-only vs + all well-posed vs + ill-posed questions
    (each where the set has any), and Hard-Only; student s of every arm shares its seeds (paired), and a question
    keeps its key (`q<i>`, its index in `pairs`) in every arm, so it draws the same samples there; on
    `executor.workers` processes. Each finished student is saved under analyze/students/ with the key of what it
    depends on (`ablation_key`): a killed analyze trains only the students it lacks."""
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
    keys = [ablation_key(*job) for job in jobs]
    saved = [cfg.layout.analyze_student(job[1], job[3]) for job in jobs]
    rows = [saved_result(path, key, ablation_row_problem, log, redo="trained again") for path, key in zip(saved, keys)]
    todo = [i for i, r in enumerate(rows) if r is None]
    if len(todo) < len(jobs):
        log(f"{len(jobs) - len(todo)} of {len(jobs)} students found finished in {display_path(saved[0].parent)} "
            f"(same params and questions): not trained again")
    finished = len(jobs) - len(todo)
    index = {(job[1], job[3]): i for i, job in enumerate(jobs)}

    def done(job, result):
        nonlocal finished
        finished += 1
        i = index[(job[1], job[3])]
        write_json(saved[i], {"key": keys[i], "result": result})
        log(f"{job[1]} student {job[3]}: {len(job[2])} questions, done")
        report_progress(cfg.layout, "analyze", "ablation", finished, len(jobs), "students")

    for i, result in zip(todo, run_jobs(ablation_job, [jobs[i] for i in todo], cfg.executor, on_done=done)):
        rows[i] = result
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
    per_teacher, strata = teacher_diversity(cfg, policy, task, base, embedder)
    write_table(per_teacher, layout.table("diversity_per_teacher"))
    write_table(strata, layout.table("diversity_strata"))
    source = "pq" if sets["pq"] else "grounded-t" if "grounded-t" in sets else "base-t"
    ablation = wellposed_ablation(cfg, sets[source], labels[source], source, log)
    write_table(ablation, layout.table("wellposed_ablation"))
    write_json(layout.summary("analyze"), {"judge_calls": calls, "embedder": embedder, "ablation_source": source,
                                           "set_sizes": {k: len(v) for k, v in sets.items()}})
    return AnalyzeResult(labels=table, vendi=vendi, diversity=div, ablation=ablation, judge_calls=calls,
                         embedder=embedder, ablation_source=source, per_teacher=per_teacher, strata=strata)
