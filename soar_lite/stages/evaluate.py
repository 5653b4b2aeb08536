"""Stage `evaluate` (notebook 04): every method evaluated the same way (paper §2.9, §3, Tables 4-6), with the
comparisons the paper's claims rest on tested.

Methods (names as in tables/pass_at_k.csv): the arms of `soar_lite/arms.py`, which says what each is, what it reads
and how its students differ; `<method>#<n>` samples n questions instead of `n_questions` (Figs. 14-17) and
`<method>@<mode>` trains in that mixing mode whatever `mode` says (Figs. 7/8 overlay the two modes of one method,
with the same students, questions and seeds; config.parse_method reads the names).
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
Resumable at two grains (ours): each finished student is kept with the key of what it depends on
(evaluate/students/), and a student still training keeps its state beside it every few minutes (`.partial.pt`:
adapter, AdamW, generator, curve), so a killed render -- a session that ends inside a student that trains for hours,
like the compute-matched Hard-Only -- loses minutes, not the student; the resumed student's result is the
uninterrupted one's.

Writes tables/pass_at_k.csv, tables/comparisons.csv, tables/curves.csv, evaluate/stops.csv, evaluate/summary.json.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import arms, serl, stats
from ..config import parse_method, to_dict
from ..evaluate import evaluation_points, load_partial, partial_seconds, summarize, test_pass_at_k, train_fresh_student
from ..executor import run_jobs, worker_cache
from ..models import load_snapshot, restore, snapshot
from ..rundir import RunDirError, report_progress, write_json, write_table
from ..sampling import sample
from ..seeds import derive, stream_key
from ..student import RLItem
from . import meta_train
from .common import (display_path, exclusive, hard_sets, input_digest, is_number, load, open_run,
                     pass_at_k_row_problem, saved_result, scale_label, teacher_questions)

ARMS = arms.ARMS
INFERENCE_METHODS, CENTRAL, TEACHER_METHODS = arms.INFERENCE_METHODS, arms.CENTRAL, arms.TEACHER_METHODS
FIG7_METHODS, COMPARISONS = arms.FIG7_ARMS, arms.COMPARISONS


def teacher_source(cfg):
    """The config whose run directory holds the teachers, PQ and PS the evaluation samples: this run, or the run
    `evaluate.teacher_run` names under the same results_dir (Table 6: a MATH run's teachers evaluated on the hard set
    of an OlympiadBench run). Its meta section is this run's (`extends:` the source run's params keeps them equal)."""
    return cfg if not cfg.evaluate.teacher_run else dataclasses.replace(cfg, name=cfg.evaluate.teacher_run)


def base_method(method: str) -> str:
    """'grounded-t#32@curriculum' -> 'grounded-t' (config.parse_method)."""
    return parse_method(method).base


def arm_of(method: str) -> arms.Arm:
    """The registry entry of a method name (`grounded-t#32@curriculum` -> grounded-t's)."""
    return ARMS[base_method(method)]


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
            if untestable_reason(r):
                out.append(f"{r.comparison}: {untestable_reason(r)}.")
                continue
            word, numbers = row_verdict(r, k)
            if word == "untestable":
                note = f"; {r.note}" if isinstance(r.get("note"), str) and r.note else ""
                out.append(f"{r.comparison} at pass@{k}: untestable -- {numbers}{note}.")
                continue
            power = (f"power for the paper's MATH ratio ({r.paper_ratio:.2f}x) {r.power:.2f}" if not np.isnan(r.power)
                     else r.note or "no power figure")
            out.append(f"{r.comparison} at pass@{k}: {word} -- {numbers}; {power}.")
        for m, why in self.skipped.items():
            out.append(f"{m}: skipped ({why}).")
        for m, status in self.teacher_status.items():
            out.append(f"{m} teachers: " + "; ".join(f"teacher seed {i} {st}" for i, st in status.items()) + ".")
        return out + self.paper_findings(k)

    def verdict(self, comparison: str, k: int) -> tuple[str, str]:
        """(reproduced | contradicted | suggestive (k units) | not established | untestable | cannot be tested here,
        the numbers behind it) for 'a vs b', at the unit its claim is about."""
        c = self.comparisons
        row = c[(c.comparison == comparison) & (c.k == k)] if not c.empty else c
        if not row.empty and untestable_reason(row.iloc[0]):
            return "cannot be tested here", f"{comparison}: {untestable_reason(row.iloc[0])}"
        if row.empty:
            return "cannot be tested here", f"{comparison}: not evaluated"
        word, numbers = row_verdict(row.iloc[0], k)
        return word, f"{comparison} {numbers}"

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
                         "untestable" if v == "untestable" else
                         f"a difference on too few units, {v}" if v.startswith("suggestive") else
                         f"difference established (the first arm {'higher' if v == 'reproduced' else 'lower'})")
                out.append(f"{observation}: here {shown} -- {n}.")
        return out


