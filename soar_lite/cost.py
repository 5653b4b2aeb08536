"""Cost model: how much work a params file asks for, and what it costs at a given throughput.

Workload (exact, from the params file; the paper's App. B.9 / §2.8 give the same counts):
- per outer step: teacher samples g*n (inflated by the rejection rate) and one teacher update on them;
  g*r students x inner_steps x batch_questions x group_size rollouts, each trained on; Q_R scored for the
  baseline and for every student (M greedy generations each, or M log-likelihood forwards);
- per run: the outer steps, with inner steps growing after promotions (10 -> 15 -> 20 in the paper);
  the promotion count is not known in advance, so a run is given as a range: no promotion .. a promotion
  at every step.
Token counts need mean completion lengths; a finished run supplies measured ones (`measured`), a
params file alone uses `Lengths` (assumptions, always printed with the estimate).

Time = generated tokens / generation throughput + trained tokens / training throughput + scored tokens /
scoring throughput. Throughputs come from a run's own `profile` rows (metrics.jsonl, see profile.py) --
measured on its hardware and model -- or are given. Moving a throughput to another model size scales it
by the parameter ratio (compute per token ~ parameters): an extrapolation, labelled where used.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# the paper's App. B.9 / §2.8: 4 nodes x 8 GPUs for 48-60 h per SOAR run
PAPER_GPU_HOURS_PER_RUN = (1500.0, 1900.0)


@dataclass
class Lengths:
    """Mean token counts per row (prompt and completion). Defaults: assumptions for Llama-3.2-3B on MATH."""

    student_prompt: float = 150.0  # student prompt template + a MATH problem
    student_completion: float = 400.0  # a sampled solution (max 1,024)
    student_greedy: float = 400.0  # a greedy solution on Q_R
    teacher_prompt: float = 250.0  # the teacher prompt of App. B.1 through the chat template
    teacher_completion: float = 250.0  # one <question>/<answer> pair (max 512)
    reject_rate: float = 0.05  # share of teacher samples failing the format check


@dataclass
class Work:
    """Rows and tokens of one unit of work."""

    gen_rows: float = 0.0
    gen_tokens: float = 0.0
    train_rows: float = 0.0
    train_tokens: float = 0.0
    score_tokens: float = 0.0

    def __add__(self, o: "Work") -> "Work":
        return Work(*(a + b for a, b in zip(self.astuple(), o.astuple())))

    def __mul__(self, f: float) -> "Work":
        return Work(*(a * f for a in self.astuple()))

    def astuple(self) -> tuple:
        return (self.gen_rows, self.gen_tokens, self.train_rows, self.train_tokens, self.score_tokens)


@dataclass
class Throughput:
    """Tokens per second of each kind of work (one device)."""

    gen: float
    train: float
    score: float

    def seconds(self, w: Work) -> float:
        return w.gen_tokens / self.gen + w.train_tokens / self.train + (w.score_tokens / self.score if w.score_tokens else 0.0)

    def scaled(self, factor: float) -> "Throughput":
        return Throughput(self.gen * factor, self.train * factor, self.score * factor)


def outer_step_work(meta, inner_steps: int, L: Lengths, concurrent: int = 1) -> Work:
    """One outer step of Algorithm 1 (grounded reward). With `concurrent` students at a time (executor.kind ray,
    executor.workers), the g*r students' training and scoring is the critical path of ceil(g*r / concurrent)
    students: the work returned is then what one device does on that path (wall time, not total work)."""
    s = meta.student
    teacher_rows = meta.g * meta.n / (1.0 - L.reject_rate)
    teacher = Work(gen_rows=teacher_rows, gen_tokens=teacher_rows * L.teacher_completion,
                   train_rows=meta.g * meta.n, train_tokens=meta.g * meta.n * (L.teacher_prompt + L.teacher_completion))
    rollouts = meta.g * meta.r * inner_steps * s.batch_questions * s.group_size
    students = Work(gen_rows=rollouts, gen_tokens=rollouts * L.student_completion,
                    train_rows=rollouts, train_tokens=rollouts * (L.student_prompt + L.student_completion))
    scorings = meta.g * meta.r + 1  # every student and the baseline, on the step's Q_R
    if meta.reward_decoding == "logprob":
        scoring = Work(score_tokens=scorings * meta.M * (L.student_prompt + L.student_greedy))
    else:
        rows = scorings * meta.M * (meta.reward_samples if meta.reward_decoding == "sampled" else 1)
        scoring = Work(gen_rows=rows, gen_tokens=rows * L.student_greedy)
    if concurrent > 1:
        waves = -(-meta.g * meta.r // concurrent) / (meta.g * meta.r)  # share of the students on the critical path
        student_scoring = Work(score_tokens=scoring.score_tokens * (scorings - 1) / scorings,
                               gen_rows=scoring.gen_rows * (scorings - 1) / scorings,
                               gen_tokens=scoring.gen_tokens * (scorings - 1) / scorings)
        baseline_scoring = Work(score_tokens=scoring.score_tokens / scorings, gen_rows=scoring.gen_rows / scorings,
                                gen_tokens=scoring.gen_tokens / scorings)
        return teacher + baseline_scoring + (students + student_scoring) * waves
    return teacher + students + scoring


def intrinsic_step_work(meta, L: Lengths) -> Work:
    """One outer step of the Intrinsic-T teacher: teacher samples and update, plus intrinsic_samples student
    samples per synthetic question (the learnability reward, App. B.4); no student is trained."""
    teacher_rows = meta.g * meta.n / (1.0 - L.reject_rate)
    rows = meta.g * meta.n * meta.intrinsic_samples
    return Work(gen_rows=teacher_rows + rows, gen_tokens=teacher_rows * L.teacher_completion + rows * L.student_completion,
                train_rows=meta.g * meta.n, train_tokens=meta.g * meta.n * (L.teacher_prompt + L.teacher_completion))


def inner_steps_schedule(meta, promote_every_step: bool) -> list[int]:
    """Inner steps at each outer step: constant without promotions; an upper bound with a promotion at every step."""
    from .soar import inner_steps_for

    return [inner_steps_for(meta, t if promote_every_step else 0) for t in range(meta.outer_steps)]


def run_work(meta, L: Lengths, concurrent: int = 1, promotes: bool = True) -> tuple[Work, Work]:
    """(fewest, most) work of a whole meta-training run (on the critical path with `concurrent` students at a time),
    with the null steps that calibrate tau (meta.tau_null_steps outer steps at the first inner-step count, and with
    meta.tau_per_stage at every further count the most-promotions schedule reaches) when the run promotes."""
    def null_at(inner):
        return outer_step_work(meta, inner, L, concurrent) * (meta.tau_null_steps if promotes else 0)

    most = inner_steps_schedule(meta, True)
    later = sorted(set(most) - {meta.inner_steps}) if meta.tau_per_stage else []
    low = sum((outer_step_work(meta, k, L, concurrent) for k in inner_steps_schedule(meta, False)), null_at(meta.inner_steps))
    high = sum((outer_step_work(meta, k, L, concurrent) for k in most), null_at(meta.inner_steps))
    high = sum((null_at(k) for k in later), high)
    return low, high


def grounded_run_work(meta, L: Lengths, concurrent: int = 1) -> tuple[Work, Work]:
    """(fewest, most) work of all grounded meta-training runs (every kind but intrinsic, each at its own g, n, r)."""
    import dataclasses

    low, high = Work(), Work()
    for kind in meta.teachers:
        if kind != "intrinsic":
            g, n, r = meta.grouping(kind)
            lo, hi = run_work(dataclasses.replace(meta, g=g, n=n, r=r), L, concurrent,
                              promotes=kind != "grounded-no-promotion" and meta.promote)
            low, high = low + lo * meta.runs_for(kind), high + hi * meta.runs_for(kind)
    return low, high


def pipeline_wall_work(cfg, L: Lengths, n_test: int, pool_size: int) -> tuple[Work, Work]:
    """(fewest, most) work on the critical path of the whole pipeline with executor.workers workers: local -- the
    meta-training runs and the fresh students run `workers` at a time; ray -- the g*r students of each outer step
    and the fresh students run `workers` at a time, the meta-training runs one after another."""
    m, ex = cfg.meta, cfg.executor
    c = ex.workers
    grounded_runs = sum(m.runs_for(t) for t in m.teachers if t != "intrinsic")
    intrinsic = intrinsic_step_work(m, L) * (m.outer_steps * m.runs_for("intrinsic") * ("intrinsic" in m.teachers))
    n_students = fresh_students(cfg.evaluate) * runs_stage(cfg, "evaluate")
    per_student = all_students_work(cfg.evaluate, n_test, L, cfg.meta) * (1 / max(n_students, 1))
    evaluation = per_student * -(-n_students // c) * runs_stage(cfg, "evaluate")
    out = []
    for i in (0, 1):
        if ex.kind == "ray":
            meta = grounded_run_work(m, L, concurrent=c)[i] + intrinsic
        else:  # whole runs side by side: the critical path is ceil(runs / c) runs
            n_runs = grounded_runs + m.runs_for("intrinsic") * ("intrinsic" in m.teachers)
            meta = (grounded_run_work(m, L)[i] + intrinsic) * (-(-n_runs // c) / max(n_runs, 1))
        out.append(probe_work(pool_size, cfg.probe, L) + meta * runs_stage(cfg, "meta_train") + evaluation)
    return out[0], out[1]


def runs_stage(cfg, stage: str) -> int:
    """1 when `soar-lite run` runs `stage` for these params (their `stages`, empty = every stage), else 0."""
    return int(not cfg.stages or stage in cfg.stages)


def all_students_work(ecfg, n_test: int, L: Lengths, meta=None) -> Work:
    """Every fresh student of the evaluation, each with its method's settings (a 4x group, 4x the steps, ...); the
    compute-matched Hard-Only at a meta-training run's student rollouts at its first inner-step count (`meta`; the
    run's promotions add more)."""
    from .stages.evaluate import INFERENCE_METHODS, method_settings, students

    context = {}
    if meta is not None:
        low, _ = run_work(meta, L)
        context["student_rollouts"] = low.train_rows - meta.outer_steps * meta.g * meta.n
    total = Work()
    for m in ecfg.methods:
        if m not in INFERENCE_METHODS:
            total = total + evaluation_work(method_settings(ecfg, m, context), n_test, L) * students(ecfg, m)
    return total


