"""Stage `evaluate` (notebook 04): every method evaluated the same way (paper §2.9, §3, Tables 4-6), with the
comparisons the paper's claims rest on tested.

Methods (names as in tables/pass_at_k.csv):
    base-model               the untrained student sampled on hard-test (`base_model_seeds` inference seeds: the
                             noise floor of the evaluation)
    hard-only                fresh student, RLOO on hard-train only
    hard-only-4x-group       the same with a 4x RLOO group (the paper's g = 128 row, Table 4)
    hard-only-extended       Hard-Only trained `extended_steps_factor` times longer (v3 Fig. 10: no gain)
    soar-pq                  fresh student on the Promotion Questions of a run with >= min_promotions + hard-train
    soar-ps                  that run's promoted student with the best hard-train score (the run's own reward
                             metric), inference only
    grounded-t               fresh student on n questions sampled from a trained grounded teacher + hard-train
    grounded-t-inference     the trained grounded teacher itself as the solver, inference only (v3 Table 4's
                             "Inference with Grounded-T" row; `base_model_seeds` seeds, teacher seed s mod meta.runs)
    base-t                   same, questions from the untrained model
    intrinsic-t              same, questions from the teacher meta-trained with the learnability reward
    grounded-t-no-promotion  same, from the grounded teacher trained without promotion (App. B.8)
    curated                  fresh student on real easier problems (`Task.curated_pool`) + hard-train, the upper bound
    serl                     fresh student on questions the untrained model wrote itself (SeRL's self-instruction),
                             kept by SeRL's difficulty and diversity filters and rewarded by majority vote, beside
                             hard-train; reported at `serl_step` (v3 Tables 4/5; soar_lite/serl.py says what is inferred)
    <method>#<n>             a sampling method (grounded-t, base-t, intrinsic-t, grounded-t-no-promotion, curated, serl)
                             with n questions instead of `n_questions` (Figs. 14-17: |X| in {32, 64, 128})
    <method>@<mode>          a method trained beside hard-train (those and soar-pq) in the mixing mode named (mixed
                             or curriculum) whatever `mode` says: Figs. 7/8 overlay the two modes of one method,
                             with the same students, questions and seeds (config.parse_method reads the names)
Design (common random numbers, `soar_lite.seeds`): student s of every method draws its batches from the same
stream, is evaluated with the same test-sampling seeds, and gets question draw s (the same sampling seeds for the
base, grounded and intrinsic teachers) from teacher seed s mod meta.runs; so methods are compared student by
student (paired t). A training question's sampling stream is keyed by its item key: the real hard-train problems
by their id, the synthetic questions of every teacher arm by their position (`syn<i>`), so the same question at the
same position in two arms draws the same samples (identical teachers give identical students, tests/test_stages.py).
The central comparisons (soar-pq vs hard-only, grounded-t vs base-t) get `seeds` students, the others
`other_seeds`. Each fresh student (`soar_lite.evaluate.train_fresh_student`): pass@k on hard-test over training,
the stop step from the training reward (App. B.8), pass@k averaged over the window after it. A method whose
inputs do not exist (no run with enough promotions -> no PQ/PS) is reported as skipped, with the reason.

Writes tables/pass_at_k.csv, tables/comparisons.csv, tables/curves.csv, evaluate/stops.csv, evaluate/summary.json.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import serl, stats
from ..config import parse_method
from ..evaluate import summarize, test_pass_at_k, train_fresh_student
from ..executor import run_jobs, worker_cache
from ..models import load_snapshot, restore, snapshot
from ..rundir import report_progress, write_json, write_table
from ..sampling import sample
from ..seeds import derive, stream_key
from ..student import RLItem
from . import meta_train
from .common import display_path, exclusive, hard_sets, load, open_run, teacher_questions

INFERENCE_METHODS = ("base-model", "soar-ps", "grounded-t-inference")
CENTRAL = ("hard-only", "soar-pq", "grounded-t", "base-t")  # the two central comparisons get `seeds` students
INFERENCE_TEACHER = {"grounded-t-inference": "grounded"}  # inference methods that sample a meta-trained teacher
FIG7_METHODS = ("soar-pq", "grounded-t", "base-t", "curated")  # curriculum vs mixed tested for these (Figs. 7/8)
COMPARISONS = [("soar-pq", "hard-only"), ("grounded-t", "base-t"), ("soar-ps", "hard-only"), ("grounded-t", "hard-only"),
               ("base-t", "hard-only"), ("curated", "hard-only"), ("hard-only-4x-group", "hard-only"),
               ("hard-only", "base-model"), ("grounded-t", "intrinsic-t"), ("grounded-t", "grounded-t-no-promotion"),
               ("soar-pq", "grounded-t"), ("hard-only-extended", "hard-only"), ("grounded-t-inference", "base-model"),
               ("serl", "hard-only"), ("soar-pq", "serl"), ("serl", "base-t")]
COMPARISONS += [(f"{m}@curriculum", f"{m}@mixed") for m in FIG7_METHODS]  # Figs. 7/8: curriculum vs mixed
COMPARISONS += [(f"grounded-t#{n}", f"curated#{n}") for n in (32, 64, 128)]  # Fig. 14/16: teacher vs real, per |X|


def teacher_source(cfg):
    """The config whose run directory holds the teachers, PQ and PS the evaluation samples: this run, or the run
    `evaluate.teacher_run` names under the same results_dir (Table 6: a MATH run's teachers evaluated on the hard set
    of an OlympiadBench run). Its meta section is this run's (`extends:` the source run's params keeps them equal)."""
    return cfg if not cfg.evaluate.teacher_run else dataclasses.replace(cfg, name=cfg.evaluate.teacher_run)


def base_method(method: str) -> str:
    """'grounded-t#32@curriculum' -> 'grounded-t' (config.parse_method)."""
    return parse_method(method).base
# teacher methods whose students take their questions from teacher seed (student index mod meta.runs)
TEACHER_METHODS = tuple(m for m, kind in meta_train.TEACHER_KIND.items() if kind is not None)


@dataclass
class EvaluateResult:
    table: pd.DataFrame  # method, seed (student index), k, pass_at_k (the window mean after the stop step)
    curves: pd.DataFrame  # step, k, pass_at_k, method, seed (hard-test over training)
    stops: pd.DataFrame  # method, seed, stop_step, window_points, train_reward_last
    comparisons: pd.DataFrame  # comparison, k, difference, ci_low, ci_high, p_value, n_a, n_b, power, test, paper_ratio
    skipped: dict[str, str]  # method -> why it was not evaluated
    timings: dict[str, float]  # method -> seconds
    n_questions: dict[str, int]  # method -> size of its synthetic question set (student 0)
    pq_runs: list[int]  # grounded runs with >= min_promotions promotions (the PQ/PS sources)
    ps_stages: dict[int, int]  # run -> the promotion stage SOAR-PS evaluates
    teacher_status: dict[str, dict[int, str]] = dataclasses.field(default_factory=dict)  # method -> seed -> status

    def stops_sentence(self) -> str:
        """What the stop-step table says, computed: students whose window holds fewer than 5 evaluation points."""
        s = self.stops
        few = s[s.window_points < 5]
        last = s[s.stop_step >= int(self.curves.step.max())] if len(self.curves) else s.iloc[0:0]
        return (f"{len(s) - len(few)} of {len(s)} trained students have >= 5 evaluation points after their stop "
                f"step; {len(few)} have fewer (mean {few.window_points.mean() if len(few) else float('nan'):.1f}), "
                f"{len(last)} stopped at the last step.")

    def summary_table(self) -> pd.DataFrame:
        """method x k: 'mean ± SD (n)' in percent, the paper's statistic."""
        t = self.table.groupby(["method", "k"]).pass_at_k.apply(stats.mean_sd).unstack("k")
        return t.reindex([m for m in self.table.method.unique()])

    def pass_at_steps(self, method: str, steps: list[int]) -> pd.DataFrame:
        """step x k: 'mean ± SD (n)' of `method`'s pass@k at fixed training steps, read from its curves (v3 Tables
        4/5 report SeRL at steps 50 and 100); a step never evaluated is left out."""
        c = self.curves[(self.curves.method == method) & self.curves.step.isin(steps)] if len(self.curves) else \
            self.curves
        if c.empty:
            return pd.DataFrame()
        return c.groupby(["step", "k"]).pass_at_k.apply(stats.mean_sd).unstack("k")

    def findings(self, k: int | None = None) -> list[str]:
        """Sentences computed from the tables (the report's closing cell), at pass@k (default: the largest k)."""
        out = []
        if not self.comparisons.empty:
            k = int(self.comparisons.k.max()) if k is None else k
        c = self.comparisons[self.comparisons.k == k] if not self.comparisons.empty else self.comparisons
        for _, r in c.iterrows():
            if r.test == "untestable":
                out.append(f"{r.comparison}: {r.note}.")
                continue
            if np.isnan(r.p_value):
                continue
            verdict = ("established" if r.p_value < stats.ALPHA else "not established")
            power = (f"power for the paper's MATH ratio ({r.paper_ratio:.2f}x) {r.power:.2f}" if not np.isnan(r.power)
                     else r.note or "no power figure")
            out.append(f"{r.comparison} at pass@{k}: {100 * r.difference:+.1f} points (95% CI {100 * r.ci_low:+.1f} to "
                       f"{100 * r.ci_high:+.1f}, {r.test}, p = {r.p_value:.2g}, n = {r.n_a}/{r.n_b}): difference "
                       f"{verdict}; {power}.")
        for m, why in self.skipped.items():
            out.append(f"{m}: skipped ({why}).")
        for m, status in self.teacher_status.items():
            out.append(f"{m} teachers: " + "; ".join(f"teacher seed {i} {st}" for i, st in status.items()) + ".")
        return out + self.paper_findings(k)

    def verdict(self, comparison: str, k: int) -> tuple[str, str]:
        """(reproduced | contradicted | not established | cannot be tested here, the numbers behind it) for 'a vs b'."""
        c = self.comparisons
        row = c[(c.comparison == comparison) & (c.k == k)] if not c.empty else c
        if not row.empty and row.test.iloc[0] == "untestable":
            return "cannot be tested here", f"{comparison}: {row.note.iloc[0]}"
        if row.empty or np.isnan(row.p_value.iloc[0]):
            return "cannot be tested here", f"{comparison}: not evaluated or too few students"
        r = row.iloc[0]
        power = f"power {r.power:.2f}" if not np.isnan(r.power) else (r.note or "no power figure")
        numbers = (f"{comparison} {100 * r.difference:+.1f} points of pass@{k} (95% CI {100 * r.ci_low:+.1f} to "
                   f"{100 * r.ci_high:+.1f}, p = {r.p_value:.2g}, n = {r.n_a}/{r.n_b}, {power})")
        if r.p_value >= stats.ALPHA:
            return "not established", numbers
        return ("reproduced" if r.difference > 0 else "contradicted"), numbers

    def paper_findings(self, k: int | None = None) -> list[str]:
        """One sentence per paper finding this stage can test (finding 3 is report 05's)."""
        if self.comparisons.empty:
            return []
        k = int(self.comparisons.k.max()) if k is None else k
        out = []
        for finding, comps in (("Finding 1 (SOAR unlocks learning where direct RL has no signal)",
                                ["soar-pq vs hard-only", "soar-ps vs hard-only", "grounded-t vs base-t",
                                 "grounded-t vs hard-only"]),
                               ("Premise (the untrained model's own questions vs Hard-Only, the paper's Fig. 5 left)",
                                ["base-t vs hard-only"]),
                               ("Finding 2 (grounded rewards beat intrinsic rewards)", ["grounded-t vs intrinsic-t"]),
                               ("Promotion is needed (Grounded-T beats Grounded-T without promotion)",
                                ["grounded-t vs grounded-t-no-promotion"])):
            parts = [self.verdict(c, k) for c in comps]
            out.append(f"{finding}: " + "; ".join(f"{v} -- {n}" for v, n in parts) + ".")
        # the paper's observations of no gain (v3 Fig. 10, Table 4) and of the mixing modes (Figs. 7/8), where evaluated:
        # a difference the test does not establish is not evidence of none, so the sentence says which it is
        for observation, comp in ([("v3 Fig. 10: Hard-Only trained about 4x longer gains nothing in the paper",
                                    "hard-only-extended vs hard-only"),
                                   ("v3 Table 4: the trained teacher as a solver (Inference with Grounded-T) is no better "
                                    "than the base model in the paper", "grounded-t-inference vs base-model"),
                                   ("v3 Tables 4/5: SeRL beats Hard-Only in the paper", "serl vs hard-only"),
                                   ("v3 Tables 4/5: SOAR-PQ beats SeRL in the paper", "soar-pq vs serl")]
                                  + [(f"Figs. 7/8: {m} in curriculum vs mixed mode (the paper: curriculum better for "
                                      f"MATH's Base-T, an early spike then a crash on HARP/OlympiadBench)",
                                      f"{m}@curriculum vs {m}@mixed") for m in FIG7_METHODS]):
            v, n = self.verdict(comp, k)
            if v != "cannot be tested here":
                shown = ("difference not established" if v == "not established" else
                         f"difference established (the first arm {'higher' if v == 'reproduced' else 'lower'})")
                out.append(f"{observation}: here {shown} -- {n}.")
        return out


