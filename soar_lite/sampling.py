"""Batched generation with a KV cache and per-row seeds, plus completion log-probabilities.

Per-row seeds: the random number used to sample row i's t-th token is a hash of (row seed, t), not
a draw from a shared generator, so a problem's samples do not depend on which other problems share
its batch (inverse-CDF sampling with one counter-based uniform per row and step). Greedy decoding is
temperature 0.

Works for any Hugging Face causal LM (left padding, explicit position ids); the tiny model and a
real LLM take the same path. Only the logits that are used are computed (`logits_to_keep`): the last
position while generating, the completion positions when scoring -- on a 128k-token vocabulary the full
prompt logits of a 256-row batch would not fit in GPU memory.

`generate_ids_hf` is the alternative sampler (model.sampler=generate, the default on unsloth): the model's
own `generate`, seeded per batch; its samples then depend on which rows share a batch, the one
reproducibility property the custom sampler has and it lacks. Greedy decoding is identical (tested).
"""
from __future__ import annotations

import hashlib
import inspect

import numpy as np
import torch

from .profile import span

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
    """Token ids of each prompt with exactly one BOS: a prompt rendered through a chat template already starts with
    the BOS text (Llama-3's <|begin_of_text|>), so the tokenizer must not add a second one (REVIEW P3)."""
    bos = getattr(tokenizer, "bos_token", None)
    return [tokenizer(p, add_special_tokens=not (bos and p.startswith(bos))).input_ids for p in prompts]