def untestable_reason(r) -> str:
    """Why a comparisons.csv row cannot be tested at all (its note, 'untestable: ...', e.g. two arms identical by
    construction), or '' for a row whose test ran (its note, if any, says only why it has no power figure). Before,
    any untestable row with a note read as a reason, so a no-variance row's "no power: ..." note replaced its verdict
    in report 04's findings (an erratum in the renders of 4c53f9a and cd6ffb4)."""
    note = r.get("note")
    return note if r.test == "untestable" and isinstance(note, str) and note.startswith("untestable") else ""


def row_verdict(r, k: int) -> tuple[str, str]:
    """(verdict, 'the numbers behind it') of one comparisons.csv row: its difference with interval, test and p, what
    it rests on (units and students) and its scale label. A row of a table written before the unit columns existed
    gets the old student-level words."""
    if "verdict" in r and isinstance(r.verdict, str):
        word = r.verdict
    else:  # a table rendered before the unit of replication was recorded
        word = "untestable" if np.isnan(r.p_value) else ("not established" if r.p_value >= stats.ALPHA else
                                                           "reproduced" if r.difference > 0 else "contradicted")
    rests = r.rests_on if "rests_on" in r and isinstance(r.rests_on, str) else f"n = {r.n_a}/{r.n_b} students"
    scale = f"; {r.scale}" if "scale" in r and isinstance(r.scale, str) else ""
    if np.isnan(r.p_value):
        # the test column names the unit ("untestable on teachers"): no p from no variance, else from too few units
        why = "no variance between units" if str(r.test).startswith("untestable") else "fewer than 2 units per arm"
        return word, f"{100 * r.difference:+.1f} points of pass@{k} ({why}; {rests}{scale})"
    return word, (f"{100 * r.difference:+.1f} points of pass@{k} (95% CI {100 * r.ci_low:+.1f} to "
                  f"{100 * r.ci_high:+.1f}, {r.test}, {stats.p_eq(r.p_value)}; {rests}{scale})")


def curated_items(task, count: int, seed: int, named: bool = False) -> list[RLItem]:
    """Real easier problems from the task's curated pool: all of it (a task with `curated_all`, unless the method
    names its count: `curated#32`), or `count` sampled (Table 4's MATH train (128))."""
    pool = task.problems(task.curated_pool)
    count = 0 if task.curated_all and not named else count
    rng = np.random.default_rng(seed)
    pick = pool if count <= 0 or count >= len(pool) else [pool[i] for i in rng.choice(len(pool), count, replace=False)]
    return [RLItem(p.question, p.answer, stream_key("curated", p.id)) for p in pick]


def students(ecfg, method: str, n_ps_runs: int = 1) -> int:
    """How many students `method` gets (arms.Arm.students; grounded-t#32@mixed counts as grounded-t): SOAR-PS's
    inference seeds for each eligible run."""
    count = arm_of(method).students
    if count == "ps_seeds":
        return ecfg.ps_seeds * n_ps_runs
    if count == "other_seeds":
        return ecfg.other_seeds or ecfg.seeds
    return getattr(ecfg, count)


def teacher_kinds(methods) -> list[str]:
    """The meta-training runs (teacher kinds) the methods read: a teacher to sample, or the grounded run's PQ / PS."""
    return [k for k in dict.fromkeys(arm_of(m).reads_run() for m in methods) if k is not None]


def preflight(cfg, resume: bool = False) -> None:
    """Refusals before anything is written, for an evaluation that takes its teachers from another run
    (`evaluate.teacher_run`): that run must exist, hold finished meta-training for the teachers the methods read,
    and have been made with this run's model settings (a teacher of another LoRA rank cannot be loaded)."""
    if not cfg.evaluate.teacher_run:
        return
    import yaml

    from ..config import flat

    src = teacher_source(cfg)
    if not src.layout.config.is_file():
        raise RunDirError(f"evaluate.teacher_run: {cfg.evaluate.teacher_run!r} is not a run under "
                          f"{display_path(cfg.results_dir)} (no {display_path(src.layout.config)})")
    try:
        recorded = yaml.safe_load(src.layout.config.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RunDirError(f"evaluate.teacher_run: {display_path(src.layout.config)} cannot be read "
                          f"({type(e).__name__})") from None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("model"), dict):
        raise RunDirError(f"evaluate.teacher_run: {display_path(src.layout.config)} is not a run's config")
    ours, theirs = flat({"model": to_dict(cfg)["model"]}), flat({"model": recorded["model"]})
    skip = ("model.threads", "model.gen_batch_size", "model.backend")
    diff = [k for k in sorted(set(ours) | set(theirs)) if k not in skip and ours.get(k) != theirs.get(k)]
    if diff:
        raise RunDirError(f"evaluate.teacher_run: {cfg.evaluate.teacher_run!r} was made with other model settings ("
                          + "; ".join(f"{k}: {theirs.get(k, '(absent)')!r} there, {ours.get(k, '(absent)')!r} here"
                                      for k in diff[:4]) + "): its teachers cannot be loaded into this run's model")
    meta_train.check_finished(src, teacher_kinds(cfg.evaluate.methods),
                              f"evaluate.teacher_run {cfg.evaluate.teacher_run!r}")