def evaluation_work(ev, n_test: int, L: Lengths) -> Work:
    """One fresh-student run (one method, one seed): training rollouts plus the test pass@k evaluations."""
    from .evaluate import evaluation_points

    rollouts = ev.steps * ev.student.batch_questions * ev.student.group_size
    evals = evaluation_points(ev.steps, ev.eval_every) * n_test * ev.samples
    return Work(gen_rows=rollouts + evals, gen_tokens=(rollouts + evals) * L.student_completion,
                train_rows=rollouts, train_tokens=rollouts * (L.student_prompt + L.student_completion))


def probe_work(pool_size: int, probe, L: Lengths, survive: float = 0.15) -> Work:
    """fail@k filtering of a pool (a second confirming batch on the `survive` share that fails the first)."""
    rows = pool_size * probe.samples + pool_size * survive * probe.confirm_samples
    return Work(gen_rows=rows, gen_tokens=rows * L.student_completion)


# ---- measurements from a run --------------------------------------------------------------------
def read_profiles(metrics_path: Path) -> list[dict]:
    """The profiled outer steps of a meta-training metrics.jsonl -- or of a run folder's meta/metrics.jsonl. A
    missing, unreadable or malformed file is a one-line ValueError naming it."""
    path = Path(metrics_path)
    if path.is_dir():
        path = next((p for p in (path / "metrics.jsonl", path / "meta" / "metrics.jsonl") if p.is_file()), None)
        if path is None:
            raise ValueError(f"{metrics_path}: a folder without meta/metrics.jsonl (a run whose meta-training has run, "
                             f"or its metrics.jsonl)")
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: not a readable metrics.jsonl ({type(e).__name__})") from None
    return [r for r in rows if isinstance(r, dict) and "profile" in r]


