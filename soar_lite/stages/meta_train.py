"""Stage `meta_train` (notebook 03): Algorithm 1 for each teacher kind in `meta.teachers` and each of `meta.runs`
teacher seeds -- the grounded SOAR teacher into meta/, the intrinsic (learnability) Intrinsic-T teacher into
meta_intrinsic/, Grounded-T without promotion into meta_no_promotion/; further seeds into <dir>_run<i>/ (paper §2,
§3, App. B.8). The loop is `soar_lite.soar.MetaTrainer`; this module runs it and reads back what it wrote.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..executor import run_jobs
from ..rundir import read_json, read_jsonl
from ..soar import MetaTrainer, check_meta_dir
from ..tasks import make_task
from .common import exclusive, hard_sets, open_run

# evaluation's teacher methods -> the meta-trained teacher they sample (None = the untrained model)
TEACHER_KIND = {"base-t": None, "grounded-t": "grounded", "intrinsic-t": "intrinsic",
                "grounded-t-no-promotion": "grounded-no-promotion"}


@dataclass
class MetaRun:
    """What one meta-training run wrote (read back from its folder, so a fresh kernel sees the same)."""

    teacher: str  # grounded | intrinsic | grounded-no-promotion
    run: int  # teacher seed index
    metrics: pd.DataFrame  # one row per outer step (see MetaTrainer._outer_step)
    pq: list[dict]  # Promotion Questions: question, answer, stage, step
    promotions: list[dict]  # step, dataset, student, reward, hard_train_score, hard_train_greedy_acc
    initial_hard_train_acc: float | None  # the base student's greedy accuracy on hard-train (stage 0)
    initial_hard_train_score: float | None  # and its reward-metric score there
    tau: float | None  # the threshold the run used (calibrated from tau_null when meta.tau_null_datasets > 0)
    tau_null: list[float]  # the calibration's base-teacher rewards
    dir: Path
    seconds: float = 0.0  # spent in this session

    def stage_table(self) -> pd.DataFrame:
        """Stage 0 (base student) and each promotion: the baseline on all of hard-train, greedy accuracy (Fig. 6) and the
    run's own reward metric (what SOAR-PS is chosen by; in the tiny world greedy accuracy stays 0)."""
        rows = [{"stage": 0, "step": 0, "hard_train_greedy_acc": self.initial_hard_train_acc,
                 "hard_train_score": self.initial_hard_train_score}]
        rows += [{"stage": i + 1, "step": p["step"], "hard_train_greedy_acc": p["hard_train_greedy_acc"],
                  "hard_train_score": p.get("hard_train_score")} for i, p in enumerate(self.promotions)]
        return pd.DataFrame(rows)

    @property
    def name(self) -> str:
        return self.teacher + (f" run {self.run}" if self.run else "")

    def learning(self) -> dict:
        """Does the teacher learn? The reward over outer steps at the most common inner-step count (the reward
        grows with inner steps, so steps with other counts are left out), its Spearman trend, and the teacher's
        KL from its start (logged at each update) at the first and last steps."""
        m = self.metrics
        if m.empty:
            return {}
        inner = int(m.inner_steps.mode().iloc[0])
        at = m[m.inner_steps == inner]
        rho, p = stats.spearmanr(at.step, at.reward_mean) if len(at) >= 3 else (np.nan, np.nan)
        return {"run": self.name, "inner_steps": inner, "n_steps": len(at), "spearman_rho": float(rho), "p_value": float(p),
                "reward_first_half": float(at.reward_mean.iloc[: len(at) // 2].mean()) if len(at) >= 2 else np.nan,
                "reward_second_half": float(at.reward_mean.iloc[len(at) // 2:].mean()) if len(at) >= 2 else np.nan,
                "kl_first": float(m.teacher_kl.iloc[0]), "kl_last": float(m.teacher_kl.iloc[-1]),
                "promotions": len(self.promotions), "tau": self.tau}

    def pq_examples(self, n: int = 6) -> dict[int, str]:
        """The first `n` Promotion Questions of each promotion stage, as 'question=answer'."""
        out: dict[int, list[str]] = {}
        for r in self.pq:
            out.setdefault(r["stage"], []).append(f"{r['question']}={r['answer']}")
        return {stage: "  ".join(qs[:n]) for stage, qs in out.items()}


@dataclass
class MetaTrainResult:
    runs: dict[tuple[str, int], MetaRun] = field(default_factory=dict)  # (teacher kind, run) -> run

    @property
    def grounded(self) -> MetaRun | None:
        return self.runs.get(("grounded", 0))

    @property
    def intrinsic(self) -> MetaRun | None:
        return self.runs.get(("intrinsic", 0))

    def learning_table(self) -> pd.DataFrame:
        """One row per run: the reward trend at fixed inner steps, the teacher's KL from its start, promotions, tau."""
        return pd.DataFrame([r.learning() for r in self.runs.values() if not r.metrics.empty])

    def findings(self) -> list[str]:
        """Sentences computed from the runs (the report's closing cell)."""
        out = []
        for r in self.runs.values():
            lr = r.learning()
            if not lr:
                continue
            if np.isnan(lr["p_value"]):
                trend = "cannot be tested for a trend (fewer than 3 steps)"
            else:
                trend = ("rises" if lr["spearman_rho"] > 0 else "falls") if lr["p_value"] < 0.05 else "shows no trend"
            tau = f"; tau {lr['tau']:.4f}" if lr["tau"] is not None and r.teacher == "grounded" else ""
            out.append(f"{r.name}: at {lr['inner_steps']} inner steps the reward {trend} over {lr['n_steps']} outer steps "
                       f"(Spearman rho {lr['spearman_rho']:+.2f}, p = {lr['p_value']:.2g}; mean {lr['reward_first_half']:+.4f} "
                       f"in the first half, {lr['reward_second_half']:+.4f} in the second); teacher KL from its start "
                       f"{lr['kl_first']:.1e} -> {lr['kl_last']:.1e} per token; {lr['promotions']} promotions{tau}.")
        return out


def runs_of(cfg) -> list[tuple[str, int]]:
    return [(kind, i) for kind in cfg.meta.teachers for i in range(cfg.meta.runs)]


def meta_job(cfg, kind: str, i: int, resume: bool, log=None) -> float:
    """One meta-training run (teacher kind, teacher seed i) into its own folder; returns its seconds. A run in a
    worker process logs into <run dir>/run.log (and its metrics.jsonl as always)."""
    layout = cfg.layout.meta(kind, i)
    if log is None:
        layout.dir.mkdir(parents=True, exist_ok=True)
        logfile = layout.dir / "run.log"

        def log(msg):
            with open(logfile, "a") as f:
                f.write(msg + "\n")
    hard_train, _ = hard_sets(cfg)
    log(f"== {kind} teacher, run {i}")
    t0 = time.time()
    MetaTrainer(cfg, make_task(cfg.task), hard_train, layout, teacher=kind, run=i, log=log).run(resume=resume)
    return time.time() - t0


def preflight(cfg, resume: bool) -> dict[tuple[str, int], str]:
    """What each meta-training run of the config will do ("fresh" or "resume"), or the RunDirError that stops the
    stage, decided before anything is written (the CLI calls it before papermill starts)."""
    return {(kind, i): check_meta_dir(cfg, cfg.layout.meta(kind, i), resume) for kind, i in runs_of(cfg)}


@exclusive("meta_train")
def run(cfg, resume: bool = False, log=print) -> MetaTrainResult:
    """Meta-train every (teacher kind, teacher seed) of the config, each resumable from its own checkpoints: on
    `executor.workers` local processes, or (executor.kind ray) one after another here with every outer step's
    g*r students on the Ray actors. Each run's seeds come from its own index: the same results in any order."""
    preflight(cfg, resume)  # refuse before anything is written
    open_run(cfg)
    hard_sets(cfg)  # fail here, before any worker starts, if the probe has not run
    runs = runs_of(cfg)
    in_process = cfg.executor.kind == "ray" or cfg.executor.workers <= 1
    jobs = [(cfg, kind, i, resume, log if in_process else None) for kind, i in runs]
    seconds = run_jobs(meta_job, jobs, 1 if in_process else cfg.executor.workers,
                       on_done=lambda job, sec: log(f"== {job[1]} teacher, run {job[2]}: done in {sec / 60:.1f} min"))
    result = MetaTrainResult()
    for (kind, i), sec in zip(runs, seconds):
        result.runs[(kind, i)] = read(cfg, kind, i)
        result.runs[(kind, i)].seconds = sec
    return result


def read(cfg, teacher: str = "grounded", run: int = 0) -> MetaRun:
    """What one meta-training run wrote (empty frames and lists where it has not run)."""
    p = cfg.layout.meta(teacher, run)
    state = read_json(p.state) if p.state.exists() else {}
    return MetaRun(teacher=teacher, run=run, metrics=pd.DataFrame(read_jsonl(p.metrics)),
                   pq=read_json(p.pq) if p.pq.exists() else [],
                   promotions=read_json(p.promotions) if p.promotions.exists() else [],
                   initial_hard_train_acc=state.get("initial_hard_train_acc"),
                   initial_hard_train_score=state.get("initial_hard_train_score"), tau=state.get("tau"),
                   tau_null=state.get("tau_null", []), dir=p.dir)


def read_all(cfg) -> MetaTrainResult:
    return MetaTrainResult(runs={(k, i): read(cfg, k, i) for k, i in runs_of(cfg)})


def trained_teacher_path(cfg, teacher: str, run: int = 0) -> Path:
    """The checkpoint a trained teacher is sampled from: the grounded teacher at evaluate.teacher_step (paper:
    step 170 for HARP, 200 for MATH), else the last step; the baselines at their last step ("trained 200 steps", §3)."""
    p = cfg.layout.meta(teacher, run)
    if teacher == "grounded" and cfg.evaluate.teacher_step:
        return p.teacher_at(cfg.evaluate.teacher_step)
    return p.teacher