def teacher_seed(cfg, kind: str | None, s: int) -> int:
    """The teacher seed student s of an arm reading kind `kind` takes: s mod that kind's seed count (meta.kind_runs,
    else meta.runs, of the teacher source)."""
    return s % teacher_source(cfg).meta.runs_for(kind)


def pq_runs(cfg, kind: str = "grounded") -> tuple[list[int], dict[int, int]]:
    """Runs of meta-training kind `kind` with at least evaluate.min_promotions promotions, and the promotion count
    of every run."""
    counts = {i: len(meta_train.read(teacher_source(cfg), kind, i).promotions)
              for i in range(teacher_source(cfg).meta.runs_for(kind))}
    return [i for i, c in counts.items() if c >= cfg.evaluate.min_promotions], counts


def best_promoted_stage(cfg, run: int, kind: str = "grounded") -> int:
    """SOAR-PS (§2.9): the promotion stage with the best hard-train score, the run's own reward metric (the paper's
    greedy accuracy; the tiny world's log-likelihood, where greedy accuracy is 0 at every stage)."""
    proms = meta_train.read(teacher_source(cfg), kind, run).promotions
    return int(np.argmax([p.get("hard_train_score", p["hard_train_greedy_acc"]) for p in proms])) + 1


@dataclass(frozen=True)
class PromotedRuns:
    """What the PQ / PS arms of one promoting meta-training kind read (arms.Arm.promoted_from: grounded for SOAR-PQ /
    SOAR-PS, grounded-frozen for the frozen-teacher control): its runs with >= evaluate.min_promotions promotions,
    every run's count, and the stage PS evaluates in each eligible run. Student s reads eligible run s mod their
    number."""

    kind: str
    eligible: list[int]
    counts: dict[int, int]
    ps_stages: dict[int, int]

    def run_of(self, s: int) -> int:
        return self.eligible[s % len(self.eligible)]


def promoted_runs(cfg, kind: str = "grounded") -> PromotedRuns:
    eligible, counts = pq_runs(cfg, kind)
    return PromotedRuns(kind, eligible, counts, {i: best_promoted_stage(cfg, i, kind) for i in eligible})


def promoted_sources(cfg, methods=()) -> dict[str, PromotedRuns]:
    """The grounded run's PQ / PS sources, and those of every other promoting kind `methods` read."""
    kinds = dict.fromkeys(["grounded"] + [arm_of(m).promoted_from for m in methods if arm_of(m).promoted])
    return {k: promoted_runs(cfg, k) for k in kinds}


def missing_input(cfg, method: str, sources: dict[str, PromotedRuns]) -> str | None:
    """Why `method` cannot be evaluated in this run (a teacher checkpoint or a PQ/PS source is missing), or None."""
    arm = arm_of(method)
    if arm.teacher is not None:
        for i in range(teacher_source(cfg).meta.runs_for(arm.teacher)):
            path = meta_train.trained_teacher_path(teacher_source(cfg), arm.teacher, i)
            if not path.exists():
                return f"no trained teacher at {path}"
    if arm.rollouts_of is not None:
        for i in range(teacher_source(cfg).meta.runs_for(arm.rollouts_of)):
            path = teacher_source(cfg).layout.meta(arm.rollouts_of, i).metrics
            if not path.exists():
                return f"no meta-training metrics at {path} (the rollouts it matches)"
    if arm.promoted and not teacher_source(cfg).layout.meta(arm.promoted_from, 0).state.exists():
        return (f"no {arm.promoted_from} meta-training run at {teacher_source(cfg).layout.meta(arm.promoted_from, 0).dir} "
                f"(meta.teachers names the runs meta-training makes)")
    if arm.promoted and not sources[arm.promoted_from].eligible:
        return (f"no meta-training run made >= {cfg.evaluate.min_promotions} promotions (promotions per "
                f"{arm.promoted_from} run: {sources[arm.promoted_from].counts})")
    return None