def measured(metrics_path: Path) -> tuple[Throughput, Lengths, float]:
    """(throughput, mean lengths, mean seconds per step) from the `profile` of every outer step of a run.

    The run's profile does not separate teacher from student rows, so every length is the overall mean."""
    rows = read_profiles(metrics_path)
    if not rows:
        raise ValueError(f"{metrics_path}: no outer step has a 'profile' (runs older than profile.py have none)")
    tot = {k: sum(r["profile"].get(k, 0) for r in rows) for k in rows[0]["profile"]}
    thr = Throughput(gen=tot["gen_tokens"] / max(tot["gen_s"], 1e-9), train=tot["train_tokens"] / max(tot["train_s"], 1e-9),
                     score=tot["score_tokens"] / tot["score_s"] if tot["score_s"] > 0 else float("inf"))
    gen_len = tot["gen_tokens"] / max(tot["gen_rows"], 1)
    prompt_len = tot["gen_prompt_tokens"] / max(tot["gen_rows"], 1)
    lengths = Lengths(student_prompt=prompt_len, student_completion=gen_len, student_greedy=gen_len,
                      teacher_prompt=prompt_len, teacher_completion=gen_len, reject_rate=0.0)
    seconds = sum(r["seconds"] for r in rows) / len(rows)
    return thr, lengths, seconds


