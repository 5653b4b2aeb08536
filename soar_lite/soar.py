"""The SOAR meta-loop (paper §2, Algorithm 1): teacher RLOO over grounded student rewards, with promotion.

One outer step (the lines of Algorithm 1 are marked ALG1 below):
  1. the teacher writes g*n format-valid QA pairs (rejection sampling, App. B.2) -> g datasets of n;
  2. M reward questions are resampled from hard-train;
  3. for each dataset, r students start from the baseline snapshot, run `inner_steps` RLOO steps on the
     dataset (teacher's answers as references) and are scored on the reward questions;
     R_k = mean_j (score_kj - score_baseline)        (grounded reward, §2.3; score = meta.reward_decoding:
                                                      greedy accuracy in the paper, log-likelihood in the tiny world)
     or R_k = mean_i learnability(s_i)                (intrinsic reward, App. B.4, Intrinsic-T);
  4. moving average R̄ over `ma_window` steps, initialised to 0 (a window not yet full counts its missing steps
     as 0) and, with `meta.reset_ma`, emptied after a promotion; if R̄ exceeds tau: the median student of the
     best dataset becomes the baseline, the dataset joins PQ, inner steps grow by `inner_steps_per_promotion`
     (§2.5). tau is `meta.tau`, or (meta.tau_null_steps > 0) calibrated before step 0 from the null distribution
     of the batch reward R̂ for the run's g (`null_threshold`: family-wise false-promotion rate meta.tau_fwer),
     and with `meta.tau_per_stage` measured again at every inner-step count a promotion leads to (the untrained
     teacher's datasets against the new baseline; each promotion names the tau it cleared);
  5. teacher RLOO update with A_k = R_k - mean_{j!=k} R_j broadcast to dataset k's rollouts (teacher.py), under
     the collapse guard (meta.guard: an update past a KL or format-rejection bound is undone and retried at half
     the learning rate).
Each step also logs the world's own question diagnostics of the teacher's sample (`Task.question_diagnostics`,
e.g. the tiny world's share of useful stepping stones); they never enter the reward.

Randomness is derived from (run seed, role, teacher-seed index, step, ...) by `seeds.derive`, never carried in a
generator, so a run killed at any point and resumed from its last checkpoint redoes the interrupted step exactly
(the "RNG state" of a checkpoint is its step number). Checkpoints (teacher adapter + optimizer, baseline student
adapter, promoted students, MA buffer, PQ, promotion log) are written atomically after every step (checkpoint.py).

Deviations (also listed in each params file): LoRA instead of full fine-tuning; smaller M, inner steps and
outer steps in the tiny and Colab settings; in the tiny world the credit granularity is g = 64 datasets of n = 4
questions, r = 1 (the same 256 teacher samples per step as the paper's 4 x 64, regrouped: the teacher-gradient
SNR per step is ~30x higher, docs/measurement.md "Credit granularity"; `grounded-paper-grouping` keeps the paper's grouping as
a control arm), the reward's score is the log-likelihood of the true hard-train chains (`reward_decoding: logprob`),
where greedy accuracy never moves, tau comes from the null distribution of R̂, the teacher's advantages are divided
by their SD over the g datasets (`meta.teacher.normalize_advantages`), and the collapse guard is on. Named choices:
the MA window is emptied after a promotion (`meta.reset_ma`; the paper is silent); for even r the median student
is the lower middle one. Control arms of ours: `grounded-frozen` measures the same reward and promotes by the same
rule but never updates the teacher (what selection alone puts into PQ and PS).

The teacher's sampler and update live in teacher.py (`sample_qa_pairs` is the one teacher sampler).
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .checkpoint import check_meta_dir, load_step, save_step
from .config import resume_key
from .executor import current_pool, fans_out_students, run_jobs, worker_cache
from .models import Snapshot, load_policy, restore, save_snapshot, shared_snapshot, snapshot
from .profile import tally
from .rloo import cosine_lr, make_optimizer
from .rundir import MetaLayout, RunDirError, append_jsonl, read_jsonl, report_progress, rewrite_jsonl, write_json
from .seeds import derive, stream_key
from .student import RLItem, StudentJob, StudentResult, reward_questions, run_student_job, score, score_problems
from .teacher import (GuardProbe, TeacherSample, TeacherSamplingError, dataset_advantages, sample_qa_pairs,
                      teacher_diagnostics, teacher_update)


# ---- pure pieces (tested on constructed numbers) --------------------------------------------
# the teacher kinds that calibrate tau and promote: SOAR, its paper-grouping control and the frozen-teacher control
PROMOTING = ("grounded", "grounded-paper-grouping", "grounded-frozen")


def moving_average(history: list[float], window: int) -> float:
    """R̄_t of Algorithm 1: the mean of the last `window` batch rewards, with R̄ initialised to 0 -- a window
    not yet full counts its missing steps as 0 (so step 0 alone cannot promote on one lucky value)."""
    tail = history[-window:]
    return float(np.sum(tail)) / window


def should_promote(ma: float, tau: float) -> bool:
    """§2.5: promote when the moving average exceeds tau (strictly)."""
    return ma > tau


def promotion_window(buffer: list[float], r_hat: float, *, window: int, tau: float, reset: bool, min_window: int = 0):
    """One step of the promotion rule (Algorithm 1): append R̂_t, R̄_t = moving_average, promote if R̄_t > tau and the
    window holds at least `min_window` rewards since the start or the last reset (meta.min_window; 0 = the paper's
    rule); after a promotion the window is emptied when `reset`. Returns (new buffer, R̄_t, promote)."""
    buffer = [*buffer, r_hat]
    ma = moving_average(buffer, window)
    promote = should_promote(ma, tau) and len(buffer) >= min_window
    return ([] if promote and reset else buffer), ma, promote


def median_student(rewards: list[float]) -> int:
    """Index of the student whose reward is the median (§2.5): the true median for odd r; for even r (the
    paper's r = 4) the lower of the two middle students, a named choice."""
    order = np.argsort(np.asarray(rewards), kind="stable")
    return int(order[(len(rewards) - 1) // 2])


def null_runs(null_rewards, g: int, steps: int, sims: int, rng: np.random.Generator) -> np.ndarray:
    """`sims` simulated null runs of `steps` batch rewards R̂ (the mean of g dataset rewards) of an untrained teacher,
    [sims, steps], from the null steps' dataset rewards `null_rewards` (one list of R_k per null outer step, each R_k
    already the mean over its r students). The model: R_k = mu + step effect (what a step's datasets share: the Q_R
    draw, the baseline's score) + a dataset term. Each simulated run is drawn from the *predictive* distribution,
    so that the estimation error of the calibration is paid for:
      - the dataset terms of a step: g residuals (about their own null step's mean) resampled with replacement, in
        units of their pooled SD, times an SD drawn for the run from its sampling distribution
        (s_w^2 * df_w / chi2(df_w), df_w = datasets - null steps);
      - the step effect: N(0, sigma_b^2) per step, sigma_b^2 = max(0, V_b - s_w^2 / datasets per step) with the
        variance of the null steps' means V_b drawn for the run as V_b * df_b / chi2(df_b), df_b = null steps - 1
        (no step effect with one null step);
      - the run's offset of mu: one draw per run from N(0, V_b / null steps) (one null step: s_w^2 / datasets),
        shared by all of its steps."""
    groups = [np.asarray(s, dtype=np.float64) for s in null_rewards]
    if any(len(s) < 2 for s in groups):
        raise ValueError("the null distribution of the reward needs null steps of at least 2 datasets each")
    n_sets, n_steps = sum(len(s) for s in groups), len(groups)
    resid = np.concatenate([s - s.mean() for s in groups])
    df_w = n_sets - n_steps
    s_w2 = float(resid @ resid) / df_w
    unit = resid / np.sqrt(s_w2) * np.sqrt(n_sets / df_w) if s_w2 > 0 else resid
    scale_w = s_w2 * df_w / rng.chisquare(df_w, size=(sims, 1))  # the run's dataset variance
    within = np.empty((sims, steps))
    chunk = max(1, 2_000_000 // (g * steps))
    for a in range(0, sims, chunk):
        b = min(sims, a + chunk)
        within[a:b] = unit[rng.integers(n_sets, size=(b - a, steps, g))].mean(axis=2)
    within *= np.sqrt(scale_w)
    grand = float(np.mean(np.concatenate(groups)))
    if n_steps >= 2:
        v_b = float(np.var([s.mean() for s in groups], ddof=1))
        v_b_run = v_b * (n_steps - 1) / rng.chisquare(n_steps - 1, size=(sims, 1))
        sd_step = np.sqrt(np.maximum(0.0, v_b_run - scale_w / (n_sets / n_steps)))
        step = rng.normal(size=(sims, steps)) * sd_step
        offset = rng.normal(size=(sims, 1)) * np.sqrt(v_b_run / n_steps)
    else:
        step = 0.0
        offset = rng.normal(size=(sims, 1)) * np.sqrt(scale_w / n_sets)
    return grand + offset + step + within


def null_step_sd(null_rewards) -> float:
    """The point estimate of the step effect's SD: sqrt(max(0, Var(step means) - mean within-step variance /
    datasets per step)); 0 with fewer than two null steps (reported; `null_runs` draws it for each run)."""
    steps = [np.asarray(s, dtype=np.float64) for s in null_rewards]
    if len(steps) < 2:
        return 0.0
    within = float(np.mean([s.var(ddof=1) for s in steps]))
    between = float(np.var([s.mean() for s in steps], ddof=1))
    return float(np.sqrt(max(0.0, between - within / float(np.mean([len(s) for s in steps])))))


def moving_average_paths(r_hat: np.ndarray, window: int) -> np.ndarray:
    """R̄_t for every row of batch rewards [runs, steps] (Algorithm 1: R̄ starts at 0, so a window not yet full
    counts its missing steps as 0) -- `moving_average` for many runs at once."""
    c = np.cumsum(r_hat, axis=1)
    lagged = np.concatenate([np.zeros((len(r_hat), window)), c], axis=1)[:, : r_hat.shape[1]]
    return (c - lagged) / window


@dataclass
class NullThreshold:
    """tau from the null distribution of R̂, and what it rests on (recorded in the run's state, shown in report 03)."""

    tau: float
    fwer: float  # the family-wise false-promotion rate it is set for (over `steps` outer steps)
    steps: int
    g: int
    rhat_mean: float  # mean of the null batch reward R̂
    rhat_sd: float  # its SD at the point estimates (dataset SD / sqrt(g), plus the step effect)
    step_sd: float  # the step effect's SD (0 with one null step)
    z_per_step: float  # (tau - rhat_mean) / (rhat_sd / sqrt(window)): tau in SDs of one moving average
    null_datasets: int
    null_steps: int
    sims: int


def null_threshold(null_rewards, *, g: int, window: int, steps: int, fwer: float, sims: int, seed: int) -> NullThreshold:
    """τ such that an untrained teacher promotes at least once in a run of `steps` outer steps with probability
    `fwer` (family-wise, not per step): the (1 - fwer) quantile of max_t R̄_t over `sims` simulated null runs
    (`null_runs`: predictive draws that pay for the calibration's own estimation error, so the rate holds over runs,
    each calibrated on its own null steps -- tested by simulation), R̄ computed as Algorithm 1 does. Under the null
    only the first promotion matters for this rate, so the window's reset after a promotion does not enter. Training
    on any data moves the score, so the null mean is not 0 (tiny world: log-likelihood gain)."""
    rng = np.random.default_rng(seed)
    r_hat = null_runs(null_rewards, g, steps, sims, rng)
    peak = moving_average_paths(r_hat, window).max(axis=1)
    tau = float(np.quantile(peak, 1.0 - fwer))
    flat = np.concatenate([np.asarray(s, dtype=np.float64) for s in null_rewards])
    mean = float(flat.mean())
    sd = float(np.sqrt(flat.var(ddof=1) / g + null_step_sd(null_rewards) ** 2))  # R̂'s SD at the point estimates
    return NullThreshold(tau=tau, fwer=fwer, steps=steps, g=g, rhat_mean=mean, rhat_sd=sd,
                         step_sd=null_step_sd(null_rewards),
                         z_per_step=(tau - mean) / (sd / np.sqrt(window)) if sd > 0 else float("nan"),
                         null_datasets=len(flat), null_steps=len(null_rewards), sims=sims)


def learnability(success_rates) -> np.ndarray:
    """App. B.4 intrinsic reward per question: 0 if never solved, else 1 - success rate."""
    s = np.asarray(success_rates, dtype=np.float64)
    return np.where(s == 0, 0.0, 1.0 - s)


def inner_steps_for(cfg_meta, promotions: int) -> int:
    """§2.4: 10 inner steps, +5 per promotion so far, capped (INFERRED cap 20)."""
    return min(cfg_meta.inner_steps + cfg_meta.inner_steps_per_promotion * promotions, cfg_meta.max_inner_steps)


# ---- state -------------------------------------------------------------------------------------
@dataclass
class MetaState:
    step: int = 0
    reward_history: list = field(default_factory=list)  # R̂ of every step (the reward curve)
    ma_buffer: list = field(default_factory=list)  # the rewards R̄ averages: emptied after a promotion if meta.reset_ma
    promotions: list = field(default_factory=list)  # {step, dataset, student, reward, hard_train_score, ..._greedy_acc}
    pq: list = field(default_factory=list)  # {question, answer, stage, step}
    initial_hard_train_acc: float | None = None  # stage 0 of Fig. 6: the base student, greedy, on hard-train
    initial_hard_train_score: float | None = None  # and scored by the reward metric (what SOAR-PS is chosen by)
    tau: float | None = None  # the promotion threshold this run uses (meta.tau, or calibrated: meta.tau_null_steps)
    tau_null: list = field(default_factory=list)  # the calibration's null steps: one list of dataset rewards R_k each
    tau_null_summary: dict = field(default_factory=dict)  # NullThreshold fields (rhat_mean, rhat_sd, z_per_step, ...)
    # tau of every stage measured (meta.tau_per_stage): {inner_steps, promotions, tau, null, summary}, stage 0 first;
    # `tau` above is the one in force
    tau_stages: list = field(default_factory=list)
    lr_horizon: int | None = None  # the teacher's cosine schedule spans the outer_steps of the run's first start


def _worker_policy(cfg):
    """(policy, task) of this worker process for `cfg`'s model, loaded once (the same model and LoRA initialisation
    as the meta-trainer's teacher and student: a job restores the adapter it needs)."""
    def load():
        from .tasks import make_task

        policy, task = load_policy(cfg.model, seed=derive(cfg.seed, "model", "lora_init")), make_task(cfg.task)
        task.bind_tokenizer(policy.tokenizer)
        return policy, task

    return worker_cache(("student", repr(cfg.model), repr(cfg.task), cfg.seed), load)


def student_job(cfg, job: StudentJob) -> StudentResult:
    """One inner-loop student on a worker (pooled local workers or Ray actors): the worker's model is loaded once;
    the baseline adapter arrives in `job` and the trained adapter goes back in the result (the base weights never
    travel)."""
    policy, task = _worker_policy(cfg)
    return run_student_job(policy, task, job, cfg.meta.student, cfg.model.gen_batch_size)


def diagnostics_job(cfg, teacher, hard_train, args: dict) -> dict:
    """`teacher_diagnostics` of a teacher adapter (a SharedSnapshot) on a pooled worker: the end diagnostics' untrained
    teacher, sampled beside the trained one."""
    policy, task = _worker_policy(cfg)
    restore(policy, teacher)
    return teacher_diagnostics(policy, task, hard_train, **args)


class PhaseClock:
    """Wall seconds of consecutive phases: `clock("name")` closes the phase that ran since the last call."""

    def __init__(self):
        self.last, self.seconds = time.time(), {}

    def __call__(self, name: str) -> None:
        now = time.time()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self.last, 3)
        self.last = now


class MetaTrainer:
    """Holds the teacher and student policies and runs outer steps with checkpoint/resume."""

    def __init__(self, cfg, task, hard_train, layout: MetaLayout, teacher: str = "grounded", run: int = 0, log=print):
        self.cfg, self.task, self.hard_train = cfg, task, list(hard_train)
        self.meta, self.kind, self.run_index = cfg.meta, teacher, run
        self.g, self.n, self.r = cfg.meta.grouping(teacher)  # meta.paper_grouping for the control arm
        # grounded (SOAR), its no-promotion and paper-grouping arms use the student-improvement reward; intrinsic the
        # learnability reward
        self.reward = "intrinsic" if teacher == "intrinsic" else "grounded"
        self.promotes = teacher in PROMOTING and self.meta.promote
        self.frozen = teacher == "grounded-frozen"  # the frozen-teacher control: rewards and promotions, no update
        self.paths = layout
        self.log = log
        lora_seed = derive(cfg.seed, "model", "lora_init")  # teacher and students start as the same model
        self.student = load_policy(cfg.model, seed=lora_seed)
        self.teacher = load_policy(cfg.model, seed=lora_seed)
        self.untrained_teacher: Snapshot = snapshot(self.teacher)
        task.bind_tokenizer(self.teacher.tokenizer)
        self.teacher_opt = make_optimizer(self.teacher, self.meta.teacher.lr, self.meta.teacher.weight_decay)
        self.baseline: Snapshot = snapshot(self.student)
        self.state = MetaState()
        self.tracker = None  # opened by `run` when the params name one
        if len(self.hard_train) == 0:
            raise ValueError("hard-train set is empty: run the probe first (nothing to reward against)")

    def _seed(self, role: str, *indices) -> int:
        """Seeds of this meta-training run: (run seed, meta_train, role, teacher-seed index, indices). The teacher
        kind is left out on purpose: grounded, intrinsic and no-promotion runs of one index share their step-0
        teacher samples, Q_R draws and student streams (common random numbers)."""
        return derive(self.cfg.seed, "meta_train", role, self.run_index, *indices)

    # -- checkpointing (checkpoint.py) ---------------------------------------------------------------
    def save(self) -> None:
        """Commit the step (checkpoint.save_step): a kill at any point leaves state.json consistent with its files."""
        save_step(self.paths, self.state.step, asdict(self.state), snapshot(self.teacher), self.baseline,
                  self.teacher_opt.state_dict(), keep_teacher=self.state.step in self.meta.teacher_snapshots)

    def try_resume(self) -> bool:
        """Load the last complete step (`check_meta_dir` has found its state.json); False when there is none."""
        p = self.paths
        if not p.state.exists():
            return False
        st, teacher, self.baseline, opt = load_step(p)
        try:
            self.state = MetaState(**st)
        except TypeError as e:
            raise RunDirError(f"{p.state}: not a checkpoint state ({e}); restore it or delete {p.dir} to start over") from None
        restore(self.teacher, teacher)
        self.teacher_opt.load_state_dict(opt)
        # drop metric rows of a step that was interrupted after logging but before its checkpoint
        rewrite_jsonl(p.metrics, [r for r in read_jsonl(p.metrics) if r["step"] < self.state.step])
        self.log(f"resumed at outer step {self.state.step} ({len(self.state.promotions)} promotions)")
        return True

    # -- ALG1: sample g*n QA pairs with rejection sampling ---------------------------------------
    def _progress(self, done: int) -> None:
        """Outer steps done, the null steps of the calibration included (for `soar-lite run`'s progress lines)."""
        null = self.meta.tau_null_steps if self.promotes else 0
        report_progress(self.cfg.layout, "meta_train", self.paths.dir.name, done, null + self.meta.outer_steps,
                        "outer steps")

    def sample_pairs(self, stream) -> TeacherSample:
        need = self.g * self.n
        return sample_qa_pairs(self.teacher, self.task, need, stream=stream,
                               per_round=lambda have: need - have + max(4, need // 8),  # a little over what is missing
                               temperature=self.meta.teacher.temperature, max_rounds=self.meta.max_teacher_tries,
                               batch_size=self.cfg.model.gen_batch_size, turns=self.meta.teacher_turns)

    def sample_teacher(self, step: int) -> TeacherSample:
        return self.sample_pairs(lambda r: (stream_key("teacher_step", step, r), self._seed("teacher_sample", step, r)))

    def _score(self, problems, seed: int) -> float:
        """Mean score of the student as it stands on `problems` (the quantity behind the grounded reward)."""
        return float(score_problems(self.student, self.task, problems, decoding=self.meta.reward_decoding,
                                    samples=self.meta.reward_samples, seed=seed,
                                    batch_size=self.cfg.model.gen_batch_size).mean())

    def grounded_rewards(self, datasets, q_r, inner: int, *, item_key, student_seed, eval_seed, students: int = 0,
                         keep_trained: bool = True):
        """ALG1: for each dataset X_k, r students (or `students`) start from the baseline with a fresh optimizer, run
        `inner` RLOO steps on it (the teacher's answers as references) and are scored on Q_R with the same sampling
        seed as the baseline, so R_kj compares the two on common random numbers. Returns (R_kj [g, r], trained
        adapters by (k, j) -- None each where `keep_trained` is False --, mean training reward per student, the
        baseline's score)."""
        per_dataset = students or self.r
        jobs = {}
        for k, ds in enumerate(datasets):
            items = [RLItem(qa.question, qa.answer, item_key(k, i)) for i, qa in enumerate(ds)]
            for j in range(per_dataset):
                jobs[(k, j)] = StudentJob(baseline=self.baseline, items=items, steps=inner, seed=student_seed(k, j),
                                          reward_problems=q_r, decoding=self.meta.reward_decoding,
                                          reward_samples=self.meta.reward_samples, eval_seed=eval_seed,
                                          keep_trained=keep_trained)
        with self._students(list(jobs.values())) as wait:  # on pooled workers the students start now
            restore(self.student, self.baseline)
            base_score = self._score(q_r, eval_seed)  # meanwhile, the baseline's score on the same Q_R
            results = wait()
        rewards_kj, trained, student_stats = np.zeros((len(datasets), per_dataset)), {}, []
        for (k, j), res in zip(jobs, results):
            rewards_kj[k, j] = res.score - base_score  # ALG1: R_kj = Score(trained student, Q_R) - Score(baseline, Q_R)
            trained[(k, j)] = res.trained
            student_stats.append(float(np.mean([s["reward"] for s in res.train_stats])))
        return rewards_kj, trained, student_stats, base_score

    # -- one outer step -----------------------------------------------------------------------------
    def outer_step(self) -> dict:
        with tally() as work:  # tokens and seconds per kind of work, for the cost model (cost.py)
            row = self._outer_step()
        row["profile"] = {**work.as_dict(), **row.pop("phases")}  # with students on other workers: this process's
        append_jsonl(self.paths.metrics, row)
        if self.tracker is not None:  # an optional live view (params `tracking`); metrics.jsonl stays the record
            self.tracker.log({k: v for k, v in row.items() if k not in ("questions", "answers")}, step=row["step"])
        if self.state.step % self.meta.checkpoint_every == 0 or self.state.step == self.meta.outer_steps:
            self.save()
        return row

    def _outer_step(self) -> dict:
        """One outer step of Algorithm 1, phase by phase."""
        t0, m, step = time.time(), self.meta, self.state.step
        phase = PhaseClock()  # wall seconds per phase, into the row's profile (not part of the metrics compared)
        teacher = self.sample_teacher(step)  # ALG1: sample g*n QA pairs with rejection sampling (App. B.2)
        phase("teacher_sample_s")
        datasets = [teacher.pairs[k * self.n:(k + 1) * self.n] for k in range(self.g)]  # ALG1: split into X_1..X_g
        q_r = reward_questions(self.hard_train, m.M, self._seed("reward_questions", step))  # ALG1: sample Q_R from D_train
        inner = inner_steps_for(m, len(self.state.promotions))
        rewards_kj, trained, student_stats, base_score = self._rewards(step, datasets, q_r, inner)
        phase("students_s")  # the baseline's score and every student's training and score
        r_k = rewards_kj.mean(axis=1)  # ALG1: R_k = mean_j R_kj
        r_hat = float(r_k.mean())
        self.state.reward_history.append(r_hat)
        ma, promoted, confirm = self._promotion(step, datasets, rewards_kj, trained, r_hat, inner)
        phase("promotion_s")
        # the world's own reading of the sample (never part of the reward): e.g. the share of useful stepping stones
        diagnostics = self.task.question_diagnostics(teacher.pairs, self.hard_train)
        lr = cosine_lr(step, self.state.lr_horizon or m.outer_steps, m.teacher.lr, m.teacher.warmup_steps)
        update = self._update_teacher(step, teacher, r_k, lr)
        phase("teacher_update_s")  # the update and the collapse guard's probes
        row = {"step": step, "reward_mean": r_hat, "reward_ma": ma, "tau": self.state.tau, "promoted": promoted,
               "promotions": len(self.state.promotions), "baseline_score": base_score, "inner_steps": inner,
               "rejected": teacher.rejected, "accepted": len(teacher.pairs), "rewards": r_k.tolist(),
               "rewards_kj": rewards_kj.tolist(),
               "student_train_reward": float(np.mean(student_stats)) if student_stats else None,
               "teacher_kl": update["teacher_kl"], "teacher_lr": lr, "guard": update["guard"], "diagnostics": diagnostics,
               "confirm": confirm,
               "seconds": round(time.time() - t0, 2), "phases": phase.seconds,
               "questions": [qa.question for qa in teacher.pairs], "answers": [qa.answer for qa in teacher.pairs]}
        self.state.step += 1
        return row

    def _rewards(self, step: int, datasets, q_r, inner: int):
        """ALG1: R_kj for every dataset and student -- grounded (train r students from the baseline, score on Q_R
        against the baseline) or intrinsic (learnability of the baseline's samples, the same for every j)."""
        if self.reward == "intrinsic":
            restore(self.student, self.baseline)
            base_score = self._score(q_r, self._seed("reward_score", step))
            rewards_kj = np.repeat([[self._learnability(ds, step, k)] for k, ds in enumerate(datasets)], self.r, axis=1)
            return rewards_kj, {}, [], base_score
        return self.grounded_rewards(datasets, q_r, inner,
                                     item_key=lambda k, i: stream_key("inner_question", step, k, i),
                                     student_seed=lambda k, j: self._seed("student_train", step, k, j),
                                     eval_seed=self._seed("reward_score", step),
                                     # a promotion takes a trained student only where it trains no confirming ones
                                     keep_trained=self.promotes and self.meta.promotion_students <= self.r)

    def _promotion(self, step: int, datasets, rewards_kj, trained, r_hat: float, inner: int):
        """ALG1: R̄_t = MA(R̂_{t-m..t}) (R̄ <- 0 at the start; emptied after a promotion when meta.reset_ma); if R̄_t > tau
        (and the window holds meta.min_window rewards) the median student of the best dataset becomes the baseline and
        the dataset joins PQ. With meta.promotion_students > r the median is over that many fresh students of the best
        dataset, scored on a fresh Q_R (`_confirm`). Returns (R̄_t, promoted, the confirmation's record or None)."""
        m, g, n = self.meta, self.g, self.n
        r_k = rewards_kj.mean(axis=1)
        self.state.ma_buffer, ma, over_tau = promotion_window(self.state.ma_buffer, r_hat, window=m.ma_window,
                                                              tau=self.state.tau, reset=m.reset_ma and self.promotes,
                                                              min_window=m.min_window)
        if not (self.promotes and over_tau):  # ALG1: if R̄_t > tau
            return ma, False, None
        k_best = int(np.argmax(r_k))  # ALG1: k* = argmax R_k
        confirm = None
        if m.promotion_students > self.r:  # the median of fresh students, not the best of g single ones
            j_med, student, confirm = self._confirm(step, datasets[k_best], k_best, inner)
            self.baseline = student
        else:
            j_med = median_student(list(rewards_kj[k_best]))  # ALG1: j* = the median-reward student of k*
            self.baseline = trained[(k_best, j_med)]  # ALG1: theta <- theta'_{k*, j*}
        stage = len(self.state.promotions) + 1
        # ALG1: D_best U= X_{k*} (meta.pq_questions > n: the best datasets, best first, up to that many questions; a
        # named deviation for small n)
        top = [int(k) for k in np.argsort(-r_k, kind="stable")[:max(1, min(g, m.pq_questions // n))]]
        self.state.pq.extend({"question": qa.question, "answer": qa.answer, "stage": stage, "step": step}
                             for k in top for qa in datasets[k])
        restore(self.student, self.baseline)
        # each promotion names the tau it cleared and the inner steps its rewards were measured at (with
        # meta.tau_per_stage that tau was measured at those inner steps; without it, at meta.inner_steps)
        self.state.promotions.append({"step": step, "tau": self.state.tau, "inner_steps": inner, "moving_average": ma,
                                      "dataset": k_best, "student": j_med, "pq_datasets": top,
                                      "reward": float(confirm["rewards"][j_med] if confirm else rewards_kj[k_best, j_med]),
                                      "confirm": confirm,
                                      "hard_train_score": self.hard_train_score(),
                                      "hard_train_greedy_acc": self.hard_train_greedy_acc()})
        save_snapshot(self.baseline, self.paths.promoted(stage))
        return ma, True, confirm

    def _confirm(self, step: int, dataset, k_best: int, inner: int):
        """Algorithm 1's median student where the reward used fewer than meta.promotion_students students: that many
        fresh students of the best dataset (own seeds), scored against the baseline on a fresh Q_R (so the promoted
        student's score is not the one it was selected on); the median one is promoted. Returns (its index, its
        adapter, the record: dataset, rewards of every student, the median's index, the fresh Q_R's score)."""
        q_fresh = reward_questions(self.hard_train, self.meta.M, self._seed("promotion_questions", step))
        rewards, trained, _, base = self.grounded_rewards(
            [dataset], q_fresh, inner, item_key=lambda k, i: stream_key("inner_question", step, k_best, i),
            student_seed=lambda k, j: self._seed("promotion_student", step, j),
            eval_seed=self._seed("promotion_score", step), students=self.meta.promotion_students)
        j = median_student(list(rewards[0]))
        return j, trained[(0, j)], {"dataset": k_best, "rewards": rewards[0].tolist(), "median": j,
                                    "baseline_score": base}

    def _update_teacher(self, step: int, teacher: TeacherSample, r_k, lr: float) -> dict:
        """ALG1: teacher RLOO update, every rollout of X_k gets A_k (rewards from before the promotion), under the
        collapse guard (teacher.teacher_update)."""
        m = self.meta
        if self.frozen:  # the frozen-teacher control: the reward is measured and promotes, the teacher never moves
            return {"loss": 0.0, "teacher_kl": 0.0, "guard": {"retries": 0, "lr_scale": 0.0, "kl_prev": 0.0,
                                                              "kl_initial": 0.0, "reject_before": teacher.reject_rate,
                                                              "reject_after": None, "kept_previous": False,
                                                              "attempts": []}}
        adv = dataset_advantages(r_k, [self.n] * self.g, m.teacher.normalize_advantages)
        prompt_ids, comp_ids, row_adv = teacher.update_rows(adv)  # a two-turn pair: two rows, one advantage
        update = teacher_update(self.teacher, self.teacher_opt, self.task, prompt_ids, comp_ids, row_adv,
                                m.teacher, lr, m.guard, reject_before=teacher.reject_rate,
                                probe=GuardProbe(stream=lambda a: (stream_key("guard_probe", step, a),
                                                                   self._seed("guard_probe", step, a)),
                                                 temperature=m.teacher.temperature,
                                                 batch_size=self.cfg.model.gen_batch_size, turns=m.teacher_turns))
        if update["guard"]["retries"]:
            self.log(f"step {step}: collapse guard -- {update['guard']['retries']} retries"
                     + (", kept the previous teacher" if update["guard"]["kept_previous"] else
                        f", kept the update at lr x{update['guard']['lr_scale']:g}"))
        return update

    @contextmanager
    def _students(self, jobs: list[StudentJob]):
        """ALG1: theta'_{k,j} <- RLOO-Update(theta, X_k) for every student of the step, all from one baseline:
        `with self._students(jobs) as wait: ...; results = wait()`. On the stage's shared local workers (executor.kind
        local, workers > 1: `executor.StudentPool`) the jobs are queued on entry, their baseline as one shared file
        (models.shared_snapshot), so the other processes train while this one does the block's own work; on the Ray
        actors (executor.kind ray, which receive the baseline and return the trained adapter) or here, one after
        another, they run when `wait()` is called. The results are the same either way (each job's seeds are its own)."""
        pool = current_pool()
        if pool is not None:  # local workers sharing the stage's students (executor.run_pooled)
            with shared_snapshot(jobs[0].baseline) as ref:
                handle = pool.submit(student_job, [(self.cfg, replace(job, baseline=ref)) for job in jobs])
                yield lambda: pool.collect(handle)
        elif not fans_out_students(self.cfg.executor):
            yield lambda: [run_student_job(self.student, self.task, job, self.meta.student,
                                           self.cfg.model.gen_batch_size) for job in jobs]
        else:
            yield lambda: run_jobs(student_job, [(self.cfg, job) for job in jobs], self.cfg.executor)

    def hard_train_score(self) -> float:
        """The run's own reward metric (meta.reward_decoding) of the student as it stands, on all of hard-train:
        what SOAR-PS is selected by (the paper: greedy accuracy, its reward metric)."""
        return self._score(self.hard_train, self._seed("hard_train_score"))

    def calibrate_tau(self, inner: int | None = None) -> None:
        """τ from the null distribution of the batch reward (meta.tau_null_steps > 0): that many outer steps of the
        *untrained* teacher, each exactly like a real one (g datasets of n, r students each at `inner` inner steps --
        the first count before step 0 --, a fresh Q_R, the baseline as it stands scored on it) but with no update;
        then `null_threshold` for this run's g, window and length at the family-wise rate meta.tau_fwer. Called again
        (meta.tau_per_stage) when a promotion has grown the inner loops: the null at the new count, against the newly
        promoted baseline; each stage's record joins state.tau_stages and its tau is the one in force."""
        m = self.meta
        if m.tau_null_steps == 0 or not self.promotes:
            self.state.tau = m.tau
            return
        stage0 = inner is None
        inner = m.inner_steps if stage0 else inner
        # stage 0 keeps its historical seeds and streams; a later stage adds its inner-step count to both
        tag = () if stage0 else ("inner", inner)
        kind = (lambda name: name) if stage0 else (lambda name: f"stage_{name}")
        t0, null, current = time.time(), [], None
        if not stage0:  # sample the untrained teacher, then put the trained one back
            current = snapshot(self.teacher)
            restore(self.teacher, self.untrained_teacher)
        try:
            for s in range(m.tau_null_steps):
                pairs = self.sample_pairs(lambda r, s=s: (stream_key(kind("null_teacher"), *tag[1:], s, r),
                                                          self._seed("tau_null_teacher", *tag, s, r))).pairs
                datasets = [pairs[k * self.n:(k + 1) * self.n] for k in range(self.g)]
                q_r = reward_questions(self.hard_train, m.M, self._seed("tau_null_questions", *tag, s))
                rewards_kj, *_ = self.grounded_rewards(
                    datasets, q_r, inner,
                    item_key=lambda k, i, s=s: stream_key(kind("null_question"), *tag[1:], s, k, i),
                    student_seed=lambda k, j, s=s: self._seed("tau_null_student", *tag, s, k, j),
                    eval_seed=self._seed("tau_null_score", *tag, s), keep_trained=False)
                null.append(rewards_kj.mean(axis=1).tolist())
                if stage0:
                    self._progress(s + 1)
        finally:
            if current is not None:
                restore(self.teacher, current)
        thr = null_threshold(null, g=self.g, window=m.ma_window, steps=m.outer_steps, fwer=m.tau_fwer,
                             sims=m.tau_null_sims, seed=self._seed("tau_null_simulation", *tag))
        self.state.tau = thr.tau
        if stage0:
            self.state.tau_null, self.state.tau_null_summary = null, asdict(thr)
        self.state.tau_stages.append({"inner_steps": inner, "promotions": len(self.state.promotions), "tau": thr.tau,
                                      "null": null, "summary": asdict(thr), "seconds": round(time.time() - t0, 1)})
        self.log(f"tau from {len(null)} null steps x {self.g} datasets of the untrained teacher at {inner} inner steps"
                 f"{'' if stage0 else f' (after promotion {len(self.state.promotions)})'}: R̂ {thr.rhat_mean:+.4f} "
                 f"± {thr.rhat_sd:.4f} -> tau {thr.tau:.4f} (family-wise false-promotion rate {m.tau_fwer:g} over "
                 f"{m.outer_steps} steps; {thr.z_per_step:.2f} SDs of one moving average; {time.time() - t0:.0f} s)")

    def stage_tau(self) -> None:
        """meta.tau_per_stage: before an outer step whose inner-step count no calibration has measured yet (a
        promotion grew the inner loops), measure the null there (`calibrate_tau`)."""
        m = self.meta
        if not (self.promotes and m.tau_null_steps and m.tau_per_stage):
            return
        if not self.state.tau_stages and self.state.tau_null:  # a checkpoint from before tau_stages: its stage 0
            self.state.tau_stages.append({"inner_steps": m.inner_steps, "promotions": 0,
                                          "tau": self.state.tau_null_summary.get("tau", self.state.tau),
                                          "null": self.state.tau_null, "summary": self.state.tau_null_summary})
        inner = inner_steps_for(m, len(self.state.promotions))
        if inner not in {t["inner_steps"] for t in self.state.tau_stages}:
            self.calibrate_tau(inner)

    def hard_train_greedy_acc(self) -> float:
        """Greedy accuracy of the student as it stands on all of hard-train (Fig. 6, left)."""
        return float(score_problems(self.student, self.task, self.hard_train, decoding="greedy", seed=0,
                                    batch_size=self.cfg.model.gen_batch_size).mean())

    def _learnability(self, dataset, step: int, k: int) -> float:
        """App. B.4: mean over the dataset of learnability(success rate of `intrinsic_samples` base-student samples)."""
        restore(self.student, self.baseline)
        rates = score(self.student, self.task, [qa.question for qa in dataset], [qa.answer for qa in dataset],
                      [stream_key("inner_question", step, k, i) for i in range(len(dataset))], decoding="sampled",
                      samples=self.meta.intrinsic_samples, seed=self._seed("intrinsic_score", step, k),
                      batch_size=self.cfg.model.gen_batch_size)
        return float(learnability(rates).mean())

    def final_diagnostics(self) -> dict:
        """The world's question diagnostics of the teacher as it stands and of the untrained teacher, on
        `meta.diagnostics_samples` fresh samples each from one sampling stream shared by every run and both
        teachers (common random numbers); written to diagnostics.json. {} when the world has none or it is off."""
        rows = self.meta.diagnostics_samples
        if rows == 0:
            return {}
        key, seed = stream_key("diagnostics"), derive(self.cfg.seed, "meta_train", "diagnostics_sample")
        args = dict(rows=rows, key=key, seed=seed, temperature=self.meta.teacher.temperature,
                    batch_size=self.cfg.model.gen_batch_size, turns=self.meta.teacher_turns, chunk=self.g * self.n)
        pool = current_pool()
        if pool is not None:  # pooled local workers: the untrained teacher on a free worker, the trained one here
            with shared_snapshot(self.untrained_teacher) as ref:
                handle = pool.submit(diagnostics_job, [(self.cfg, ref, self.hard_train, args)])
                trained = teacher_diagnostics(self.teacher, self.task, self.hard_train, **args)
                untrained = pool.collect(handle)[0]
        else:
            trained = teacher_diagnostics(self.teacher, self.task, self.hard_train, **args)
            current = snapshot(self.teacher)
            restore(self.teacher, self.untrained_teacher)
            untrained = teacher_diagnostics(self.teacher, self.task, self.hard_train, **args)
            restore(self.teacher, current)
        out = {"step": self.state.step, "samples": rows, "trained": trained, "untrained": untrained}
        write_json(self.paths.diagnostics, out)
        return out

    def run(self, resume: bool = False, on_step=None) -> list[dict]:
        if self.cfg.tracking != "none":
            from .tracking import tracker

            self.tracker = tracker(self.cfg, self.paths.dir.name)
        try:
            return self._run(resume, on_step)
        except TeacherSamplingError as e:  # the teacher writes nothing the format accepts: say so, stop cleanly
            self.stop_early(str(e))
            return read_jsonl(self.paths.metrics)
        finally:
            if self.tracker is not None:
                self.tracker.close()

    def stop_early(self, why: str) -> dict:
        """Record why the run stopped (stopped.json) with the teacher's format acceptance measured on
        `meta.diagnostics_samples` fresh samples (at least 64), and say it in one line. No fallback changes the
        paper's format rule."""
        rows = max(64, self.meta.diagnostics_samples)
        d = teacher_diagnostics(self.teacher, self.task, self.hard_train, rows=rows, key=stream_key("diagnostics"),
                                seed=derive(self.cfg.seed, "meta_train", "diagnostics_sample"),
                                temperature=self.meta.teacher.temperature, batch_size=self.cfg.model.gen_batch_size,
                                turns=self.meta.teacher_turns)
        out = {"step": self.state.step, "reason": why, "samples": rows, "format_acceptance": 1.0 - d["reject_rate"]}
        write_json(self.paths.stopped, out)
        self.log(f"stopped at outer step {self.state.step}: the teacher's format acceptance is "
                 f"{out['format_acceptance']:.3f} ({round(out['format_acceptance'] * rows)} of {rows} fresh samples pass "
                 f"the format check); {why}")
        return out

    def _run(self, resume: bool, on_step) -> list[dict]:
        self.paths.stopped.unlink(missing_ok=True)
        if check_meta_dir(self.cfg, self.paths, resume) == "resume":
            self.try_resume()
        else:  # a fresh start: rows of steps never checkpointed (a kill before the first checkpoint) go
            self.paths.metrics.unlink(missing_ok=True)
            write_json(self.paths.recorded_config, resume_key(self.cfg))
        if self.state.lr_horizon is None:
            self.state.lr_horizon = self.meta.outer_steps
        elif self.state.lr_horizon != self.meta.outer_steps:
            # a resume that grows (or shrinks) meta.outer_steps: the schedule is not re-stretched mid-run
            self.log(f"meta.outer_steps is {self.meta.outer_steps}, the run started with {self.state.lr_horizon}: the "
                     f"teacher's cosine learning-rate schedule keeps its {self.state.lr_horizon}-step horizon (lr 0 from "
                     f"there on); tau was set for a family-wise false-promotion rate over {self.state.lr_horizon} steps (over more "
                     f"steps the rate is higher)")
        if self.state.initial_hard_train_acc is None:
            restore(self.student, self.baseline)
            self.state.initial_hard_train_acc = self.hard_train_greedy_acc()
            self.state.initial_hard_train_score = self.hard_train_score()
        if self.state.tau is None:
            self.calibrate_tau()
        null = self.meta.tau_null_steps if self.promotes else 0
        self._progress(null + self.state.step)  # a resumed run counts what it had done
        while self.state.step < self.meta.outer_steps:
            self.stage_tau()  # ALG1 at a new stage: tau for its inner-step count (meta.tau_per_stage)
            row = self.outer_step()
            self._progress(null + self.state.step)
            msg = (f"step {row['step']:3d}  R={row['reward_mean']:+.4f}  MA={row['reward_ma']:+.4f}  base={row['baseline_score']:.3f}"
                   f"  inner={row['inner_steps']}  rej={row['rejected']}  {'PROMOTED ' if row['promoted'] else ''}{row['seconds']:.1f}s")
            self.log(msg)
            if on_step:
                on_step(row)
        self.save()
        write_json(self.paths.pq, self.state.pq)
        write_json(self.paths.promotions, self.state.promotions)
        done = self.paths.diagnostics.exists() and json.loads(self.paths.diagnostics.read_text()).get("step") == self.state.step
        if not done:
            self.final_diagnostics()
        return read_jsonl(self.paths.metrics)