class QuestionSets:
    """The synthetic questions of (method, student): student s gets draw s from teacher seed s mod meta.runs."""

    def __init__(self, cfg, policy, task, base):
        self.cfg, self.policy, self.task, self.base = cfg, policy, task, base
        self.sources = promoted_sources(cfg, cfg.evaluate.methods)  # PQ / PS runs per promoting kind

    def items(self, method: str, s: int) -> list[RLItem]:
        spec = parse_method(method)  # both modes of a method train on the same questions
        cfg, n, arm = self.cfg, spec.n_questions or self.cfg.evaluate.n_questions, ARMS[spec.base]
        if not arm.questions:  # hard-train only
            return []
        if arm.questions == "curated":
            return curated_items(self.task, n, derive(cfg.seed, "evaluate", "curated_draw", s), spec.n_questions is not None)
        if arm.questions == "serl":
            return self.serl_items(n, s)
        if arm.questions == "pq":
            src = self.sources[arm.promoted_from]
            pq = meta_train.read(teacher_source(cfg), src.kind, src.run_of(s)).pq
            return [RLItem(r["question"], r["answer"], stream_key("pq", i)) for i, r in enumerate(pq)]
        kind = arm.teacher  # questions == "teacher": a meta-trained teacher, or the untrained model (None)
        ckpt = None if kind is None else meta_train.trained_teacher_path(teacher_source(cfg), kind, teacher_seed(cfg, kind, s))
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
    return policy, task, base, real, hard_test, qsets


def method_settings(ecfg, method: str, context: dict | None = None):
    """The fresh-student settings of `method`: a method named with a mode (`base-t@curriculum`) in that mode, then its
    arm's own changes (`arms.Arm.settings`: Hard-Only's 4x group and 4x length, SeRL's fixed step, PQ's warm-up,
    the compute-matched Hard-Only's length from `context['student_rollouts']`); the evaluate section's otherwise."""
    spec = parse_method(method)
    if spec.mode is not None:
        ecfg = dataclasses.replace(ecfg, mode=spec.mode)
    arm = ARMS[spec.base]
    if arm.settings is None:
        return ecfg
    return arm.settings(ecfg, spec, context=context) if arm.rollouts_of else arm.settings(ecfg, spec)


def settings_context(cfg, method: str, s: int) -> dict:
    """What an arm's settings read besides the evaluate section: the student rollouts of the meta-training run an arm
    with `rollouts_of` matches (run s mod meta.runs of the teacher source)."""
    arm = arm_of(method)
    if arm.rollouts_of is None:
        return {}
    src = teacher_source(cfg)
    run = teacher_seed(cfg, arm.rollouts_of, s)
    return {"student_rollouts": meta_train.read(src, arm.rollouts_of, run).student_rollouts(src.meta)}


