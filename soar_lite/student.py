"""Student training and scoring: the inner loop's unit of work (paper §2.4).

`run_student_job` is self-contained: (baseline adapter snapshot, dataset, seed, settings) -> (trained
adapter snapshot, reward). The g*r students of an outer step are independent jobs, so they can fan
out over GPUs or nodes with an existing engine (e.g. `ray.remote(run_student_job)`) unchanged; here
they run one after another on one in-memory model, restored from the snapshot each time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .models import SharedSnapshot, Snapshot, restore, snapshot
from .profile import span
from .rloo import cosine_lr, make_optimizer, policy_gradient_step, rloo_advantages
from .sampling import encode_prompts, sample
from .seeds import stream_key
from .serl import majority_answer


@dataclass
class RLItem:
    """A training question with the reference its reward is checked against (teacher's or true). Reference None:
    each sample is rewarded against its RLOO group's majority answer (SeRL's self-reward, `soar_lite.serl`)."""

    question: str
    reference: str | None
    key: str


def reward_reference(task, item: RLItem, group: list[str]) -> str:
    """What a group's samples are rewarded against: the item's reference, or for an unlabelled item (SeRL) the
    group's majority answer ('' when no sample has an answer: a reference nothing matches)."""
    if item.reference is not None:
        return item.reference
    return majority_answer([task.extract_answer(t) for t in group]) or ""