def _keeps_logits(model) -> bool:
    """Whether the (base) model's forward takes `logits_to_keep` (transformers >= 4.50 causal LMs, unsloth)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def left_pad(rows: list[list[int]], pad: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, attention mask, position ids) of left-padded rows."""
    n, width = len(rows), max(map(len, rows))
    ids = torch.full((n, width), pad, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        attn[i, width - len(r):] = 1
    ids, attn = ids.to(device), attn.to(device)
    return ids, attn, (attn.cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def generate_ids(model, tokenizer, prompt_ids: list[list[int]], seeds: list[int], temperature: float,
                 max_new_tokens: int, device: str = "cpu", compact: bool = True) -> list[list[int]]:
    """Sample one completion per row; returns completion token ids, EOS included when produced.

    `compact`: a row that has produced EOS leaves the running batch (and its KV cache), so the remaining steps
    compute only the rows still going; each row's draws depend on its own seed and step alone, so the samples
    are those of the uncompacted loop (tested)."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    n = len(prompt_ids)
    ids, attn, pos = left_pad(prompt_ids, pad, device)
    keep = {"logits_to_keep": 1} if _keeps_logits(model) else {}
    seeds_np = np.array(seeds, dtype=np.uint64)
    out = [[] for _ in range(n)]
    done = np.zeros(n, dtype=bool)
    rows = np.arange(n)  # the original row of each row in the running batch
    past = None
    cur_ids, cur_pos = ids, pos
    for t in range(max_new_tokens):
        res = model(input_ids=cur_ids, attention_mask=attn, position_ids=cur_pos, past_key_values=past, use_cache=True,
                    **keep)
        past = res.past_key_values
        logits = res.logits[:, -1, :].float()
        if temperature <= 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            cdf = probs.cumsum(-1)
            u = torch.from_numpy(_uniforms(seeds_np, t)).to(cdf) * cdf[:, -1]
            nxt = torch.searchsorted(cdf, u.unsqueeze(-1)).squeeze(-1).clamp(max=probs.shape[-1] - 1)
        for r, tok in zip(rows, nxt.tolist()):
            if not done[r]:
                out[r].append(tok)
                done[r] = tok == eos
        if done.all():
            break
        if compact and done[rows].any():
            going = ~done[rows]
            sel = torch.from_numpy(np.nonzero(going)[0]).to(attn.device)
            past.batch_select_indices(sel)
            rows, seeds_np = rows[going], seeds_np[going]
            nxt, attn, cur_pos = nxt[sel], attn[sel], cur_pos[sel]
        cur_ids = nxt.unsqueeze(-1)
        cur_pos = cur_pos[:, -1:] + 1
        attn = torch.cat([attn, torch.ones((len(rows), 1), dtype=attn.dtype, device=attn.device)], dim=1)
    return out


@torch.no_grad()
def generate_ids_hf(model, tokenizer, prompt_ids: list[list[int]], seeds: list[int], temperature: float,
                    max_new_tokens: int, device: str = "cpu") -> list[list[int]]:
    """Like `generate_ids`, through `model.generate` (pure sampling: no top-k/top-p, no penalties)."""
    from transformers import GenerationConfig

    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    ids, attn, _ = left_pad(prompt_ids, pad, device)
    greedy = temperature <= 0
    # a fresh config, so a checkpoint's generation_config.json (e.g. top_p=0.9) cannot change the sampler
    # top_k=0 / top_p=1.0 spelled out: None falls back to the library default top_k=50 (measured)
    mode = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
    gen_cfg = GenerationConfig(**mode, max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=eos)
    torch.manual_seed(int(np.bitwise_xor.reduce(np.array(seeds, dtype=np.uint64))) & 0x7FFFFFFFFFFFFFFF)
    out = model.generate(input_ids=ids, attention_mask=attn, generation_config=gen_cfg)
    completions = []
    for row in out[:, ids.shape[1]:].tolist():
        cut = row.index(eos) + 1 if eos in row else len(row)
        completions.append(row[:cut])
    return completions


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
    if getattr(policy, "sampler", "custom") == "generate":
        generate = generate_ids_hf
    else:
        def generate(*args):
            return generate_ids(*args, compact=getattr(policy, "compact_rows", False))
    policy.for_inference()
    with policy.merged():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            with span() as timed:
                comp = generate(policy.model, tok, [enc[i] for i, _ in chunk],
                                [row_seed(seed, keys[i], j) for i, j in chunk], temperature, max_new_tokens, policy.device)
                timed.done("gen", sum(map(len, comp)), len(chunk), sum(len(enc[i]) for i, _ in chunk))
            for (i, j), c in zip(chunk, comp):
                ids_out[i][j] = c
                texts[i][j] = decode(tok, c)
    return texts, ids_out


def length_sorted_chunks(lengths: list[int], size: int) -> list[np.ndarray]:
    """Row indices in micro-batches of `size` rows of similar length (longest first), so each micro-batch pads
    to its own longest row; `size` <= 0 or >= len: one chunk in the original order; no rows: no chunks."""
    n = len(lengths)
    if n == 0:
        return []
    if size <= 0 or size >= n:
        return [np.arange(n)]
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[s:s + size] for s in range(0, n, size)]


def completion_logprobs(model, prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int,
                        device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of each completion given its prompt (with grad).

    Returns (logps [rows, T], mask [rows, T]) aligned on completion tokens, right-padded.
    """
    from trl.trainer.utils import selective_log_softmax

    rows = [p + c for p, c in zip(prompt_ids, completion_ids)]
    n, width = len(rows), max(map(len, rows))
    ids, attn, pos = left_pad(rows, pad_id, device)  # left padding, as in generation
    tmax = max(1, max(map(len, completion_ids)))
    keep = min(width, tmax + 1)  # logits at the last tmax+1 positions predict every completion token
    extra = {"logits_to_keep": keep} if _keeps_logits(model) else {}
    logits = model(input_ids=ids, attention_mask=attn, position_ids=pos, **extra).logits[:, -keep:]
    targets = ids[:, width - keep + 1:]
    # log p(target) = logit(target) - logsumexp(logits), without a second vocabulary-sized tensor: TRL's
    # selective_log_softmax, the log-probability step of its GRPO/RLOO trainers (a fused, memory-saving kernel on
    # CUDA; on CPU the same gather - logsumexp, row by row, tests/test_sampling.py checks it against the plain form)
    logp_all = selective_log_softmax(logits[:, :-1].float(), targets)
    logps = torch.zeros((n, tmax), device=logits.device)
    mask = torch.zeros((n, tmax), device=logits.device)
    for i, c in enumerate(completion_ids):
        if c:
            logps[i, : len(c)] = logp_all[i, keep - 1 - len(c):]
            mask[i, : len(c)] = 1.0
    return logps, mask