def student_job(cfg, method: str, s: int, partial: Path | None = None, key: str = "") -> dict:
    """Student s of `method`: its final pass@k rows, and for a trained student its curve and stop row. Everything
    random in it derives from (run seed, evaluate, role, s, ...), so it runs the same in any worker and order. A
    trained student keeps its state in `partial` under `key` as it trains and resumes from it
    (`soar_lite.evaluate.train_fresh_student`)."""
    t0 = time.time()
    policy, task, base, real, hard_test, qsets = worker_cache(("evaluate", repr(cfg)), lambda: _setup(cfg))
    ecfg = cfg.evaluate

    def seed_of(role, *idx):
        return derive(cfg.seed, "evaluate", role, s, *idx)

    arm = arm_of(method)
    if arm.inference:
        if arm.promoted:  # SOAR-PS (or the frozen control's PS): the promoted student
            src = qsets.sources[arm.promoted_from]
            run = src.run_of(s)
            restore(policy, load_snapshot(teacher_source(cfg).layout.meta(src.kind, run).promoted(src.ps_stages[run])))
        elif arm.teacher is not None:  # the teacher answers the student prompt: teaching is not solving
            restore(policy, load_snapshot(meta_train.trained_teacher_path(teacher_source(cfg), arm.teacher,
                                                                          teacher_seed(cfg, arm.teacher, s))))
        else:
            restore(policy, base)
        # the same seeds as student s's step-0 evaluation: the untrained model there *is* this row
        pk = test_pass_at_k(policy, task, hard_test, samples=ecfg.samples, ks=ecfg.ks, seed=seed_of("test_sample", 0),
                            batch_size=cfg.model.gen_batch_size)
        return {"finals": [{"method": method, "seed": s, "k": k, "pass_at_k": v} for k, v in pk.items()],
                "seconds": time.time() - t0}
    items = qsets.items(method, s)
    mcfg = method_settings(ecfg, method, settings_context(cfg, method, s))
    curve, rewards = train_fresh_student(policy, task, base, synthetic=items, hard_train=real, test_problems=hard_test,
                                         ecfg=mcfg, seed_of=seed_of, batch_size=cfg.model.gen_batch_size,
                                         partial=partial, partial_key=key)
    stop, window = summarize(curve, rewards, mcfg)
    curve["method"], curve["seed"] = method, s
    curve["teacher_seed"] = teacher_seed(cfg, arm.teacher, s) if arm.samples_teacher else -1  # Fig. 5 right
    points = int(((curve.step >= stop) & (curve.step <= stop + ecfg.after_stop_window)).sum() // len(ecfg.ks))
    return {"finals": [{"method": method, "seed": s, "k": int(k), "pass_at_k": float(v)} for k, v in window.items()],
            "curve": curve, "n_questions": len(items), "seconds": time.time() - t0,
            "stop": {"method": method, "seed": s, "stop_step": stop, "window_points": points,
                     "train_reward_last": float(np.mean(rewards[-10:]))}}


# evaluate keys that only decide which students exist (more seeds or another method list keep the finished ones): an
# evaluation student's cache key leaves them out, with common.NOT_STUDENT_INPUTS and the analyze section
NOT_STUDENT_EVALUATE = ("methods", "seeds", "other_seeds", "base_model_seeds", "ps_seeds", "allow_unfinished_teacher")


def student_inputs(cfg, method: str, s: int, sources: dict[str, PromotedRuns] | None = None) -> list[Path]:
    """The files student s of `method` reads besides the params: the hard sets, and the teacher checkpoint, the PQ
    file or the promoted student it samples."""
    src, arm = teacher_source(cfg), arm_of(method)
    files = [cfg.layout.hard_train, cfg.layout.hard_test]
    if arm.teacher is not None:
        files.append(meta_train.trained_teacher_path(src, arm.teacher, teacher_seed(cfg, arm.teacher, s)))
    if arm.rollouts_of is not None:  # its length is read from the run's metrics and tau calibration
        layout = src.layout.meta(arm.rollouts_of, teacher_seed(cfg, arm.rollouts_of, s))
        files += [layout.metrics, layout.state]
    if arm.promoted and sources and sources[arm.promoted_from].eligible:
        runs = sources[arm.promoted_from]
        run = runs.run_of(s)
        files += [src.layout.meta(runs.kind, run).pq, src.layout.meta(runs.kind, run).promotions]
        if arm.inference:  # SOAR-PS reads the promoted student
            files.append(src.layout.meta(runs.kind, run).promoted(runs.ps_stages[run]))
    return files


def expected_cost(cfg, method: str, s: int) -> float:
    """A student's expected cost in RL steps (its training steps plus one per evaluation point, an evaluation point
    counted as one step): what evaluate's progress line and ETA count, so that seconds-long inference seeds and
    minutes-long trained students are not equal units."""
    if arm_of(method).inference:
        return 1.0
    try:
        e = method_settings(cfg.evaluate, method, settings_context(cfg, method, s))
    except (ValueError, OSError, KeyError):  # a matched arm whose run is not readable yet: the evaluate section's
        e = cfg.evaluate
    return float(e.steps + evaluation_points(e.steps, e.eval_every))


def student_key(cfg, method: str, s: int, sources: dict[str, PromotedRuns] | None = None) -> str:
    """What student s of `method` depends on, hashed (`common.input_digest`): the params less the analyze section and
    NOT_STUDENT_EVALUATE, the method, the index, and every file it reads (`student_inputs`). A cached result with
    another key is recomputed."""
    return input_digest(cfg, {"analyze": None, "evaluate": NOT_STUDENT_EVALUATE}, (method, s),
                        student_inputs(cfg, method, s, sources))


def student_problem(res) -> str | None:
    """What is malformed in a saved student's result (None when every field a report reads is well formed): finals
    rows of (method, seed, k, pass_at_k in [0, 1]), seconds, and for a trained student its curve (equal-length
    columns step, k, pass_at_k), question count and stop row."""
    if not isinstance(res, dict):
        return "the result is not a mapping"
    finals = res.get("finals")
    if not isinstance(finals, list) or not finals:
        return "no finals rows"
    for row in finals:
        if (why := pass_at_k_row_problem(row, ("seed",))) is not None:
            return f"a finals row is {why}"
    if not is_number(res.get("seconds"), 0):
        return "seconds missing or not a number"
    if "curve" in res or "stop" in res or "n_questions" in res:
        curve = res.get("curve")
        if not isinstance(curve, dict) or not all(isinstance(curve.get(c), list) for c in ("step", "k", "pass_at_k")):
            return "the curve is not columns step, k, pass_at_k"
        if len({len(v) if isinstance(v, list) else -1 for v in curve.values()}) != 1 or not curve["step"]:
            return "the curve's columns differ in length"
        if not all(is_number(v) for c in ("step", "k", "pass_at_k") for v in curve[c]):
            return "the curve holds a value that is not a number"
        stop = res.get("stop")
        if not isinstance(stop, dict) or not all(is_number(stop.get(c)) for c in ("stop_step", "window_points",
                                                                                   "train_reward_last")):
            return "the stop row is malformed"
        if not is_number(res.get("n_questions"), 0):
            return "n_questions missing or not a number"
    return None


def cached_student(path: Path, key: str, log=None) -> dict | None:
    """A finished student's result from an earlier (killed or finished) render of this run, if its key matches and
    every field is well formed (`student_problem`); a damaged file is named in the log and trained again."""
    res = saved_result(path, key, student_problem, log, redo="trained again")
    if res is not None and "curve" in res:
        res["curve"] = pd.DataFrame(res["curve"])
    return res


@exclusive("evaluate")
def run(cfg, log=print) -> EvaluateResult:
    """Every method's students (each saved under evaluate/students/ as it finishes, with the key of what it
    depends on, so a killed render -- or one in a later session -- redoes only the students it lacks), then the
    tables and the comparisons."""
    preflight(cfg)
    meta_train.check_finished(teacher_source(cfg), teacher_kinds(cfg.evaluate.methods), "evaluate")
    layout = open_run(cfg)
    ecfg = cfg.evaluate
    if ecfg.allow_unfinished_teacher:
        log("evaluate.allow_unfinished_teacher: teachers whose meta-training has not finished are evaluated as they "
            "are (a deviation)")
    sources = promoted_sources(cfg, ecfg.methods)
    grounded = sources["grounded"]
    skipped, jobs = {}, []
    for method in ecfg.methods:
        why = missing_input(cfg, method, sources)
        if why:
            skipped[method] = why
            log(f"{method}: skipped ({why})")
            continue
        arm = arm_of(method)
        n_runs = len(sources[arm.promoted_from].eligible) if arm.promoted else 1
        jobs += [(cfg, method, s) for s in range(students(ecfg, method, n_runs))]
    ids = [(method, s) for _, method, s in jobs]  # a job's identity (the jobs themselves hold the config)
    keys = {i: student_key(cfg, i[0], i[1], sources) for i in ids}
    saved = {i: layout.evaluate_student(*i) for i in ids}
    results_by_id = {i: cached_student(saved[i], keys[i], log) for i in ids}
    # a student not finished yet trains from its saved state, if a killed render left one (evaluate/students/
    # <method>-s<i>.partial.pt, deleted once its result is kept)
    partials = {i: layout.evaluate_student_partial(*i) for i in ids}
    todo = [(cfg, *i, partials[i], keys[i]) for i in ids if results_by_id[i] is None]
    earlier_s = {}  # a resumed student's training seconds in earlier sittings (added to its wall time)
    for _, method, s, path, key in todo:
        if path.exists():
            state = load_partial(path, key, log)
            if state is None:  # damaged (named above) or made for other inputs: the student starts over
                path.unlink(missing_ok=True)
            else:
                earlier_s[(method, s)] = partial_seconds(state)
                log(f"{method} student {s}: resumes at RL step {state['done']} ({display_path(path)})")
    # SeRL's students first: its agreement band may keep no question (a one-line ValueError), which should stop the
    # render before the other students train, not after; the tables keep the methods' order (`ids`)
    todo.sort(key=lambda job: arm_of(job[1]).questions != "serl")
    if len(todo) < len(jobs):
        log(f"{len(jobs) - len(todo)} of {len(jobs)} students found finished in {display_path(saved[ids[0]].parent)} "
            f"(same params and inputs): not trained again")
    done = [i for i in ids if results_by_id[i] is not None]
    # progress in expected cost, not in students (an inference seed takes seconds, a trained student minutes): a
    # trained student weighs its RL steps plus its evaluation points, an inference one its single evaluation
    weight = {i: expected_cost(cfg, i[0], i[1]) for i in ids}
    total_cost = sum(weight.values())
    from ..tracking import tracker

    track = tracker(cfg, "evaluate")  # does nothing unless the params name a tracker

    def progress(job, res):
        i = (job[1], job[2])
        res = results_by_id[i] = dict(res, seconds=res["seconds"] + earlier_s.get(i, 0.0))  # sittings summed
        done.append(i)
        blob = dict(res, curve=res["curve"].to_dict(orient="list")) if "curve" in res else res
        write_json(saved[i], {"key": keys[i], "result": blob})
        partials[i].unlink(missing_ok=True)  # the finished result is kept: its training state is not needed
        log(f"[{len(done)}/{len(jobs)}] {job[1]} student {job[2]}: {res['seconds']:.0f} s")
        report_progress(layout, "evaluate", "students", round(sum(weight[j] for j in done)), round(total_cost),
                        f"student-steps ({len(done)}/{len(jobs)} students)")
        track.log({f"{r['method']}/pass@{r['k']}": r["pass_at_k"] for r in res["finals"]}, step=len(done))

    try:
        run_jobs(student_job, todo, cfg.executor, on_done=progress)  # `progress` keeps each result as it finishes
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
    write_json(layout.summary("evaluate"), {"skipped": skipped, "timings_s": timings, "pq_runs": grounded.eligible,
                                            "promotions_per_run": grounded.counts,
                                            "ps_stages": {str(k): v for k, v in grounded.ps_stages.items()},
                                            "promoted_sources": {k: {"pq_runs": v.eligible, "promotions_per_run":
                                                                     v.counts} for k, v in sources.items()},
                                            "n_questions": n_questions, "workers": cfg.executor.workers})
    return EvaluateResult(table=table, curves=curves, stops=stops, comparisons=comparisons, skipped=skipped,
                          timings=timings, n_questions=n_questions, pq_runs=grounded.eligible,
                          ps_stages=grounded.ps_stages,
                          teacher_status=teacher_status(cfg, [m for m in ecfg.methods if m not in skipped]))


def teacher_status(cfg, methods) -> dict[str, dict[int, str]]:
    """How each teacher method's teachers fared in meta-training, seed by seed (stable, guarded, collapsed): a
    collapsed or guarded teacher is named wherever its students are reported."""
    kinds = {m: arm_of(m).teacher for m in methods}
    return {m: {i: meta_train.read(teacher_source(cfg), kind, i).status()
                for i in range(teacher_source(cfg).meta.runs_for(kind))}
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
              meta_train.trained_teacher_path(src, "grounded-no-promotion", i))
             for i in range(min(src.meta.runs_for("grounded"), src.meta.runs_for("grounded-no-promotion")))]
    if pairs and all(a.exists() and b.exists() for a, b in pairs):
        import torch

        same = all(all(torch.equal(x[n], y[n]) for n in x) for x, y in
                   ((load_snapshot(a), load_snapshot(b)) for a, b in pairs))
        if same:
            out[("grounded-t", "grounded-t-no-promotion")] = ("untestable: the two teachers are identical (no grounded "
                                                              "run promoted, so the arms never diverged)")
    return out