def rl_train(policy, task, items: list[RLItem], rl, steps: int, seed: int, batch_size: int = 256,
             item_sampler=None, log=None, optimizer=None, step_offset: int = 0, total_steps: int | None = None,
             rng: np.random.Generator | None = None) -> list[dict]:
    """RLOO for `steps` steps on `items` (batch_questions x group_size each step).

    `item_sampler(step, rng) -> list[RLItem]` overrides the default cyclic shuffled batches (used by
    evaluation's mixed/curriculum modes). A run trained in chunks passes its `optimizer`, the chunk's
    `step_offset` and the run's `total_steps`, so AdamW state and the cosine schedule span the run; a chunk cut into
    pieces (to checkpoint inside it) passes its generator `rng` (`seed` is then unused), so the pieces draw what the
    whole chunk would (with an `item_sampler`; the cyclic batches' order is drawn anew per call).
    Returns per-step stats.
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    opt = optimizer if optimizer is not None else make_optimizer(policy, rl.lr, rl.weight_decay)
    total = total_steps if total_steps is not None else steps
    order, cursor, stats = rng.permutation(len(items)) if items else np.array([], int), 0, []
    for step in range(steps):
        if item_sampler is not None:
            batch = item_sampler(step, rng)
        else:
            idx = []
            while len(idx) < min(rl.batch_questions, len(items)):
                if cursor >= len(order):
                    order, cursor = rng.permutation(len(items)), 0
                idx.append(order[cursor])
                cursor += 1
            batch = [items[i] for i in idx]
        prompts = [task.student_prompt(it.question) for it in batch]
        texts, comp_ids = sample(policy, prompts, [stream_key("training_step", it.key, step_offset + step) for it in batch], rl.group_size,
                                 rl.temperature, task.student_max_new_tokens, seed=int(rng.integers(2**31)),
                                 batch_size=batch_size)
        rewards = np.array([task.student_rewards(texts[i], [reward_reference(task, batch[i], texts[i])] * rl.group_size)
                            for i in range(len(batch))])
        adv = rloo_advantages(rewards)
        enc = encode_prompts(policy.tokenizer, prompts)
        p_ids = [enc[i] for i in range(len(batch)) for _ in range(rl.group_size)]
        c_ids = [comp_ids[i][j] for i in range(len(batch)) for j in range(rl.group_size)]
        lr = cosine_lr(step_offset + step, total, rl.lr, rl.warmup_steps)
        loss, kl = policy_gradient_step(policy, opt, p_ids, c_ids, adv.reshape(-1), rl.kl_coef, lr, rl.grad_clip)
        correct = float((rewards >= 1.0).mean())
        stats.append({"step": step_offset + step, "reward": float(rewards.mean()), "correct": correct, "kl": kl, "loss": loss,
                      "signal_groups": float((rewards.std(axis=1) > 0).mean()), "lr": lr})
        if log is not None:
            log(stats[-1])
    return stats


def reference_logprob(policy, task, questions: list[str], references: list[str], batch_size: int = 256) -> np.ndarray:
    """Mean per-token log-probability of each reference answer (+ EOS) given the student prompt.

    Only meaningful where the reference is the whole completion (the tiny world's worked chain)."""
    import torch

    from .sampling import completion_logprobs, length_sorted_chunks

    tok = policy.tokenizer
    prompts = encode_prompts(tok, [task.student_prompt(q) for q in questions])
    comps = [tok(r, add_special_tokens=False).input_ids + [tok.eos_token_id] for r in references]
    lengths = [len(p) + len(c) for p, c in zip(prompts, comps)]
    sort = min(getattr(policy, "sorted_micro_batch", 0) or 0, batch_size)
    chunks = length_sorted_chunks(lengths, sort) if sort else \
        [np.arange(s, min(s + batch_size, len(prompts))) for s in range(0, len(prompts), batch_size)]
    out = np.zeros(len(prompts), dtype=np.float32)
    with torch.no_grad(), policy.merged():
        for idx in chunks:
            with span() as timed:
                lp, mask = completion_logprobs(policy.model, [prompts[i] for i in idx], [comps[i] for i in idx],
                                               tok.pad_token_id, policy.device)
                out[idx] = ((lp * mask).sum(-1) / mask.sum(-1)).cpu().numpy()
                timed.done("score", sum(lengths[i] for i in idx))
    return out


def score(policy, task, questions: list[str], references: list[str], keys: list[str], *, decoding: str,
          samples: int, seed: int, batch_size: int = 256) -> np.ndarray:
    """Per-question score, the quantity behind the grounded reward (meta.reward_decoding): greedy accuracy
    (the paper's, §2.3), mean accuracy over `samples` samples at T=1 ('sampled'), or the mean per-token
    log-probability of the reference answer ('logprob', the tiny world's: a log-likelihood, not an accuracy)."""
    if decoding == "logprob":
        return reference_logprob(policy, task, questions, references, batch_size)
    prompts = [task.student_prompt(q) for q in questions]
    if decoding == "greedy":
        texts, _ = sample(policy, prompts, keys, 1, 0.0, task.student_max_new_tokens, seed, batch_size)
    else:
        texts, _ = sample(policy, prompts, keys, samples, 1.0, task.student_max_new_tokens, seed, batch_size)
    return np.array([np.mean(task.is_correct_many(t, [r] * len(t))) for t, r in zip(texts, references)])


def score_problems(policy, task, problems, *, decoding: str, samples: int = 1, seed: int = 0,
                   batch_size: int = 256) -> np.ndarray:
    """`score` on a list of `Problem`s (question, true answer, id as the sampling key)."""
    return score(policy, task, [p.question for p in problems], [p.answer for p in problems],
                 [stream_key("problem", p.id) for p in problems],
                 decoding=decoding, samples=samples, seed=seed, batch_size=batch_size)


def reward_questions(hard_train: list, m: int, seed: int) -> list:
    """Q_R: `m` questions drawn without replacement from hard-train, in hard-train order (§1.2, Algorithm 1)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(hard_train), size=min(m, len(hard_train)), replace=False)
    return [hard_train[i] for i in sorted(idx)]


@dataclass
class StudentJob:
    """One inner-loop student: train from `baseline` on `items`, then score on the reward questions Q_R."""

    baseline: Snapshot | SharedSnapshot  # a SharedSnapshot on pooled workers (one file per step, not one copy per job)
    items: list[RLItem]
    steps: int
    seed: int
    reward_problems: list  # Q_R (Problems with their true answers)
    decoding: str = "greedy"
    reward_samples: int = 1
    eval_seed: int = 0
    keep_trained: bool = True  # False: the result carries no adapter (a caller that uses only the score, e.g. a tau
    #                            null step, or a step whose promotion trains confirming students of its own)


@dataclass
class StudentResult:
    trained: Snapshot | None  # None where the job said keep_trained False
    score: float  # mean score on Q_R (the quantity meta.reward_decoding names)
    train_stats: list[dict] = field(default_factory=list)


def run_student_job(policy, task, job: StudentJob, rl, batch_size: int = 256) -> StudentResult:
    """Restore the baseline, train, score. Leaves the policy holding the trained adapter.

    Each student starts from the baseline's adapter with a fresh AdamW (no optimizer state is carried
    between students or outer steps, §2.4)."""
    restore(policy, job.baseline)
    stats = rl_train(policy, task, job.items, rl, job.steps, job.seed, batch_size)
    scores = score_problems(policy, task, job.reward_problems, decoding=job.decoding, samples=job.reward_samples,
                            seed=job.eval_seed, batch_size=batch_size)
    return StudentResult(trained=snapshot(policy) if job.keep_trained else None, score=float(scores.mean()),
                         train_stats=stats)
