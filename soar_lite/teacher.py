"""The teacher: rejection sampling of QA pairs (App. B.2) and its RLOO update with a collapse guard (§2.3).

Follows the paper:
- `sample_qa_pairs` is the one teacher sampler: completions that fail the task's format check are dropped and never
  enter the update (App. B.2, Proposition 1). Meta-training, the evaluation's teacher question sets, the SNR
  estimate and the tiny world's report all draw through it.
- `turns=2` is the multi-turn teacher of App. D.3 / Table 8: the question in a first call, its answer in a second
  call of the same conversation (`Task.teacher_question_prompt`, `teacher_answer_prompt`); a pair is kept when both
  calls pass their format checks, and its two calls are two rows of the update with the pair's advantage, so their
  log-probabilities are summed. The first call's row is its whole completion (what the teacher generated, including
  text the question parser ignores).
- `teacher_update`: one RLOO policy-gradient step over all accepted rollouts, dataset k's advantage
  A_k = R_k - mean_{j!=k} R_j broadcast to its rollouts (`rloo.teacher_advantages`), KL to the initial model.

Our addition, named (`meta.guard`): a **collapse guard**, i.e. a trust region checked after the fact. With
advantages normalised over the g datasets (`meta.teacher.normalize_advantages`) every Adam step has the same size
whatever the signal; at a low signal-to-noise ratio one such step can throw the teacher out of the format (measured:
the committed tiny run's teacher seed 1 went from KL 0.007 to 1.09 per token in one update and wrote 237-1,423
malformed questions per step from then on). After each update the guard measures (a) the per-token KL of the new
teacher from the previous one on the step's own rollouts (k3 estimate of KL(previous || new)) and (b) the
format-rejection rate of `probe_samples` fresh samples. An update past either bound is undone -- adapter and AdamW
state put back exactly -- and retried at half the learning rate, up to `max_retries` times; after that the step
keeps the previous teacher. What happened is returned for the metrics log (`guard`).
Per-update bounds alone let a run drift by steps each within them (measured: five accepted updates of KL
0.021-0.046 took one teacher to KL 0.68 from its initial model), so two absolute bounds stand beside them
(`max_kl_initial`: KL of the new teacher from the initial model, k3 on the step's rollouts; `max_reject`: the
probe's rejection rate itself); an update past either is undone and retried the same way.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .models import restore, snapshot
from .rloo import policy_gradient_step
from .sampling import completion_logprobs, encode_prompts, sample
from .seeds import stream_key
from .tasks.base import QAPair


class TeacherSamplingError(RuntimeError):
    pass


Row = tuple[list[int], list[int]]  # (prompt token ids, completion token ids): one teacher call


@dataclass
class TeacherSample:
    pairs: list[QAPair]
    completion_ids: list[list[int]]  # token ids of every accepted call's completion (the RLOO update's rows)
    rejected: int  # rollouts that failed the format check
    prompt_ids: list[list[int]] = field(default_factory=list)  # each row's prompt
    row_pair: list[int] = field(default_factory=list)  # the pair each row belongs to (two rows a pair with turns=2)

    @property
    def reject_rate(self) -> float:
        """Share of all sampled rollouts that failed the format check."""
        total = self.rejected + len(self.pairs)
        return self.rejected / total if total else 0.0

    def update_rows(self, pair_advantages) -> tuple[list[list[int]], list[list[int]], np.ndarray]:
        """(prompt ids, completion ids, advantage) per row: each row gets its pair's advantage."""
        return self.prompt_ids, self.completion_ids, np.asarray(pair_advantages)[np.asarray(self.row_pair, dtype=int)]


def sample_round(policy, task, rows: int, *, key: str, seed: int, temperature: float, batch_size: int, turns: int = 1,
                 prompt: str | None = None) -> tuple[list[tuple[QAPair, list[Row]]], int]:
    """One sampling call of `rows` teacher rollouts: the format-valid pairs, each with its calls (one, or two with
    turns=2: the question, then its answer asked for in the same conversation), and how many were rejected.
    `prompt` replaces the single-turn teacher prompt (SeRL's self-instruction)."""
    first = (task.teacher_prompt() if prompt is None else prompt) if turns == 1 else task.teacher_question_prompt()
    texts, comp = sample(policy, [first], [key], rows, temperature, task.teacher_max_new_tokens, seed, batch_size)
    first_ids = encode_prompts(policy.tokenizer, [first])[0]
    if turns == 1:
        kept = [(qa, [(first_ids, c)]) for qa, c in zip(map(task.parse_teacher, texts[0]), comp[0]) if qa is not None]
        return kept, rows - len(kept)
    asked = [(q, c) for q, c in zip(map(task.parse_teacher_question, texts[0]), comp[0]) if q]
    kept = []
    if asked:
        prompts = [task.teacher_answer_prompt(q) for q, _ in asked]
        answers, a_comp = sample(policy, prompts, [stream_key("teacher_answer", key, i) for i in range(len(asked))], 1,
                                 temperature, task.teacher_max_new_tokens, seed, batch_size)
        a_ids = encode_prompts(policy.tokenizer, prompts)
        for i, (q, c) in enumerate(asked):
            qa = task.parse_teacher_answer(q, answers[i][0])
            if qa is not None:
                kept.append((qa, [(first_ids, c), (a_ids[i], a_comp[i][0])]))
    return kept, rows - len(kept)