# parameter counts of the models the params files name (compute per token scales with them)
MODEL_PARAMETERS = {"meta-llama/Llama-3.2-3B-Instruct": 3.21e9, "meta-llama/Llama-3.1-8B-Instruct": 8.03e9,
                    "Qwen/Qwen2.5-0.5B-Instruct": 0.49e9,
                    "Qwen/Qwen2.5-1.5B-Instruct": 1.54e9, "tiny": 1.08e6}


def paper_implied_throughput(gpu_hours: float, L: Lengths | None = None) -> float:
    """Tokens per GPU-second (generated + trained, one throughput for both) that the paper's reported
    GPU-hours imply for our count of its own run (Table 3 settings, Llama-3.2-3B, mean of the inner-step
    range): its effective per-GPU efficiency, overheads included."""
    from .config import MetaConfig

    low, high = run_work(MetaConfig(), L or Lengths())
    mid = (low + high) * 0.5
    return (mid.gen_tokens + mid.train_tokens + mid.score_tokens) / (gpu_hours * 3600.0)


def snr_work(meta, L: Lengths, groupings=None, draws: int | None = None) -> Work:
    """The teacher-gradient SNR estimate (soar_lite.snr; meta.snr_draws, `soar-lite snr`): each draw is one full
    outer step of the untrained teacher at a grouping's g, n, r and the first inner-step count (every student trained
    and scored, no update), for every grouping (default: the run's and meta.paper_grouping)."""
    import dataclasses

    draws = meta.snr_draws if draws is None else draws
    groupings = groupings or list(dict.fromkeys([(meta.g, meta.n, meta.r), tuple(meta.paper_grouping)]))
    return sum((outer_step_work(dataclasses.replace(meta, g=g, n=n, r=r), meta.inner_steps, L) * draws
                for g, n, r in groupings), Work())


