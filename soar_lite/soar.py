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
     (§2.5). tau is `meta.tau`, or (meta.tau_null_datasets > 0) calibrated before step 0 from the null spread
     of the reward: base-teacher datasets, `null_threshold`;
  5. teacher RLOO update with A_k = R_k - mean_{j!=k} R_j broadcast to dataset k's rollouts.

Randomness is derived from (run seed, role, teacher-seed index, step, ...) by `seeds.derive`, never carried in a
generator, so a run killed at any
point and resumed from its last checkpoint redoes the interrupted step exactly (the "RNG state" of a
checkpoint is its step number). Checkpoints (teacher adapter + optimizer, baseline student adapter,
promoted students, MA buffer, PQ, promotion log) are written atomically after every step.

Deviations (also listed in each params file): LoRA instead of full fine-tuning; smaller g, n, r, M,
inner steps and outer steps in the tiny and Colab settings; in the tiny world the reward's score is the
log-likelihood of the true hard-train chains (`reward_decoding: logprob`), where greedy accuracy never moves,
tau comes from the null spread of the reward, and the teacher's advantages are divided by their SD over the g
datasets (`meta.teacher.normalize_advantages`). Named choices: the MA window is emptied after a promotion
(`meta.reset_ma`; the paper is silent); for even r the median student is the lower middle one.

`sample_qa_pairs` is the one teacher sampler (rejection sampling, App. B.2): meta-training, the evaluation's
teacher question sets and the tiny world's report all draw through it.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .config import resume_differences, resume_key
from .executor import fans_out_students, run_jobs, worker_cache
from .models import Snapshot, load_policy, load_snapshot, restore, save_snapshot, snapshot
from .profile import tally
from .rloo import cosine_lr, make_optimizer, policy_gradient_step, teacher_advantages
from .rundir import (MetaLayout, RunDirError, append_jsonl, atomic_write, read_checked, read_jsonl, rewrite_jsonl,
                     write_json)
from .seeds import derive
from .sampling import encode_prompts, sample
from .student import RLItem, StudentJob, StudentResult, reward_questions, run_student_job, score, score_problems
from .tasks.base import QAPair


# ---- pure pieces (tested on constructed numbers) --------------------------------------------
def moving_average(history: list[float], window: int) -> float:
    """R̄_t of Algorithm 1: the mean of the last `window` batch rewards, with R̄ initialised to 0 -- a window
    not yet full counts its missing steps as 0 (so step 0 alone cannot promote on one lucky value)."""
    tail = history[-window:]
    return float(np.sum(tail)) / window


def should_promote(ma: float, tau: float) -> bool:
    """§2.5: promote when the moving average exceeds tau (strictly)."""
    return ma > tau


def promotion_window(buffer: list[float], r_hat: float, *, window: int, tau: float, reset: bool):
    """One step of the promotion rule (Algorithm 1): append R̂_t, R̄_t = moving_average, promote if R̄_t > tau; after
    a promotion the window is emptied when `reset`. Returns (new buffer, R̄_t, promote)."""
    buffer = [*buffer, r_hat]
    ma = moving_average(buffer, window)
    promote = should_promote(ma, tau)
    return ([] if promote and reset else buffer), ma, promote