def sample_qa_pairs(policy, task, count: int, *, stream: Callable[[int], tuple[str, int]],
                    per_round: Callable[[int], int] | None = None, temperature: float = 1.0, max_rounds: int = 20,
                    batch_size: int = 256, prompt: str | None = None, turns: int = 1) -> TeacherSample:
    """`count` format-valid QA pairs from the teacher by rejection sampling (App. B.2): rejected rollouts are
    dropped and never enter the teacher update. `stream(round) -> (key, seed)` names each round's sampling stream;
    `per_round(have) -> rows` how many rollouts a round asks for (default `count`); `prompt` replaces the teacher
    prompt (SeRL's self-instruction); `turns` 2 = the multi-turn teacher (Table 8). Raises TeacherSamplingError
    after `max_rounds` rounds without `count` valid pairs."""
    out = TeacherSample([], [], 0)
    for round_ in range(max_rounds):
        key, seed = stream(round_)
        rows = per_round(len(out.pairs)) if per_round is not None else count
        kept, rejected = sample_round(policy, task, rows, key=key, seed=seed, temperature=temperature,
                                      batch_size=batch_size, turns=turns, prompt=prompt)
        out.rejected += rejected
        for qa, calls in kept[:count - len(out.pairs)]:
            out.row_pair += [len(out.pairs)] * len(calls)
            out.pairs.append(qa)
            out.prompt_ids += [p for p, _ in calls]
            out.completion_ids += [c for _, c in calls]
        if len(out.pairs) == count:
            return out
    raise TeacherSamplingError(f"only {len(out.pairs)}/{count} format-valid teacher samples after {max_rounds} rounds "
                               f"({out.rejected} rejected); raise meta.max_teacher_tries or check the teacher prompt")


def format_reject_rate(policy, task, rows: int, *, key: str, seed: int, temperature: float, batch_size: int,
                       turns: int = 1) -> float:
    """Share of `rows` fresh teacher rollouts that fail the format check (one sampling call, no retries)."""
    _, rejected = sample_round(policy, task, rows, key=key, seed=seed, temperature=temperature, batch_size=batch_size,
                               turns=turns)
    return rejected / rows


def rollout_logprobs(policy, prompt_ids, completion_ids, batch_size: int = 256) -> list[np.ndarray]:
    """Per-token log-probabilities of each completion under the policy as it stands (no grad, LoRA merged)."""
    return _logprobs(policy, prompt_ids, completion_ids, batch_size, initial=False)


def initial_logprobs(policy, prompt_ids, completion_ids, batch_size: int = 256) -> list[np.ndarray]:
    """Per-token log-probabilities of each completion under the initial model (the adapter switched off)."""
    return _logprobs(policy, prompt_ids, completion_ids, batch_size, initial=True)


def _logprobs(policy, prompt_ids, completion_ids, batch_size: int, initial: bool) -> list[np.ndarray]:
    import torch

    out = []
    with torch.no_grad(), (policy.model.disable_adapter() if initial else policy.merged()):
        for s in range(0, len(completion_ids), batch_size):
            lp, mask = completion_logprobs(policy.model, prompt_ids[s:s + batch_size], completion_ids[s:s + batch_size],
                                           policy.tokenizer.pad_token_id, policy.device)
            lp, mask = lp.cpu().numpy().astype(np.float64), mask.cpu().numpy().astype(bool)
            out += [lp[i][mask[i]] for i in range(len(lp))]
    return out


def k3_kl(old: list[np.ndarray], new: list[np.ndarray]) -> float:
    """Per-token KL(old || new) on rollouts sampled from `old`: the k3 estimator (rho - 1) - log rho with
    rho = p_new / p_old per token, averaged per row, then over rows (>= 0; 0 iff the token probabilities agree)."""
    rows = []
    for lo, ln in zip(old, new):
        if len(lo):
            log_rho = ln - lo
            rows.append(float(np.mean(np.expm1(log_rho) - log_rho)))
    return float(np.mean(rows)) if rows else 0.0


@dataclass
class GuardProbe:
    """How the guard samples the new teacher: `stream(attempt) -> (key, seed)`."""

    stream: Callable[[int], tuple[str, int]]
    temperature: float = 1.0
    batch_size: int = 256
    turns: int = 1  # meta.teacher_turns