def estimate_table(cfg, thr: Throughput, L: Lengths, n_test: int, pool_size: int) -> dict:
    """Hours on one device of this throughput: per outer step (at the first and the largest inner-step count),
    per meta-training run (range), per fresh-student run, and for the probe."""
    m = cfg.meta
    low, high = run_work(m, L)
    h = lambda w: thr.seconds(w) / 3600.0  # noqa: E731
    return {
        "step_h": (h(outer_step_work(m, m.inner_steps, L)), h(outer_step_work(m, m.max_inner_steps, L))),
        "run_h": (h(low), h(high)),
        "student_rollouts_per_run": (low.train_rows - m.outer_steps * m.g * m.n, high.train_rows - m.outer_steps * m.g * m.n),
        "eval_run_h": h(evaluation_work(cfg.evaluate, n_test, L)),
        "probe_h": h(probe_work(pool_size, cfg.probe, L)),
        "intrinsic_run_h": h(intrinsic_step_work(m, L) * m.outer_steps),
        "snr_h": h(snr_work(m, L)),  # meta.snr_draws (0: none)
        # the whole pipeline: probe, every meta-training run (teacher kind x teacher seed) and the SNR estimate, every
        # evaluation student
        "pipeline_h": tuple(h(probe_work(pool_size, cfg.probe, L)
                              + (runs + intrinsic_step_work(m, L) * (m.outer_steps * m.runs_for("intrinsic") * ("intrinsic" in m.teachers))
                                 + snr_work(m, L))
                              * runs_stage(cfg, "meta_train")
                              + all_students_work(cfg.evaluate, n_test, L, cfg.meta) * runs_stage(cfg, "evaluate"))
                            for runs in grounded_run_work(m, L)),
        # the same on the critical path with executor.workers concurrent workers (wall time)
        "pipeline_wall_h": tuple(h(w) for w in pipeline_wall_work(cfg, L, n_test, pool_size)),
    }


def fresh_students(ecfg) -> int:
    """Fresh students the evaluation trains (inference-only methods excluded)."""
    from .stages.evaluate import INFERENCE_METHODS, students

    return sum(students(ecfg, m) for m in ecfg.methods if m not in INFERENCE_METHODS)


def cost_report(cfg, from_run: Path | None = None, throughput: Throughput | None = None) -> tuple[list[dict], Lengths]:
    """Rows (one per throughput source) of hours per outer step / meta-training run / fresh-student run / probe.

    Sources: `from_run` (a metrics.jsonl: throughput and lengths measured by that run, valid for its model and
    hardware), `throughput` (given), and for the math worlds with a model of known size the paper's own
    efficiency (what its 1,500-1,900 GPU-hours imply per GPU for our count of its run, moved to this model's
    size by the parameter ratio)."""
    from .tasks import make_task

    task = make_task(cfg.task)
    pool, n_test = task.cost_sizes  # (probe pool, hard-test): the paper's Table 2, or the tiny world's own
    if 0 < cfg.probe.limit < pool:  # a slice of the pool: the hard test set shrinks in proportion
        pool, n_test = cfg.probe.limit, max(1, round(n_test * cfg.probe.limit / pool))
    L = Lengths()
    sources = []
    if from_run is not None:
        thr, L, _ = measured(from_run)
        sources.append((f"measured: {from_run}", thr))
    if throughput is not None:
        sources.append(("given throughput", throughput))
    n_params = MODEL_PARAMETERS.get(cfg.model.path)
    if task.paper_world and n_params:
        for hours in PAPER_GPU_HOURS_PER_RUN:
            # the paper's per-GPU efficiency, moved to this model's size by the parameter ratio
            tok_s = paper_implied_throughput(hours) * MODEL_PARAMETERS["meta-llama/Llama-3.2-3B-Instruct"] / n_params
            sources.append((f"paper's efficiency ({hours:,.0f} GPU-h/run), {tok_s:,.0f} tok/s per GPU at "
                            f"{n_params / 1e9:.2g}B parameters", Throughput(tok_s, tok_s, tok_s)))
    rows = []
    for label, thr in sources:
        est = estimate_table(cfg, thr, L, n_test=n_test, pool_size=pool)
        rows.append({"throughput": label, "h_per_outer_step": est["step_h"], "h_per_meta_run": est["run_h"],
                     "h_per_fresh_student_run": est["eval_run_h"], "h_probe": est["probe_h"],
                     "h_intrinsic_run": est["intrinsic_run_h"], "h_snr": est["snr_h"], "h_pipeline": est["pipeline_h"],
                     "h_pipeline_wall": est["pipeline_wall_h"],
                     "student_rollouts_per_run": est["student_rollouts_per_run"]})
    return rows, L
