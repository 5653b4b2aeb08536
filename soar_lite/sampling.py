"""Batched generation with a KV cache and per-row seeds, plus completion log-probabilities.

Per-row seeds: the random number used to sample row i's t-th token is a hash of (row seed, t), not
a draw from a shared generator, so a problem's samples do not depend on which other problems share
its batch (inverse-CDF sampling with one counter-based uniform per row and step). Greedy decoding is
temperature 0.

Works for any Hugging Face causal LM (left padding, explicit position ids); the tiny model and a
real LLM take the same path.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


def row_seed(seed: int, key: str, sample: int) -> int:
    """A stable 63-bit seed for sample `sample` of the problem keyed `key`."""
    h = hashlib.blake2b(f"{seed}|{key}|{sample}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


def _uniforms(seeds: np.ndarray, step: int) -> np.ndarray:
    """splitmix64(seed + step * golden) -> uniform in [0, 1), vectorised over rows."""
    with np.errstate(over="ignore"):
        z = seeds.astype(np.uint64) + np.uint64((step + 1) * 0x9E3779B97F4A7C15 & _MASK64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def encode_prompts(tokenizer, prompts: list[str]) -> list[list[int]]:
    return [tokenizer(p).input_ids for p in prompts]


@torch.no_grad()
def generate_ids(model, tokenizer, prompt_ids: list[list[int]], seeds: list[int], temperature: float,
                 max_new_tokens: int, device: str = "cpu") -> list[list[int]]:
    """Sample one completion per row; returns completion token ids, EOS included when produced."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    n = len(prompt_ids)
    width = max(map(len, prompt_ids))
    ids = torch.full((n, width), pad, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(prompt_ids):
        ids[i, width - len(p):] = torch.tensor(p)
        attn[i, width - len(p):] = 1
    ids, attn = ids.to(device), attn.to(device)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    seeds_np = np.array(seeds, dtype=np.uint64)
    out = [[] for _ in range(n)]
    done = np.zeros(n, dtype=bool)
    past = None
    cur_ids, cur_pos = ids, pos
    for t in range(max_new_tokens):
        res = model(input_ids=cur_ids, attention_mask=attn, position_ids=cur_pos, past_key_values=past, use_cache=True)
        past = res.past_key_values
        logits = res.logits[:, -1, :].float()
        if temperature <= 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            cdf = probs.cumsum(-1)
            u = torch.from_numpy(_uniforms(seeds_np, t)).to(cdf) * cdf[:, -1]
            nxt = torch.searchsorted(cdf, u.unsqueeze(-1)).squeeze(-1).clamp(max=probs.shape[-1] - 1)
        nxt_list = nxt.tolist()
        for i in range(n):
            if not done[i]:
                out[i].append(nxt_list[i])
                if nxt_list[i] == eos:
                    done[i] = True
        if done.all():
            break
        cur_ids = nxt.unsqueeze(-1)
        cur_pos = cur_pos[:, -1:] + 1
        attn = torch.cat([attn, torch.ones((n, 1), dtype=attn.dtype, device=attn.device)], dim=1)
    return out


def decode(tokenizer, completion_ids: list[int]) -> str:
    ids = [t for t in completion_ids if t != tokenizer.eos_token_id]
    return tokenizer.decode(ids, skip_special_tokens=True)


def sample(policy, prompts: list[str], keys: list[str], n_samples: int, temperature: float, max_new_tokens: int,
           seed: int, batch_size: int = 256) -> tuple[list[list[str]], list[list[list[int]]]]:
    """n_samples completions per prompt. Returns (texts[prompt][sample], ids[prompt][sample])."""
    tok = policy.tokenizer
    enc = encode_prompts(tok, prompts)
    rows = [(i, j) for i in range(len(prompts)) for j in range(n_samples)]
    texts = [[None] * n_samples for _ in prompts]
    ids_out = [[None] * n_samples for _ in prompts]
    was_training = policy.model.training
    policy.model.eval()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        comp = generate_ids(policy.model, tok, [enc[i] for i, _ in chunk],
                            [row_seed(seed, keys[i], j) for i, j in chunk], temperature, max_new_tokens, policy.device)
        for (i, j), c in zip(chunk, comp):
            ids_out[i][j] = c
            texts[i][j] = decode(tok, c)
    policy.model.train(was_training)
    return texts, ids_out


def completion_logprobs(model, prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int,
                        device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of each completion given its prompt (with grad).

    Returns (logps [rows, T], mask [rows, T]) aligned on completion tokens, right-padded.
    """
    rows = [p + c for p, c in zip(prompt_ids, completion_ids)]
    width = max(map(len, rows))
    n = len(rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    for i, r in enumerate(rows):  # left padding, as in generation
        ids[i, width - len(r):] = torch.tensor(r)
        attn[i, width - len(r):] = 1
    ids, attn = ids.to(device), attn.to(device)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=attn, position_ids=pos).logits[:, :-1].float()
    logp_all = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    tmax = max(1, max(map(len, completion_ids)))
    logps = torch.zeros((n, tmax), device=logits.device)
    mask = torch.zeros((n, tmax), device=logits.device)
    for i, c in enumerate(completion_ids):
        if c:
            logps[i, : len(c)] = logp_all[i, width - 1 - len(c):]
            mask[i, : len(c)] = 1.0
    return logps, mask