COMPARISON_COLUMNS = ["comparison", "k", "difference", "ci_low", "ci_high", "p_value", "n_a", "n_b", "unit", "k_a",
                      "k_b", "verdict", "rests_on", "scale", "power", "test", "paper_ratio", "note"]


def unit_of(a: str, b: str) -> str:
    """The unit of replication of the claim 'a vs b': the first arm's, unless it is a plain student arm (Hard-Only vs
    the base model), then the second's (the claim is about the teacher, PQ set or checkpoint of the other arm)."""
    ua, ub = arm_of(a).unit, arm_of(b).unit
    return ua if ua != "student" else ub


def unit_key(cfg, unit: str, eligible: list[int], teacher: str | None = None):
    """Student index s -> the replicate of `unit` it belongs to (the evaluation's design: student s samples teacher
    seed s mod meta.runs, and takes PQ / PS from eligible run s mod the number of such runs: `eligible`, the promoting
    kind's PromotedRuns.eligible). A replicate is named by its teacher-seed index, so a grounded run and its frozen
    control of one index -- common random numbers -- pair."""
    if unit == "teacher":
        return lambda s: teacher_seed(cfg, teacher, s)
    if unit in ("run", "checkpoint"):
        return (lambda s: eligible[s % len(eligible)]) if eligible else (lambda s: 0)
    return lambda s: s