def median_student(rewards: list[float]) -> int:
    """Index of the student whose reward is the median (§2.5): the true median for odd r; for even r (the
    paper's r = 4) the lower of the two middle students, a named choice."""
    order = np.argsort(np.asarray(rewards), kind="stable")
    return int(order[(len(rewards) - 1) // 2])


def null_threshold(null_rewards, window: int, z: float) -> float:
    """τ from the null spread of the reward: mean + z * SD / sqrt(window) of the rewards earned by datasets of the
    *untrained* teacher (one student each, each on its own Q_R). R̂_t averages g*r students that share one Q_R and
    one baseline, so its SD is at most the per-dataset SD (perfectly correlated students); the moving average over
    `window` steps divides that by sqrt(window). So an untrained teacher's R̄ exceeds τ with probability at most
    about Φ(-z): a promotion means a reward above noise. Training on any data moves the score, so the null mean is
    not 0 (tiny world: log-likelihood)."""
    x = np.asarray(null_rewards, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("the null spread of the reward needs at least 2 base-teacher datasets")
    return float(x.mean() + z * x.std(ddof=1) / np.sqrt(window))


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
    tau: float | None = None  # the promotion threshold this run uses (meta.tau, or calibrated: meta.tau_null_datasets)
    tau_null: list = field(default_factory=list)  # the calibration's base-teacher rewards


def check_meta_dir(cfg, paths: MetaLayout, resume: bool) -> str:
    """What a meta-training run into `paths` will do -- "fresh" or "resume" -- or a RunDirError, decided before
    anything is written: a fresh run refuses a folder that holds checkpoints; a resume refuses checkpoints without
    their state.json (deleted or never committed: the step they hold is unknown), a state.json that cannot be
    read, and a config whose values differ from those the checkpoints were made with (each named)."""
    stamped = paths.stamped_files()
    if not resume:
        if paths.state.exists() or stamped:
            raise RunDirError(f"{paths.dir} holds a meta-training run: pass --resume (resume=True) to continue it, or "
                              f"use another name (-o name=...)")
        return "fresh"
    if not paths.state.exists():
        if stamped:
            raise RunDirError(f"{paths.state} is missing but {paths.checkpoints} holds checkpoints "
                              f"({', '.join(f.name for f in stamped[:3])}): which step they hold is unknown; restore "
                              f"state.json or delete {paths.dir} to start over")
        return "fresh"  # killed before its first checkpoint: nothing to continue
    st = read_checked(paths.state, lambda f: json.loads(f.read_text()), "the last checkpoint's state")
    if not isinstance(st, dict) or not isinstance(st.get("files"), dict):
        raise RunDirError(f"{paths.state}: not a checkpoint state; restore it or delete {paths.dir} to start over")
    if paths.recorded_config.exists():
        recorded = read_checked(paths.recorded_config, lambda f: json.loads(f.read_text()), "the recorded config")
        diff = resume_differences(recorded, cfg)
        if diff:
            raise RunDirError(f"cannot resume {paths.dir}: its checkpoints were made with other values ({'; '.join(diff)}); "
                              f"set them back, or use another name (-o name=...) for a new run")
    return "resume"


class TeacherSamplingError(RuntimeError):
    pass


@dataclass
class TeacherSample:
    pairs: list[QAPair]
    completion_ids: list[list[int]]  # token ids of each accepted completion (the teacher's RLOO update needs them)
    rejected: int  # completions that failed the format check


def sample_qa_pairs(policy, task, count: int, *, stream: Callable[[int], tuple[str, int]],
                    per_round: Callable[[int], int] | None = None, temperature: float = 1.0, max_rounds: int = 20,
                    batch_size: int = 256) -> TeacherSample:
    """`count` format-valid QA pairs from the teacher prompt by rejection sampling (App. B.2): rejected
    completions are dropped and never enter the teacher update. `stream(round) -> (key, seed)` names each
    round's sampling stream; `per_round(have) -> rows` how many completions a round asks for (default
    `count`). Raises TeacherSamplingError after `max_rounds` rounds without `count` valid pairs."""
    pairs, ids, rejected = [], [], 0
    for round_ in range(max_rounds):
        key, seed = stream(round_)
        rows = per_round(len(pairs)) if per_round is not None else count
        texts, comp = sample(policy, [task.teacher_prompt()], [key], rows, temperature, task.teacher_max_new_tokens,
                             seed, batch_size)
        for text, c in zip(texts[0], comp[0]):
            qa = task.parse_teacher(text)
            if qa is None:
                rejected += 1
            elif len(pairs) < count:
                pairs.append(qa)
                ids.append(c)
        if len(pairs) == count:
            return TeacherSample(pairs, ids, rejected)
    raise TeacherSamplingError(f"only {len(pairs)}/{count} format-valid teacher samples after {max_rounds} rounds "
                               f"({rejected} rejected); raise meta.max_teacher_tries or check the teacher prompt")


def student_job(cfg, job: StudentJob) -> StudentResult:
    """One inner-loop student on a worker (executor.kind ray): the worker's model is loaded once; the baseline
    adapter arrives in `job` and the trained adapter goes back in the result (the base weights never travel)."""
    def load():
        from .tasks import make_task

        policy, task = load_policy(cfg.model, seed=derive(cfg.seed, "model", "lora_init")), make_task(cfg.task)
        task.bind_tokenizer(policy.tokenizer)
        return policy, task

    policy, task = worker_cache(("student", repr(cfg.model), repr(cfg.task), cfg.seed), load)
    return run_student_job(policy, task, job, cfg.meta.student, cfg.model.gen_batch_size)


class MetaTrainer:
    """Holds the teacher and student policies and runs outer steps with checkpoint/resume."""

    def __init__(self, cfg, task, hard_train, layout: MetaLayout, teacher: str = "grounded", run: int = 0, log=print):
        self.cfg, self.task, self.hard_train = cfg, task, list(hard_train)
        self.meta, self.kind, self.run_index = cfg.meta, teacher, run
        # grounded (SOAR) and grounded-no-promotion use the student-improvement reward; intrinsic the learnability
        self.reward = "intrinsic" if teacher == "intrinsic" else "grounded"
        self.promotes = teacher == "grounded" and self.meta.promote
        self.paths = layout
        self.log = log
        lora_seed = derive(cfg.seed, "model", "lora_init")  # teacher and students start as the same model
        self.student = load_policy(cfg.model, seed=lora_seed)
        self.teacher = load_policy(cfg.model, seed=lora_seed)
        task.bind_tokenizer(self.teacher.tokenizer)
        self.teacher_opt = make_optimizer(self.teacher, self.meta.teacher.lr, self.meta.teacher.weight_decay)
        self.baseline: Snapshot = snapshot(self.student)
        self.state = MetaState()
        if len(self.hard_train) == 0:
            raise ValueError("hard-train set is empty: run the probe first (nothing to reward against)")

    def _seed(self, role: str, *indices) -> int:
        """Seeds of this meta-training run: (run seed, meta_train, role, teacher-seed index, indices). The teacher
        kind is left out on purpose: grounded, intrinsic and no-promotion runs of one index share their step-0
        teacher samples, Q_R draws and student streams (common random numbers)."""
        return derive(self.cfg.seed, "meta_train", role, self.run_index, *indices)

    # -- checkpointing ------------------------------------------------------------------------
    def save(self) -> None:
        """Write the step's tensors under step-stamped names, then state.json (atomic) naming them, then
        drop older stamps: a kill at any point leaves state.json consistent with the files it names."""
        import torch

        p, step = self.paths, self.state.step
        files = {kind: p.stamped(kind, step).name for kind in ("teacher", "baseline_student", "teacher_opt")}
        save_snapshot(snapshot(self.teacher), p.stamped("teacher", step))
        save_snapshot(self.baseline, p.stamped("baseline_student", step))
        atomic_write(p.stamped("teacher_opt", step), lambda tmp: torch.save(self.teacher_opt.state_dict(), tmp))
        write_json(p.state, {**asdict(self.state), "files": files})  # commits the step
        for f in p.stamped_files():
            if f.name not in files.values():
                f.unlink(missing_ok=True)
        # stable names for readers (the evaluation samples the trained teacher from teacher.pt)
        save_snapshot(snapshot(self.teacher), p.teacher)
        save_snapshot(self.baseline, p.baseline)
        if step in self.meta.teacher_snapshots:  # e.g. the paper's HARP teacher at step 170
            save_snapshot(snapshot(self.teacher), p.teacher_at(step))

    def try_resume(self) -> bool:
        """Load the last complete step (`check_meta_dir` has found its state.json); False when there is none."""
        import torch

        p = self.paths
        if not p.state.exists():
            return False
        st = read_checked(p.state, lambda f: json.loads(f.read_text()), "the last checkpoint's state")
        try:
            files = st.pop("files")
            self.state = MetaState(**st)
        except (KeyError, TypeError, AttributeError) as e:
            raise RunDirError(f"{p.state}: not a checkpoint state ({e}); restore it or delete {p.dir} to start over") from None
        restore(self.teacher, read_checked(p.checkpoints / files["teacher"], load_snapshot, "the teacher"))
        self.baseline = read_checked(p.checkpoints / files["baseline_student"], load_snapshot, "the baseline student")
        opt = read_checked(p.checkpoints / files["teacher_opt"], lambda f: torch.load(f, weights_only=True),
                           "the teacher's optimizer")
        self.teacher_opt.load_state_dict(opt)
        # drop metric rows of a step that was interrupted after logging but before its checkpoint
        rewrite_jsonl(p.metrics, [r for r in read_jsonl(p.metrics) if r["step"] < self.state.step])
        self.log(f"resumed at outer step {self.state.step} ({len(self.state.promotions)} promotions)")
        return True

    # -- ALG1: sample g*n QA pairs with rejection sampling ---------------------------------------
    def sample_teacher(self, step: int) -> TeacherSample:
        need = self.meta.g * self.meta.n
        return sample_qa_pairs(self.teacher, self.task, need,
                               stream=lambda r: (f"t{step}r{r}", self._seed("teacher_sample", step, r)),
                               per_round=lambda have: need - have + max(4, need // 8),  # a little over what is missing
                               temperature=self.meta.teacher.temperature, max_rounds=self.meta.max_teacher_tries,
                               batch_size=self.cfg.model.gen_batch_size)

    def _score(self, problems, step) -> float:
        """Mean score of the student as it stands on `problems` (the quantity behind the grounded reward)."""
        return float(score_problems(self.student, self.task, problems, decoding=self.meta.reward_decoding,
                                    samples=self.meta.reward_samples, seed=self._seed("reward_score", step),
                                    batch_size=self.cfg.model.gen_batch_size).mean())

    # -- one outer step -----------------------------------------------------------------------------
    def outer_step(self) -> dict:
        with tally() as work:  # tokens and seconds per kind of work, for the cost model (cost.py)
            row = self._outer_step()
        row["profile"] = work.as_dict()
        append_jsonl(self.paths.metrics, row)
        if self.state.step % self.meta.checkpoint_every == 0 or self.state.step == self.meta.outer_steps:
            self.save()
        return row

    def _outer_step(self) -> dict:
        t0 = time.time()
        m, step = self.meta, self.state.step
        teacher = self.sample_teacher(step)
        pairs, comp_ids, rejected = teacher.pairs, teacher.completion_ids, teacher.rejected
        datasets = [pairs[k * m.n:(k + 1) * m.n] for k in range(m.g)]  # ALG1: split into X_1..X_g
        q_r = reward_questions(self.hard_train, m.M, self._seed("reward_questions", step))  # ALG1: sample Q_R from D_train
        restore(self.student, self.baseline)
        base_score = self._score(q_r, step)
        inner = inner_steps_for(m, len(self.state.promotions))
        rewards_kj = np.zeros((m.g, m.r))
        trained: dict[tuple[int, int], Snapshot] = {}
        student_stats = []
        jobs = {}
        for k, ds in enumerate(datasets):
            items = [RLItem(qa.question, qa.answer, f"s{step}d{k}q{i}") for i, qa in enumerate(ds)]
            if self.reward == "intrinsic":
                rewards_kj[k, :] = self._learnability(items, step, k)
                continue
            for j in range(m.r):
                # each student starts from the baseline with a fresh optimizer; Q_R is scored with the same
                # sampling seed as the baseline, so R_kj compares the two on common random numbers
                jobs[(k, j)] = StudentJob(baseline=self.baseline, items=items, steps=inner,
                                          seed=self._seed("student_train", step, k, j), reward_problems=q_r,
                                          decoding=m.reward_decoding, reward_samples=m.reward_samples,
                                          eval_seed=self._seed("reward_score", step))
        for (k, j), res in zip(jobs, self._train_students(list(jobs.values()))):
            # ALG1: R_kj = Score(trained student, Q_R) - Score(baseline, Q_R)
            rewards_kj[k, j] = res.score - base_score
            trained[(k, j)] = res.trained
            student_stats.append(float(np.mean([s["reward"] for s in res.train_stats])))
        r_k = rewards_kj.mean(axis=1)  # ALG1: R_k = mean_j R_kj
        r_hat = float(r_k.mean())
        self.state.reward_history.append(r_hat)
        # ALG1: R̄_t = MA(R̂_{t-m..t}) (R̄ <- 0 at the start; emptied after a promotion when meta.reset_ma)
        self.state.ma_buffer, ma, over_tau = promotion_window(self.state.ma_buffer, r_hat, window=m.ma_window,
                                                              tau=self.state.tau, reset=m.reset_ma and self.promotes)
        promoted = False
        if self.promotes and over_tau:  # ALG1: if R̄_t > tau
            k_best = int(np.argmax(r_k))  # ALG1: k* = argmax R_k
            j_med = median_student(list(rewards_kj[k_best]))  # ALG1: j* = the median-reward student of k*
            self.baseline = trained[(k_best, j_med)]  # ALG1: theta <- theta'_{k*, j*}
            stage = len(self.state.promotions) + 1
            self.state.pq.extend({"question": qa.question, "answer": qa.answer, "stage": stage, "step": step}
                                 for qa in datasets[k_best])  # ALG1: D_best U= X_{k*}
            restore(self.student, self.baseline)
            self.state.promotions.append({"step": step, "dataset": k_best, "student": j_med,
                                          "reward": float(rewards_kj[k_best, j_med]),
                                          "hard_train_score": self.hard_train_score(),
                                          "hard_train_greedy_acc": self.hard_train_greedy_acc()})
            save_snapshot(self.baseline, self.paths.promoted(stage))
            promoted = True
        # ALG1: teacher RLOO update, every rollout of X_k gets A_k (rewards from before the promotion)
        adv = teacher_advantages(r_k, [m.n] * m.g)
        if m.teacher.normalize_advantages:  # DEVIATION (named in the params): A_k / SD_k(R_k), TRL's option
            adv = adv / (float(np.std(r_k)) + 1e-8)
        prompt = encode_prompts(self.teacher.tokenizer, [self.task.teacher_prompt()])[0]
        lr = cosine_lr(step, m.outer_steps, m.teacher.lr, m.teacher.warmup_steps)
        t_loss, t_kl = policy_gradient_step(self.teacher, self.teacher_opt, [prompt] * len(comp_ids), comp_ids, adv,
                                            m.teacher.kl_coef, lr, m.teacher.grad_clip)
        row = {"step": step, "reward_mean": r_hat, "reward_ma": ma, "tau": self.state.tau, "promoted": promoted,
               "promotions": len(self.state.promotions), "baseline_score": base_score, "inner_steps": inner,
               "rejected": rejected, "accepted": len(pairs), "rewards": r_k.tolist(), "rewards_kj": rewards_kj.tolist(),
               "student_train_reward": float(np.mean(student_stats)) if student_stats else None,
               "teacher_kl": t_kl, "teacher_lr": lr, "seconds": round(time.time() - t0, 2),
               "questions": [qa.question for qa in pairs], "answers": [qa.answer for qa in pairs]}
        self.state.step += 1
        return row

    def _train_students(self, jobs: list[StudentJob]) -> list[StudentResult]:
        """ALG1: theta'_{k,j} <- RLOO-Update(theta, X_k) for every student of the step: here, one after another, or
        (executor.kind ray) on the Ray actors, which receive the baseline adapter and return the trained one."""
        if not fans_out_students(self.cfg.executor):
            return [run_student_job(self.student, self.task, job, self.meta.student, self.cfg.model.gen_batch_size)
                    for job in jobs]
        return run_jobs(student_job, [(self.cfg, job) for job in jobs], self.cfg.executor)

    def hard_train_score(self) -> float:
        """The run's own reward metric (meta.reward_decoding) of the student as it stands, on all of hard-train:
        what SOAR-PS is selected by (the paper: greedy accuracy, its reward metric)."""
        return float(score_problems(self.student, self.task, self.hard_train, decoding=self.meta.reward_decoding,
                                    samples=self.meta.reward_samples, seed=self._seed("hard_train_score"),
                                    batch_size=self.cfg.model.gen_batch_size).mean())

    def calibrate_tau(self) -> None:
        """τ from the null spread of the reward (meta.tau_null_datasets > 0): base-teacher datasets of n questions,
        one student each at the first inner-step count, scored like R_kj on a fresh Q_R each."""
        m = self.meta
        if m.tau_null_datasets == 0 or not self.promotes:
            self.state.tau = m.tau
            return
        t0, rewards = time.time(), []
        for i in range(m.tau_null_datasets):
            pairs = sample_qa_pairs(self.teacher, self.task, m.n,
                                    stream=lambda r, i=i: (f"null{i}r{r}", self._seed("tau_null_teacher", i, r)),
                                    temperature=m.teacher.temperature, max_rounds=m.max_teacher_tries,
                                    batch_size=self.cfg.model.gen_batch_size).pairs
            q_r = reward_questions(self.hard_train, m.M, self._seed("tau_null_questions", i))
            restore(self.student, self.baseline)
            base = float(score_problems(self.student, self.task, q_r, decoding=m.reward_decoding,
                                        samples=m.reward_samples, seed=self._seed("tau_null_score", i),
                                        batch_size=self.cfg.model.gen_batch_size).mean())
            items = [RLItem(qa.question, qa.answer, f"null{i}q{q}") for q, qa in enumerate(pairs)]
            job = StudentJob(baseline=self.baseline, items=items, steps=m.inner_steps,
                             seed=self._seed("tau_null_student", i), reward_problems=q_r, decoding=m.reward_decoding,
                             reward_samples=m.reward_samples, eval_seed=self._seed("tau_null_score", i))
            rewards.append(run_student_job(self.student, self.task, job, m.student, self.cfg.model.gen_batch_size).score - base)
        self.state.tau = null_threshold(rewards, m.ma_window, m.tau_null_z)
        self.state.tau_null = rewards
        self.log(f"tau from the null spread of {len(rewards)} base-teacher datasets: mean {np.mean(rewards):+.4f}, "
                 f"SD {np.std(rewards, ddof=1):.4f} -> tau {self.state.tau:.4f} ({time.time() - t0:.0f} s)")

    def hard_train_greedy_acc(self) -> float:
        """Greedy accuracy of the student as it stands on all of hard-train (Fig. 6, left)."""
        return float(score_problems(self.student, self.task, self.hard_train, decoding="greedy", seed=0,
                                    batch_size=self.cfg.model.gen_batch_size).mean())

    def _learnability(self, items: list[RLItem], step: int, k: int) -> float:
        """App. B.4: mean over the dataset of learnability(success rate of 32 base-student samples)."""
        restore(self.student, self.baseline)
        rates = score(self.student, self.task, [it.question for it in items], [it.reference for it in items],
                      [it.key for it in items], decoding="sampled", samples=self.meta.intrinsic_samples,
                      seed=self._seed("intrinsic_score", step, k), batch_size=self.cfg.model.gen_batch_size)
        return float(learnability(rates).mean())

    def run(self, resume: bool = False, on_step=None) -> list[dict]:
        if check_meta_dir(self.cfg, self.paths, resume) == "resume":
            self.try_resume()
        else:  # a fresh start: rows of steps never checkpointed (a kill before the first checkpoint) go
            self.paths.metrics.unlink(missing_ok=True)
            write_json(self.paths.recorded_config, resume_key(self.cfg))
        if self.state.initial_hard_train_acc is None:
            restore(self.student, self.baseline)
            self.state.initial_hard_train_acc = self.hard_train_greedy_acc()
            self.state.initial_hard_train_score = self.hard_train_score()
        if self.state.tau is None:
            self.calibrate_tau()
        while self.state.step < self.meta.outer_steps:
            row = self.outer_step()
            msg = (f"step {row['step']:3d}  R={row['reward_mean']:+.4f}  MA={row['reward_ma']:+.4f}  base={row['baseline_score']:.3f}"
                   f"  inner={row['inner_steps']}  rej={row['rejected']}  {'PROMOTED ' if row['promoted'] else ''}{row['seconds']:.1f}s")
            self.log(msg)
            if on_step:
                on_step(row)
        self.save()
        write_json(self.paths.pq, self.state.pq)
        write_json(self.paths.promotions, self.state.promotions)
        return read_jsonl(self.paths.metrics)