def curated_items(task, count: int, seed: int, named: bool = False) -> list[RLItem]:
    """Real easier problems from the task's curated pool: all of it (a task with `curated_all`, unless the method
    names its count: `curated#32`), or `count` sampled (Table 4's MATH train (128))."""
    pool = task.problems(task.curated_pool)
    count = 0 if task.curated_all and not named else count
    rng = np.random.default_rng(seed)
    pick = pool if count <= 0 or count >= len(pool) else [pool[i] for i in rng.choice(len(pool), count, replace=False)]
    return [RLItem(p.question, p.answer, stream_key("curated", p.id)) for p in pick]


def students(ecfg, method: str, n_ps_runs: int = 1) -> int:
    method = base_method(method)  # grounded-t#32@mixed counts as grounded-t
    if method in ("base-model", "grounded-t-inference"):
        return ecfg.base_model_seeds
    if method == "soar-ps":
        return ecfg.ps_seeds * n_ps_runs
    return ecfg.seeds if method in CENTRAL else (ecfg.other_seeds or ecfg.seeds)


def pq_runs(cfg) -> tuple[list[int], dict[int, int]]:
    """Grounded runs with at least evaluate.min_promotions promotions, and the promotion count of every run."""
    counts = {i: len(meta_train.read(teacher_source(cfg), "grounded", i).promotions) for i in range(cfg.meta.runs)}
    return [i for i, c in counts.items() if c >= cfg.evaluate.min_promotions], counts


