"""RLOO (REINFORCE leave-one-out), the update both the student and the teacher use (paper §2.3, §2.4).

Follows the paper:
- advantage of sample i in a group of k: A_i = R_i - mean_{j != i} R_j (leave-one-out baseline);
- student: batches of `batch_questions` questions x `group_size` samples, shaped reward against the
  reference answer (App. B.3), AdamW, KL to the initial model with coefficient `kl_coef` (Table 3);
- teacher: the g datasets form the group; A_k = R_k - mean_{j != k} R_j is broadcast to every rollout
  of dataset k (INFERRED per-dataset advantage); rejected rollouts never enter (Proposition 1).

Choices the paper leaves open (named): one on-policy optimizer step per batch, no clipping or
importance ratio (INFERRED vanilla RLOO); the loss is -A * (sum of the completion's token log-probs),
averaged over rows; the KL term is the k3 estimator per token against the adapter-disabled model
(LoRA: disabling the adapter gives back the initial model exactly).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .profile import record
from .sampling import completion_logprobs, length_sorted_chunks


def rloo_advantages(rewards: np.ndarray) -> np.ndarray:
    """Leave-one-out advantages along the last axis: A_i = R_i - mean_{j!=i} R_j.

    rewards: [..., k] with k >= 2.
    """
    r = np.asarray(rewards, dtype=np.float64)
    k = r.shape[-1]
    if k < 2:
        raise ValueError("RLOO needs at least 2 samples per group")
    total = r.sum(axis=-1, keepdims=True)
    return r - (total - r) / (k - 1)


def teacher_advantages(dataset_rewards, dataset_sizes) -> np.ndarray:
    """Per-rollout teacher advantages: dataset k's RLOO advantage repeated for its n_k rollouts."""
    adv = rloo_advantages(np.asarray(dataset_rewards, dtype=np.float64))
    return np.repeat(adv, dataset_sizes)


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    """Table 3: cosine decay (to 0 at `total`) after linear warmup."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    span = max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))


def make_optimizer(policy, lr: float, weight_decay: float):
    return torch.optim.AdamW(policy.trainable(), lr=lr, weight_decay=weight_decay)


def micro_batches(policy, lengths: list[int], micro_batch: int | None = None) -> list[np.ndarray]:
    """Row indices of each forward/backward pass. An explicit `micro_batch` (or policy.train_micro_batch, a memory
    cap) cuts the rows in order; policy.sorted_micro_batch > 0 (model.length_sorted_micro_batch) sorts them by
    length first, so each pass pads to its own longest row. 0 everywhere: one pass over the whole batch."""
    n = len(lengths)
    if micro_batch:
        return [np.arange(s, min(s + micro_batch, n)) for s in range(0, n, micro_batch)]
    cap, sort = getattr(policy, "train_micro_batch", 0) or 0, getattr(policy, "sorted_micro_batch", 0) or 0
    if sort:
        return length_sorted_chunks(lengths, min(s for s in (cap, sort) if s))
    size = cap or n
    return [np.arange(s, min(s + size, n)) for s in range(0, n, size)]


def accumulate_gradient(policy, prompt_ids, completion_ids, advantages, kl_coef: float,
                        micro_batch: int | None = None) -> tuple[float, float]:
    """Backpropagate -A*logp + kl_coef*KL(policy || initial) into the trainable parameters' .grad (accumulating;
    the caller zeroes them). Returns (loss, mean KL).

    The batch is processed in micro-batches (`micro_batches`) with gradients accumulated; every term is
    normalised by the whole batch's row count, so the gradient does not depend on how the rows are cut (tested)."""
    model = policy.model
    n = len(completion_ids)
    adv_all = torch.as_tensor(np.asarray(advantages), dtype=torch.float32)
    total_loss, total_kl = 0.0, 0.0
    for idx in micro_batches(policy, [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)], micro_batch):
        p_ids, c_ids = [prompt_ids[i] for i in idx], [completion_ids[i] for i in idx]
        logps, mask = completion_logprobs(model, p_ids, c_ids, policy.tokenizer.pad_token_id, policy.device)
        adv = adv_all[torch.as_tensor(idx)].to(logps.device)
        # --- the RLOO policy-gradient term (paper §2.4): -A_i * log pi(y_i | x_i)
        pg = -(adv * (logps * mask).sum(-1)).sum() / n
        loss = pg
        kl_val = torch.zeros(())
        if kl_coef > 0:
            # the KL reference is the initial model (the adapter switched off), not the baseline student: a
            # promoted baseline is pulled back towards the base model just as a fresh student is
            with torch.no_grad(), model.disable_adapter():
                ref_logps, _ = completion_logprobs(model, p_ids, c_ids, policy.tokenizer.pad_token_id, policy.device)
            # k3 estimator of KL(pi || ref), per token, averaged per row then over rows
            delta = (ref_logps - logps) * mask
            kl_tok = (torch.exp(delta) - delta - 1.0) * mask
            kl_row = kl_tok.sum(-1) / mask.sum(-1).clamp(min=1)
            kl_val = kl_row.sum() / n
            loss = loss + kl_coef * kl_val
        loss.backward()
        total_loss += float(loss.detach())
        total_kl += float(kl_val.detach())
    return total_loss, total_kl


def policy_gradient_step(policy, optimizer, prompt_ids, completion_ids, advantages, kl_coef: float, lr: float,
                         grad_clip: float, micro_batch: int | None = None) -> tuple[float, float]:
    """One optimizer step on -A*logp + kl_coef*KL(policy || initial) (`accumulate_gradient`). Returns (loss, mean KL)."""
    n = len(completion_ids)
    policy.for_training()
    for g in optimizer.param_groups:
        g["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    total_loss, total_kl = accumulate_gradient(policy, prompt_ids, completion_ids, advantages, kl_coef, micro_batch)
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(policy.trainable(), grad_clip)
    optimizer.step()
    record("train", time.perf_counter() - t0, sum(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)), n)
    policy.for_inference()
    return total_loss, total_kl