def teacher_update(teacher, optimizer, task, prompt_ids, completion_ids, advantages, rl, lr: float, guard, *,
                   reject_before: float, probe: GuardProbe) -> dict:
    """ALG1's teacher RLOO update under the collapse guard (module docstring). `rl` is meta.teacher, `guard`
    meta.guard, `reject_before` the format-rejection rate of the step's own sample (the teacher before the update).

    Returns the row for metrics.jsonl: loss and teacher_kl (KL from the initial model, as the policy-gradient step
    reports it) of the update that was kept, and `guard`: kl_prev and reject_after per attempt, retries, the
    learning-rate scale kept, and `kept_previous` when every attempt failed."""
    before, opt_state = snapshot(teacher), copy.deepcopy(optimizer.state_dict())
    old_lp = rollout_logprobs(teacher, prompt_ids, completion_ids)
    # the absolute bound: KL(new teacher || initial model), k3 on the step's rollouts (sampled from the teacher one
    # update earlier: an estimate, named); the per-update bound alone lets steps within it add up (meta.guard)
    init_lp = initial_logprobs(teacher, prompt_ids, completion_ids) if guard.max_kl_initial > 0 else None
    attempts = []
    for attempt in range(guard.max_retries + 1):
        scale = 0.5 ** attempt
        loss, kl_ref = policy_gradient_step(teacher, optimizer, prompt_ids, completion_ids, advantages, rl.kl_coef,
                                            lr * scale, rl.grad_clip)
        kl_prev = k3_kl(old_lp, rollout_logprobs(teacher, prompt_ids, completion_ids))
        reject_after = None
        if guard.probe_samples:
            key, seed = probe.stream(attempt)
            reject_after = format_reject_rate(teacher, task, guard.probe_samples, key=key, seed=seed,
                                              temperature=probe.temperature, batch_size=probe.batch_size,
                                              turns=probe.turns)
        kl_initial = k3_kl(rollout_logprobs(teacher, prompt_ids, completion_ids), init_lp) if init_lp is not None else None
        ok = (kl_prev <= guard.max_kl
              and (reject_after is None or reject_after - reject_before <= guard.max_reject_increase)
              and (reject_after is None or reject_after <= guard.max_reject)  # absolute bounds
              and (kl_initial is None or kl_initial <= guard.max_kl_initial))
        attempts.append({"lr_scale": scale, "kl_prev": kl_prev, "reject_after": reject_after, "kl_initial": kl_initial,
                         "within_bounds": ok})
        if ok or not guard.enabled:
            return {"loss": loss, "teacher_kl": kl_ref, "guard": _guard_row(attempts, reject_before, kept_previous=False)}
        restore(teacher, before)  # undo: the adapter and AdamW's moments and step count as they were
        optimizer.load_state_dict(copy.deepcopy(opt_state))
    # every attempt was past a bound: the previous teacher stays (its KL from the initial model is the one the
    # policy-gradient step measured before updating, the same in every attempt)
    return {"loss": loss, "teacher_kl": kl_ref, "guard": _guard_row(attempts, reject_before, kept_previous=True)}


def _guard_row(attempts: list[dict], reject_before: float, kept_previous: bool) -> dict:
    last = attempts[-1]
    return {"retries": len(attempts) - 1, "lr_scale": 0.0 if kept_previous else last["lr_scale"],
            "kl_prev": last["kl_prev"], "kl_initial": last["kl_initial"], "reject_before": reject_before,
            "reject_after": last["reject_after"],
            "kept_previous": kept_previous, "attempts": attempts}


def dataset_advantages(dataset_rewards, dataset_sizes, normalize: bool) -> np.ndarray:
    """Per-rollout teacher advantages (§2.3): A_k = R_k - mean_{j!=k} R_j repeated for dataset k's rollouts;
    with `normalize` (meta.teacher.normalize_advantages, a named deviation) divided by the SD of R_k over the g
    datasets (TRL's normalize_advantages)."""
    from .rloo import teacher_advantages

    adv = teacher_advantages(dataset_rewards, dataset_sizes)
    if normalize:
        adv = adv / (float(np.std(np.asarray(dataset_rewards, dtype=np.float64))) + 1e-8)
    return adv


def teacher_diagnostics(policy, task, hard_train, *, rows: int, key: str, seed: int, temperature: float,
                        batch_size: int, turns: int = 1, chunk: int = 0) -> dict:
    """`rows` fresh teacher rollouts (one sampling call): the share failing the format check and the world's own
    diagnostics of the format-valid pairs (`Task.question_diagnostics`). With `chunk` (an outer step's g*n), also
    `at_step_size`: the diagnostics averaged over consecutive chunks of that many pairs -- what a per-step value is
    compared with (a unique share depends on how many questions it is counted over)."""
    kept, rejected = sample_round(policy, task, rows, key=key, seed=seed, temperature=temperature,
                                  batch_size=batch_size, turns=turns)
    pairs = [qa for qa, _ in kept]
    out = {"reject_rate": rejected / rows, **task.question_diagnostics(pairs, hard_train)}
    if chunk and len(pairs) >= chunk:
        parts = [task.question_diagnostics(pairs[i:i + chunk], hard_train) for i in range(0, len(pairs) - chunk + 1, chunk)]
        out["at_step_size"] = {"pairs": chunk, "chunks": len(parts),
                               **{k: float(np.mean([p[k] for p in parts])) for k in parts[0] if k != "n"}}
    return out