def best_promoted_stage(cfg, run: int) -> int:
    """SOAR-PS (§2.9): the promotion stage with the best hard-train score, the run's own reward metric (the paper's
    greedy accuracy; the tiny world's log-likelihood, where greedy accuracy is 0 at every stage)."""
    proms = meta_train.read(teacher_source(cfg), "grounded", run).promotions
    return int(np.argmax([p.get("hard_train_score", p["hard_train_greedy_acc"]) for p in proms])) + 1


def missing_input(cfg, method: str, eligible: list[int], promotion_counts: dict[int, int]) -> str | None:
    """Why `method` cannot be evaluated in this run (a teacher checkpoint or a PQ/PS source is missing), or None."""
    method = base_method(method)
    kind = INFERENCE_TEACHER.get(method) or meta_train.TEACHER_KIND.get(method)
    if kind is not None:
        for i in range(cfg.meta.runs):
            path = meta_train.trained_teacher_path(teacher_source(cfg), kind, i)
            if not path.exists():
                return f"no trained teacher at {path}"
    if method in ("soar-pq", "soar-ps") and not eligible:
        return (f"no meta-training run made >= {cfg.evaluate.min_promotions} promotions (promotions per grounded "
                f"run: {promotion_counts})")
    return None


class QuestionSets:
    """The synthetic questions of (method, student): student s gets draw s from teacher seed s mod meta.runs."""

    def __init__(self, cfg, policy, task, base):
        self.cfg, self.policy, self.task, self.base = cfg, policy, task, base
        self.eligible, self.promotion_counts = pq_runs(cfg)

    def items(self, method: str, s: int) -> list[RLItem]:
        spec = parse_method(method)  # both modes of a method train on the same questions
        cfg, n, method = self.cfg, spec.n_questions or self.cfg.evaluate.n_questions, spec.base
        if method in ("hard-only", "hard-only-4x-group", "hard-only-extended"):
            return []
        if method == "curated":
            return curated_items(self.task, n, derive(cfg.seed, "evaluate", "curated_draw", s), spec.n_questions is not None)
        if method == "serl":
            return self.serl_items(n, s)
        if method == "soar-pq":
            pq = meta_train.read(teacher_source(cfg), "grounded", self.eligible[s % len(self.eligible)]).pq
            return [RLItem(r["question"], r["answer"], stream_key("pq", i)) for i, r in enumerate(pq)]
        kind = meta_train.TEACHER_KIND[method]
        ckpt = None if kind is None else meta_train.trained_teacher_path(teacher_source(cfg), kind, s % cfg.meta.runs)
        pairs = teacher_questions(cfg, self.policy, self.task, ckpt, self.base, n, stage="evaluate", draw=s)
        return [RLItem(qa.question, qa.answer, stream_key("synthetic", i)) for i, qa in enumerate(pairs)]

    def serl_items(self, n: int, s: int) -> list[RLItem]:
        """SeRL's questions for student s (soar_lite/serl.py): n x serl_pool_factor self-instructed questions of the
        untrained model, answered serl_votes times each by it; the first n that pass the agreement band and are not
        repeats, unlabelled (majority-vote reward)."""
        cfg, e = self.cfg, self.cfg.evaluate
        hard_train, _ = hard_sets(cfg)
        rng = np.random.default_rng(derive(cfg.seed, "evaluate", "serl_demonstrations", s))
        shown = [hard_train[i] for i in sorted(rng.choice(len(hard_train), min(e.serl_demonstrations, len(hard_train)),
                                                          replace=False))]
        pairs = teacher_questions(cfg, self.policy, self.task, None, self.base, n * e.serl_pool_factor, stage="evaluate",
                                  draw=s, prompt=self.task.self_instruct_prompt(shown))
        questions = [qa.question for qa in pairs]
        texts, _ = sample(self.policy, [self.task.student_prompt(q) for q in questions],
                          [stream_key("serl_vote", i) for i in range(len(questions))], e.serl_votes, 1.0,
                          self.task.student_max_new_tokens, derive(cfg.seed, "evaluate", "serl_votes", s),
                          cfg.model.gen_batch_size)
        shares = [serl.agreement_share([self.task.extract_answer(t) for t in group]) for group in texts]
        kept = serl.select_questions(questions, shares, count=n, min_agreement=e.serl_min_agreement,
                                     max_agreement=e.serl_max_agreement)
        if not kept:
            raise ValueError(f"serl: none of {len(questions)} self-instructed questions has a majority share in "
                             f"[{e.serl_min_agreement}, {e.serl_max_agreement}] (evaluate.serl_min_agreement / "
                             "serl_max_agreement)")
        return [RLItem(questions[i], None, stream_key("synthetic", j)) for j, i in enumerate(kept)]


