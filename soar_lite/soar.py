"""The SOAR meta-loop (paper §2, Algorithm 1): teacher RLOO over grounded student rewards, with promotion.

One outer step (the lines of Algorithm 1 are marked ALG1 below):
  1. the teacher writes g*n format-valid QA pairs (rejection sampling, App. B.2) -> g datasets of n;
  2. M reward questions are resampled from hard-train;
  3. for each dataset, r students start from the baseline snapshot, run `inner_steps` RLOO steps on the
     dataset (teacher's answers as references) and are scored on the reward questions;
     R_k = mean_j (score_kj - score_baseline)        (grounded reward, §2.3; score = meta.reward_decoding:
                                                      greedy accuracy in the paper, log-likelihood in the tiny world)
     or R_k = mean_i learnability(s_i)                (intrinsic reward, App. B.4, Intrinsic-T);
  4. moving average over `ma_window` steps; if it exceeds tau: the median student of the best dataset
     becomes the baseline, the dataset joins PQ, inner steps grow by `inner_steps_per_promotion` (§2.5);
  5. teacher RLOO update with A_k = R_k - mean_{j!=k} R_j broadcast to dataset k's rollouts.

Randomness is derived from (seed, step, role), never carried in a generator, so a run killed at any
point and resumed from its last checkpoint redoes the interrupted step exactly (the "RNG state" of a
checkpoint is its step number). Checkpoints (teacher adapter + optimizer, baseline student adapter,
promoted students, MA buffer, PQ, promotion log) are written atomically after every step.

Deviations (also listed in each params file): LoRA instead of full fine-tuning; smaller g, n, r, M,
inner steps and outer steps in the tiny and Colab settings; in the tiny world the reward's score is the
log-likelihood of the true hard-train chains (`reward_decoding: logprob`), where greedy accuracy never moves.

`sample_qa_pairs` is the one teacher sampler (rejection sampling, App. B.2): meta-training, the evaluation's
teacher question sets and the tiny world's report all draw through it.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .models import Snapshot, load_policy, load_snapshot, restore, save_snapshot, snapshot
from .profile import tally
from .rloo import cosine_lr, make_optimizer, policy_gradient_step, teacher_advantages
from .rundir import MetaLayout, append_jsonl, atomic_write, read_jsonl, rewrite_jsonl, write_json
from .sampling import encode_prompts, sample
from .student import RLItem, StudentJob, reward_questions, run_student_job, score, score_problems
from .tasks.base import QAPair


def derive_seed(*parts) -> int:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 33


# ---- pure pieces (tested on constructed numbers) --------------------------------------------
def moving_average(history: list[float], window: int) -> float:
    """Mean of the last `window` batch rewards (fewer at the start), §2.5."""
    tail = history[-window:]
    return float(np.mean(tail)) if tail else 0.0


def should_promote(ma: float, tau: float) -> bool:
    """§2.5: promote when the moving average exceeds tau (strictly)."""
    return ma > tau


def median_student(rewards: list[float]) -> int:
    """Index of the student whose reward is the median (lower median for even r), §2.5."""
    order = np.argsort(np.asarray(rewards), kind="stable")
    return int(order[(len(rewards) - 1) // 2])


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
    reward_history: list = field(default_factory=list)
    promotions: list = field(default_factory=list)  # {step, dataset, student, reward, hard_train_greedy_acc}
    pq: list = field(default_factory=list)  # {question, answer, stage, step}
    initial_hard_train_acc: float | None = None  # stage 0 of Fig. 6: the base student, greedy, on hard-train


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


class MetaTrainer:
    """Holds the teacher and student policies and runs outer steps with checkpoint/resume."""

    def __init__(self, cfg, task, hard_train, layout: MetaLayout, reward: str = "grounded", log=print):
        self.cfg, self.task, self.hard_train = cfg, task, list(hard_train)
        self.meta, self.reward = cfg.meta, reward  # reward: grounded (SOAR) | intrinsic (learnability, Intrinsic-T)
        self.paths = layout
        self.log = log
        self.student = load_policy(cfg.model, seed=cfg.seed)
        self.teacher = load_policy(cfg.model, seed=cfg.seed)
        task.bind_tokenizer(self.teacher.tokenizer)
        self.teacher_opt = make_optimizer(self.teacher, self.meta.teacher.lr, self.meta.teacher.weight_decay)
        self.baseline: Snapshot = snapshot(self.student)
        self.state = MetaState()
        if len(self.hard_train) == 0:
            raise ValueError("hard-train set is empty: run the probe first (nothing to reward against)")

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
        import torch

        p = self.paths
        if not p.state.exists():
            return False
        st = json.loads(p.state.read_text())
        files = st.pop("files")
        self.state = MetaState(**st)
        restore(self.teacher, load_snapshot(p.checkpoints / files["teacher"]))
        self.baseline = load_snapshot(p.checkpoints / files["baseline_student"])
        self.teacher_opt.load_state_dict(torch.load(p.checkpoints / files["teacher_opt"], weights_only=False))
        # drop metric rows of a step that was interrupted after logging but before its checkpoint
        rewrite_jsonl(p.metrics, [r for r in read_jsonl(p.metrics) if r["step"] < self.state.step])
        self.log(f"resumed at outer step {self.state.step} ({len(self.state.promotions)} promotions)")
        return True

    # -- ALG1: sample g*n QA pairs with rejection sampling ---------------------------------------
    def sample_teacher(self, step: int) -> TeacherSample:
        need = self.meta.g * self.meta.n
        return sample_qa_pairs(self.teacher, self.task, need,
                               stream=lambda r: (f"t{step}r{r}", derive_seed(self.cfg.seed, step, "teacher", r)),
                               per_round=lambda have: need - have + max(4, need // 8),  # a little over what is missing
                               temperature=self.meta.teacher.temperature, max_rounds=self.meta.max_teacher_tries,
                               batch_size=self.cfg.model.gen_batch_size)

    def _score(self, problems, step) -> float:
        """Mean score of the student as it stands on `problems` (the quantity behind the grounded reward)."""
        return float(score_problems(self.student, self.task, problems, decoding=self.meta.reward_decoding,
                                    samples=self.meta.reward_samples, seed=derive_seed(self.cfg.seed, step, "eval"),
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
        q_r = reward_questions(self.hard_train, m.M, derive_seed(self.cfg.seed, step, "qr"))  # ALG1: sample Q_R from D_train
        restore(self.student, self.baseline)
        base_score = self._score(q_r, step)
        inner = inner_steps_for(m, len(self.state.promotions))
        rewards_kj = np.zeros((m.g, m.r))
        trained: dict[tuple[int, int], Snapshot] = {}
        student_stats = []
        for k, ds in enumerate(datasets):
            items = [RLItem(qa.question, qa.answer, f"s{step}d{k}q{i}") for i, qa in enumerate(ds)]
            if self.reward == "intrinsic":
                rewards_kj[k, :] = self._learnability(items, step, k)
                continue
            for j in range(m.r):
                # each student starts from the baseline with a fresh optimizer; Q_R is scored with the same
                # sampling seed as the baseline, so R_kj compares the two on common random numbers
                job = StudentJob(baseline=self.baseline, items=items, steps=inner,
                                 seed=derive_seed(self.cfg.seed, step, k, j), reward_problems=q_r,
                                 decoding=m.reward_decoding, reward_samples=m.reward_samples,
                                 eval_seed=derive_seed(self.cfg.seed, step, "eval"))
                res = run_student_job(self.student, self.task, job, m.student, self.cfg.model.gen_batch_size)
                # ALG1: R_kj = Score(trained student, Q_R) - Score(baseline, Q_R)
                rewards_kj[k, j] = res.score - base_score
                trained[(k, j)] = res.trained
                student_stats.append(float(np.mean([s["reward"] for s in res.train_stats])))
        r_k = rewards_kj.mean(axis=1)  # ALG1: R_k = mean_j R_kj
        r_hat = float(r_k.mean())
        self.state.reward_history.append(r_hat)
        ma = moving_average(self.state.reward_history, m.ma_window)
        promoted = False
        if m.promote and self.reward == "grounded" and should_promote(ma, m.tau):  # ALG1: promotion check
            k_best = int(np.argmax(r_k))
            j_med = median_student(list(rewards_kj[k_best]))
            self.baseline = trained[(k_best, j_med)]
            stage = len(self.state.promotions) + 1
            self.state.pq.extend({"question": qa.question, "answer": qa.answer, "stage": stage, "step": step}
                                 for qa in datasets[k_best])
            restore(self.student, self.baseline)
            new_acc = self.hard_train_greedy_acc()
            self.state.promotions.append({"step": step, "dataset": k_best, "student": j_med,
                                          "reward": float(rewards_kj[k_best, j_med]), "hard_train_greedy_acc": new_acc})
            save_snapshot(self.baseline, self.paths.promoted(stage))
            promoted = True
        # ALG1: teacher RLOO update, every rollout of X_k gets A_k (rewards from before the promotion)
        adv = teacher_advantages(r_k, [m.n] * m.g)
        prompt = encode_prompts(self.teacher.tokenizer, [self.task.teacher_prompt()])[0]
        lr = cosine_lr(step, m.outer_steps, m.teacher.lr, m.teacher.warmup_steps)
        t_loss, t_kl = policy_gradient_step(self.teacher, self.teacher_opt, [prompt] * len(comp_ids), comp_ids, adv,
                                            m.teacher.kl_coef, lr, m.teacher.grad_clip)
        row = {"step": step, "reward_mean": r_hat, "reward_ma": ma, "promoted": promoted,
               "promotions": len(self.state.promotions), "baseline_score": base_score, "inner_steps": inner,
               "rejected": rejected, "accepted": len(pairs), "rewards": r_k.tolist(), "rewards_kj": rewards_kj.tolist(),
               "student_train_reward": float(np.mean(student_stats)) if student_stats else None,
               "teacher_kl": t_kl, "teacher_lr": lr, "seconds": round(time.time() - t0, 2),
               "questions": [qa.question for qa in pairs], "answers": [qa.answer for qa in pairs]}
        self.state.step += 1
        return row

    def hard_train_greedy_acc(self) -> float:
        """Greedy accuracy of the student as it stands on all of hard-train (Fig. 6, left)."""
        return float(score_problems(self.student, self.task, self.hard_train, decoding="greedy", seed=0,
                                    batch_size=self.cfg.model.gen_batch_size).mean())

    def _learnability(self, items: list[RLItem], step: int, k: int) -> float:
        """App. B.4: mean over the dataset of learnability(success rate of 32 base-student samples)."""
        restore(self.student, self.baseline)
        rates = score(self.student, self.task, [it.question for it in items], [it.reference for it in items],
                      [it.key for it in items], decoding="sampled", samples=self.meta.intrinsic_samples,
                      seed=derive_seed(self.cfg.seed, step, "intrinsic", k), batch_size=self.cfg.model.gen_batch_size)
        return float(learnability(rates).mean())

    def run(self, resume: bool = False, on_step=None) -> list[dict]:
        if resume:
            self.try_resume()
        elif self.paths.state.exists():
            raise FileExistsError(f"{self.paths.checkpoints} holds a run already: pass resume=True (--resume) or use a new name")
        else:
            self.paths.metrics.unlink(missing_ok=True)
        if self.state.initial_hard_train_acc is None:
            restore(self.student, self.baseline)
            self.state.initial_hard_train_acc = self.hard_train_greedy_acc()
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


def sample_questions(policy, task, count: int, seed: int, temperature: float = 1.0, max_rounds: int = 20,
                     batch_size: int = 256) -> list[QAPair]:
    """`count` format-valid QA pairs from a teacher (trained or not): Grounded-T / Base-T / Intrinsic-T sets."""
    return sample_qa_pairs(policy, task, count, stream=lambda r: (f"eval{seed}r{r}", derive_seed(seed, "sample", r)),
                           temperature=temperature, max_rounds=max_rounds, batch_size=batch_size).pairs