def unit_means(x: pd.Series, key) -> pd.Series:
    """Per-unit means of the students' scores (x indexed by student index), indexed by unit."""
    return x.groupby([key(int(s)) for s in x.index]).mean().sort_index()


def rests_on(unit: str, ka: int, kb: int, na: int, nb: int) -> str:
    """'8 teachers, 2 students each' / '1 promoted checkpoints x 3 seeds' / '6 students' -- what a verdict rests on."""
    plural = arms.UNITS[unit]
    if unit == "student":
        return f"{na} / {nb} {plural}"
    each = lambda n, k: f"{n / k:.3g}" if k else "0"  # noqa: E731
    return f"{ka} / {kb} {plural}, {each(na, ka)} / {each(nb, kb)} students each"


def compare_methods(cfg, table: pd.DataFrame) -> pd.DataFrame:
    """Each comparison at each k, tested at the unit its claim is about (`arms.Arm.unit`): students are averaged
    within their unit (a teacher seed, a PQ run, a promoted checkpoint; a student arm is grouped by the other arm's
    unit, so index-matched students stay together), and the unit means are compared -- paired where both arms are
    trained fresh students or both inference and they share units (on the shared ones), else Welch. The verdict
    (`stats.verdict`) needs MIN_REPLICATES units per arm for 'reproduced' / 'contradicted'; every row carries the
    run's scale label and the design's power at that unit for the paper's relative gap, simulated with this run's
    own unit-level SDs."""
    if table.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    rows, scale = [], scale_label(cfg)
    identical = identical_by_construction(cfg)
    sources = promoted_sources(cfg, set(table.method))

    def key_of(arm_name: str, unit: str):  # an arm's own PQ / PS runs; a plain student arm follows the other's
        arm = arm_of(arm_name)
        return unit_key(cfg, unit, sources[arm.promoted_from if arm.promoted else "grounded"].eligible, arm.teacher)

    for a, b in COMPARISONS:
        if a not in set(table.method) or b not in set(table.method):
            continue
        unit = unit_of(a, b)
        lead = a if arm_of(a).unit != "student" else b  # the arm whose unit the claim is about
        key_a = key_of(a if arm_of(a).unit != "student" else lead, unit)
        key_b = key_of(b if arm_of(b).unit != "student" else lead, unit)
        for k in sorted(table.k.unique()):
            xa = table[(table.method == a) & (table.k == k)].set_index("seed").pass_at_k.sort_index()
            xb = table[(table.method == b) & (table.k == k)].set_index("seed").pass_at_k.sort_index()
            ua, ub = unit_means(xa, key_a), unit_means(xb, key_b)
            base = {"comparison": f"{a} vs {b}", "k": int(k), "n_a": len(xa), "n_b": len(xb), "unit": unit,
                    "k_a": len(ua), "k_b": len(ub), "rests_on": rests_on(unit, len(ua), len(ub), len(xa), len(xb)),
                    "scale": scale}
            if (a, b) in identical:
                rows.append({**base, "difference": float(xa.mean() - xb.mean()), "ci_low": np.nan, "ci_high": np.nan,
                             "p_value": np.nan, "verdict": "untestable", "power": np.nan, "test": "untestable",
                             "paper_ratio": np.nan, "note": identical[(a, b)]})
                continue
            shared = sorted(set(ua.index) & set(ub.index))
            paired = (a in INFERENCE_METHODS) == (b in INFERENCE_METHODS) and len(shared) >= 2
            va, vb = (ua[shared].values, ub[shared].values) if paired else (ua.values, ub.values)
            r = stats.compare(va, vb, paired)
            ratio = paper_ratio(a, b, int(k))
            gap = (ratio - 1) * xb.mean() if not np.isnan(ratio) else np.nan
            pw_seed = derive(cfg.seed, "evaluate", "power_simulation", a, b, int(k))
            sd_diff = float(np.std(va - vb, ddof=1)) if paired and len(va) > 1 else 0.0
            pw = np.nan if np.isnan(gap) else stats.power(gap, len(va), len(vb), paired, float(np.std(va, ddof=1))
                                                           if len(va) > 1 else 0.0, float(np.std(vb, ddof=1))
                                                           if len(vb) > 1 else 0.0, sd_diff, seed=pw_seed)
            reps = len(shared) if paired else min(len(ua), len(ub))
            word = stats.verdict(r["difference"], r["p_value"], reps, r["test"])
            if word == "suggestive":
                word = f"suggestive ({reps} {arms.UNITS[unit]})"
            rows.append({**base, **{c: r[c] for c in ("difference", "ci_low", "ci_high", "p_value")}, "verdict": word,
                         "power": pw, "test": r["test"] + ("" if unit == "student" else f" on {arms.UNITS[unit]}"),
                         "paper_ratio": ratio, "note": power_note(a, b)})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


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