def _setup(cfg):
    """What every student job of a run needs, loaded once per process."""
    policy, task = load(cfg)
    base = snapshot(policy)
    hard_train, hard_test = hard_sets(cfg)
    real = [RLItem(p.question, p.answer, stream_key("problem", p.id)) for p in hard_train]
    qsets = QuestionSets(cfg, policy, task, base)
    ps_stages = {i: best_promoted_stage(cfg, i) for i in qsets.eligible}
    return policy, task, base, real, hard_test, qsets, ps_stages


def method_settings(ecfg, method: str):
    """The fresh-student settings of `method`: Hard-Only with a 4x group (Table 4's g = 128 row); Hard-Only trained
    `extended_steps_factor` times longer (v3 Fig. 10); a method named with a mode (`base-t@curriculum`) in that mode;
    SOAR-PQ in curriculum mode without learning-rate warm-up ("for PQ with curriculum evaluation we use zero learning
    rate warmup to match the inner-loop environment", App. B.6); SeRL in mixed mode (it trains on its questions
    throughout) at its fixed step (`serl_step`); the evaluate section's settings otherwise."""
    spec = parse_method(method)
    method = spec.base
    if spec.mode is not None:
        ecfg = dataclasses.replace(ecfg, mode=spec.mode)
    if method == "hard-only-4x-group":
        return dataclasses.replace(ecfg, student=dataclasses.replace(ecfg.student, group_size=4 * ecfg.student.group_size))
    if method == "hard-only-extended":
        return dataclasses.replace(ecfg, steps=ecfg.extended_steps_factor * ecfg.steps)
    if method == "serl":  # SeRL has no curriculum (mixed unless named @curriculum), reported at its fixed step
        return dataclasses.replace(ecfg, mode=spec.mode or "mixed", fixed_step=ecfg.serl_step,
                                   steps=max(ecfg.steps, ecfg.serl_step))
    if method == "soar-pq" and ecfg.mode == "curriculum":
        return dataclasses.replace(ecfg, student=dataclasses.replace(ecfg.student, warmup_steps=0))
    return ecfg


def student_job(cfg, method: str, s: int) -> dict:
    """Student s of `method`: its final pass@k rows, and for a trained student its curve and stop row. Everything
    random in it derives from (run seed, evaluate, role, s, ...), so it runs the same in any worker and order."""
    t0 = time.time()
    policy, task, base, real, hard_test, qsets, ps_stages = worker_cache(("evaluate", repr(cfg)), lambda: _setup(cfg))
    ecfg = cfg.evaluate

    def seed_of(role, *idx):
        return derive(cfg.seed, "evaluate", role, s, *idx)

    if method in INFERENCE_METHODS:
        if method == "soar-ps":
            ps_run = qsets.eligible[s % len(qsets.eligible)]
            restore(policy, load_snapshot(teacher_source(cfg).layout.meta("grounded", ps_run).promoted(ps_stages[ps_run])))
        elif method == "grounded-t-inference":  # the teacher answers the student prompt: teaching is not solving
            restore(policy, load_snapshot(meta_train.trained_teacher_path(teacher_source(cfg), "grounded",
                                                                          s % cfg.meta.runs)))
        else:
            restore(policy, base)
        # the same seeds as student s's step-0 evaluation: the untrained model there *is* this row
        pk = test_pass_at_k(policy, task, hard_test, samples=ecfg.samples, ks=ecfg.ks, seed=seed_of("test_sample", 0),
                            batch_size=cfg.model.gen_batch_size)
        return {"finals": [{"method": method, "seed": s, "k": k, "pass_at_k": v} for k, v in pk.items()],
                "seconds": time.time() - t0}
    items = qsets.items(method, s)
    mcfg = method_settings(ecfg, method)
    curve, rewards = train_fresh_student(policy, task, base, synthetic=items, hard_train=real, test_problems=hard_test,
                                         ecfg=mcfg, seed_of=seed_of, batch_size=cfg.model.gen_batch_size)
    stop, window = summarize(curve, rewards, mcfg)
    curve["method"], curve["seed"] = method, s
    curve["teacher_seed"] = s % cfg.meta.runs if base_method(method) in TEACHER_METHODS else -1  # Fig. 5 right
    points = int(((curve.step >= stop) & (curve.step <= stop + ecfg.after_stop_window)).sum() // len(ecfg.ks))
    return {"finals": [{"method": method, "seed": s, "k": int(k), "pass_at_k": float(v)} for k, v in window.items()],
            "curve": curve, "n_questions": len(items), "seconds": time.time() - t0,
            "stop": {"method": method, "seed": s, "stop_step": stop, "window_points": points,
                     "train_reward_last": float(np.mean(rewards[-10:]))}}


# params that do not change what an evaluation student computes (its cache key leaves them out): sections, and the
# evaluate keys that only decide which students exist (more seeds or another method list keep the finished ones)
NOT_STUDENT_INPUTS = ("name", "results_dir", "description", "deviations", "executor", "tracking", "stages", "analyze",
                      "world_check")
NOT_STUDENT_EVALUATE = ("methods", "seeds", "other_seeds", "base_model_seeds", "ps_seeds")


def student_inputs(cfg, method: str, s: int, eligible: list[int], ps_stages: dict[int, int]) -> list[Path]:
    """The files student s of `method` reads besides the params: the hard sets, and the teacher checkpoint, the PQ
    file or the promoted student it samples."""
    src, base = teacher_source(cfg), base_method(method)
    files = [cfg.layout.hard_train, cfg.layout.hard_test]
    kind = INFERENCE_TEACHER.get(base) or meta_train.TEACHER_KIND.get(base)
    if kind is not None:
        files.append(meta_train.trained_teacher_path(src, kind, s % cfg.meta.runs))
    if base in ("soar-pq", "soar-ps") and eligible:
        run = eligible[s % len(eligible)]
        files += [src.layout.meta("grounded", run).pq, src.layout.meta("grounded", run).promotions]
        if base == "soar-ps":
            files.append(src.layout.meta("grounded", run).promoted(ps_stages[run]))
    return files


def student_key(cfg, method: str, s: int, eligible: list[int], ps_stages: dict[int, int]) -> str:
    """What student s of `method` depends on, hashed: the params (less NOT_STUDENT_INPUTS and NOT_STUDENT_EVALUATE),
    the method, the index, and the bytes of every file it reads. A cached result with another key is recomputed."""
    import hashlib
    import json

    from ..config import to_dict

    params = {k: v for k, v in to_dict(cfg).items() if k not in NOT_STUDENT_INPUTS}
    params["evaluate"] = {k: v for k, v in params["evaluate"].items() if k not in NOT_STUDENT_EVALUATE}
    h = hashlib.sha256(json.dumps([params, method, s], sort_keys=True, default=str).encode())
    for f in student_inputs(cfg, method, s, eligible, ps_stages):
        h.update(b"\0" + (f.read_bytes() if f.exists() else b"missing"))
    return h.hexdigest()[:16]


def cached_student(path: Path, key: str) -> dict | None:
    """A finished student's result from an earlier (killed or finished) render of this run, if its key matches."""
    import json

    try:
        blob = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    res = blob.get("result") if isinstance(blob, dict) and blob.get("key") == key else None
    if not isinstance(res, dict) or not isinstance(res.get("finals"), list):  # another key, or a damaged file
        return None
    if "curve" in res:
        res["curve"] = pd.DataFrame(res["curve"])
    return res


@exclusive("evaluate")
def run(cfg, log=print) -> EvaluateResult:
    """Every method's students (each saved under evaluate/students/ as it finishes, with the key of what it
    depends on, so a killed render -- or one in a later session -- redoes only the students it lacks), then the
    tables and the comparisons."""
    layout = open_run(cfg)
    ecfg = cfg.evaluate
    eligible, counts = pq_runs(cfg)
    ps_stages = {i: best_promoted_stage(cfg, i) for i in eligible}
    skipped, jobs = {}, []
    for method in ecfg.methods:
        why = missing_input(cfg, method, eligible, counts)
        if why:
            skipped[method] = why
            log(f"{method}: skipped ({why})")
            continue
        jobs += [(cfg, method, s) for s in range(students(ecfg, method, len(eligible)))]
    ids = [(method, s) for _, method, s in jobs]  # a job's identity (the jobs themselves hold the config)
    keys = {i: student_key(cfg, i[0], i[1], eligible, ps_stages) for i in ids}
    saved = {i: layout.evaluate_student(*i) for i in ids}
    results_by_id = {i: cached_student(saved[i], keys[i]) for i in ids}
    todo = [job for job, i in zip(jobs, ids) if results_by_id[i] is None]
    if len(todo) < len(jobs):
        log(f"{len(jobs) - len(todo)} of {len(jobs)} students found finished in {display_path(saved[ids[0]].parent)} "
            f"(same params and inputs): not trained again")
    done = [i for i in ids if results_by_id[i] is not None]
    from ..tracking import tracker

    track = tracker(cfg, "evaluate")  # does nothing unless the params name a tracker

    def progress(job, res):
        i = (job[1], job[2])
        done.append(i)
        blob = dict(res, curve=res["curve"].to_dict(orient="list")) if "curve" in res else res
        write_json(saved[i], {"key": keys[i], "result": blob})
        log(f"[{len(done)}/{len(jobs)}] {job[1]} student {job[2]}: {res['seconds']:.0f} s")
        report_progress(layout, "evaluate", "students", len(done), len(jobs), "students")
        track.log({f"{r['method']}/pass@{r['k']}": r["pass_at_k"] for r in res["finals"]}, step=len(done))

    try:
        for job, res in zip(todo, run_jobs(student_job, todo, cfg.executor, on_done=progress)):
            results_by_id[(job[1], job[2])] = res
    finally:
        track.close()
    results = [results_by_id[i] for i in ids]
    finals = [row for r in results for row in r["finals"]]
    curves = [r["curve"] for r in results if "curve" in r]
    stops = [r["stop"] for r in results if "stop" in r]
    timings, n_questions = {}, {}
    for (_, method, _), r in zip(jobs, results):
        timings[method] = round(timings.get(method, 0.0) + r["seconds"], 1)
        if "n_questions" in r:
            n_questions.setdefault(method, r["n_questions"])
    table = pd.DataFrame(finals)
    write_table(table, layout.table("pass_at_k"))
    comparisons = compare_methods(cfg, table)
    write_table(comparisons, layout.table("comparisons"))
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    write_table(curves, layout.table("curves"))
    stops = pd.DataFrame(stops)
    write_table(stops, layout.stops)
    write_json(layout.summary("evaluate"), {"skipped": skipped, "timings_s": timings, "pq_runs": eligible,
                                            "promotions_per_run": counts,
                                            "ps_stages": {str(k): v for k, v in ps_stages.items()},
                                            "n_questions": n_questions, "workers": cfg.executor.workers})
    return EvaluateResult(table=table, curves=curves, stops=stops, comparisons=comparisons, skipped=skipped,
                          timings=timings, n_questions=n_questions, pq_runs=eligible, ps_stages=ps_stages,
                          teacher_status=teacher_status(cfg, [m for m in ecfg.methods if m not in skipped]))


def teacher_status(cfg, methods) -> dict[str, dict[int, str]]:
    """How each teacher method's teachers fared in meta-training, seed by seed (stable, guarded, collapsed): a
    collapsed or guarded teacher is named wherever its students are reported."""
    kinds = {m: INFERENCE_TEACHER.get(m) or meta_train.TEACHER_KIND.get(base_method(m)) for m in methods}
    return {m: {i: meta_train.read(teacher_source(cfg), kind, i).status() for i in range(cfg.meta.runs)}
            for m, kind in kinds.items() if kind is not None}


def paper_ratio(a: str, b: str, k: int) -> float:
    """The paper's MATH (Table 4) ratio a/b at pass@k, where Table 4 reports both rows; NaN otherwise (no gap of the
    paper's to power against: Base-T and Grounded-T without promotion have no row there)."""
    t = paper_table("MATH (Table 4)")
    if a not in t.index or b not in t.index or a == b:
        return np.nan
    mean = lambda m: float(t.loc[m, k].split("±")[0])  # noqa: E731
    return mean(a) / mean(b)


def power_note(a: str, b: str) -> str:
    """Why a comparison has no power figure ('' when it has one)."""
    t = paper_table("MATH (Table 4)")
    missing = [m for m in (a, b) if m not in t.index]
    return f"no power: the paper's Table 4 has no {' or '.join(missing)} row" if missing else ""


def identical_by_construction(cfg) -> dict[tuple[str, str], str]:
    """Comparisons between two arms that are the same by construction in this run, with why: Grounded-T vs Grounded-T
    without promotion when, for every teacher seed, the two trained teachers hold equal tensors (with common random
    numbers the runs are identical until the first promotion, so no promotion means one teacher twice)."""
    out = {}
    src = teacher_source(cfg)
    pairs = [(meta_train.trained_teacher_path(src, "grounded", i),
              meta_train.trained_teacher_path(src, "grounded-no-promotion", i)) for i in range(cfg.meta.runs)]
    if pairs and all(a.exists() and b.exists() for a, b in pairs):
        import torch

        same = all(all(torch.equal(x[n], y[n]) for n in x) for x, y in
                   ((load_snapshot(a), load_snapshot(b)) for a, b in pairs))
        if same:
            out[("grounded-t", "grounded-t-no-promotion")] = ("untestable: the two teachers are identical (no grounded "
                                                              "run promoted, so the arms never diverged)")
    return out


def compare_methods(cfg, table: pd.DataFrame) -> pd.DataFrame:
    """Each comparison at each k: difference, 95% CI, test (paired by student where both arms are trained fresh
    students or both inference with the same student indices; else Welch), and the design's power for the paper's
    relative gap, simulated with this run's own SDs."""
    cols = ["comparison", "k", "difference", "ci_low", "ci_high", "p_value", "n_a", "n_b", "power", "test", "paper_ratio",
            "note"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    identical = identical_by_construction(cfg)
    for a, b in COMPARISONS:
        if a not in set(table.method) or b not in set(table.method):
            continue
        if (a, b) in identical:
            for k in sorted(table.k.unique()):
                xa = table[(table.method == a) & (table.k == k)].pass_at_k
                xb = table[(table.method == b) & (table.k == k)].pass_at_k
                rows.append({"comparison": f"{a} vs {b}", "k": int(k), "difference": float(xa.mean() - xb.mean()),
                             "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "n_a": len(xa), "n_b": len(xb),
                             "power": np.nan, "test": "untestable", "paper_ratio": np.nan, "note": identical[(a, b)]})
            continue
        for k in sorted(table.k.unique()):
            xa = table[(table.method == a) & (table.k == k)].set_index("seed").pass_at_k.sort_index()
            xb = table[(table.method == b) & (table.k == k)].set_index("seed").pass_at_k.sort_index()
            paired = (a in INFERENCE_METHODS) == (b in INFERENCE_METHODS) and list(xa.index) == list(xb.index)
            r = stats.compare(xa.values, xb.values, paired)
            ratio = paper_ratio(a, b, int(k))
            gap = (ratio - 1) * xb.mean() if not np.isnan(ratio) else np.nan
            pw_seed = derive(cfg.seed, "evaluate", "power_simulation", a, b, int(k))
            sd_diff = float(np.std(xa.values - xb.values, ddof=1)) if paired and len(xa) > 1 else 0.0
            pw = np.nan if np.isnan(gap) else stats.power(gap, len(xa), len(xb), paired, float(xa.std(ddof=1)),
                                                           float(xb.std(ddof=1)), sd_diff, seed=pw_seed)
            rows.append({"comparison": f"{a} vs {b}", "k": int(k), **{c: r[c] for c in cols[2:8]}, "power": pw,
                         "test": r["test"], "paper_ratio": ratio, "note": power_note(a, b)})
    return pd.DataFrame(rows, columns=cols)


# Paper Tables 4/5 (pass@k %, mean ± SD), the cells our methods map to.
PAPER_TABLES = {
    "MATH (Table 4)": {
        "base-model": "0.3±0.1 1.0±0.2 2.0±0.4 3.9±0.8 7.5±1.3", "hard-only": "0.5±0.1 1.7±0.4 3.2±0.8 5.7±1.5 9.6±2.6",
        "hard-only-4x-group": "1.4±1.0 3.9±2.6 6.1±3.9 8.9±5.5 12.4±7.4",
        "soar-pq": "1.7±1.0 5.3±2.6 8.5±3.7 13.0±4.8 18.9±5.3", "soar-ps": "1.0±0.2 3.8±0.6 6.8±1.1 11.5±1.6 18.1±2.4",
        "grounded-t": "1.6±0.5 5.1±1.4 8.4±2.1 13.1±2.9 19.1±3.7", "intrinsic-t": "1.0±0.6 3.3±2.1 5.7±3.5 9.2±5.3 14.1±7.5",
        "curated": "2.1±0.0 6.6±0.1 10.5±0.3 15.7±0.5 21.8±0.9",
        "grounded-t-inference": "0.3±0.0 1.1±0.2 2.2±0.3 4.4±0.6 8.3±1.1",
        "serl": "0.5±0.0 2.1±0.0 4.0±0.0 7.3±0.2 12.4±1.0",  # SeRL (step 100)
    },
    "HARP (Table 5)": {
        "base-model": "0.2±0.0 0.9±0.0 1.7±0.0 3.4±0.0 6.4±0.0", "hard-only": "0.4±0.1 1.4±0.2 2.6±0.4 4.7±0.6 8.2±1.0",
        "soar-pq": "0.7±0.3 2.5±0.8 4.5±1.3 7.7±1.7 12.3±2.0", "soar-ps": "0.6±0.1 2.1±0.3 3.9±0.6 7.0±0.9 11.8±1.2",
        "grounded-t": "0.5±0.2 2.0±0.5 3.8±0.9 6.7±1.3 11.2±1.7", "intrinsic-t": "0.4±0.1 1.6±0.5 3.1±0.8 5.6±1.4 9.6±2.1",
        "curated": "0.6±0.1 2.1±0.4 4.0±0.7 7.1±0.9 11.9±0.9",
        "grounded-t-inference": "0.2±0.0 0.9±0.1 1.9±0.2 3.6±0.4 6.8±0.7",
        "serl": "0.5±0.0 1.9±0.1 3.6±0.2 6.5±0.3 10.9±0.4",  # SeRL (step 100)
    },
}


def paper_table(name: str) -> pd.DataFrame:
    """A paper table as a DataFrame (rows: our method names; curated = the paper's 'MATH train (128)' row,
    which is what our math-world curated arm samples; hard-only-4x-group = 'Hard-Only (g=128)', a 4x RLOO group;
    base-t and grounded-t-no-promotion are not reported in the paper's tables)."""
    rows = {m: dict(zip([1, 4, 8, 16, 32], v.split())) for m, v in PAPER_TABLES[name].items()}
    return pd.DataFrame(rows).T
