"""A world's own model, built by the package: corpus lines in, a tokenizer and a small Llama-architecture causal LM out,
deterministic for a seed on CPU. The tiny world's shipped model is built with it (tasks/tiny/pretrain.py), and so is
examples/add_world's; a world of your own can use it the same way, or name any Hugging Face causal LM as model.path.

    from soar_lite.tasks.pretrain import pretrain, word_level_tokenizer
    tok = word_level_tokenizer(["+", "="] + [f"{v:02d}" for v in range(20)], pattern=r"[0-9]{2}|.")
    pretrain(Path("my_world/model"), tok, lambda rng, n: [my_line(rng) for _ in range(n)], steps=1500)

What was measured to matter (the tiny world, docs/tiny-world.md):
- **one token per value** ("042", not "0", "4", "2"): a fact f(x) is then a token-to-token association that a 1M-parameter
  model memorises in minutes; with one token per digit the same model had learnt ~23% of the common facts after 800
  steps;
- **a LlamaConfig**, saved with `save_pretrained` beside a `tokenizers` WordLevel vocabulary: with a Qwen2Config,
  AutoTokenizer loaded Qwen's byte-level tokenizer and dropped characters;
- **each step's inputs as their own tokens** (a researcher's modular-exponentiation world learnt only once every
  intermediate value of a worked chain was a token of its own; two of three earlier attempts failed);
- short lines dominating the corpus (they teach the facts), a few long ones (they teach composition); nothing that
  is or extends a hard problem (so no hard problem is ever seen with an answer).
Nothing here knows a world: the caller passes the vocabulary and a line sampler.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def word_level_tokenizer(tokens: list[str], pattern: str, max_length: int = 64):
    """A fast tokenizer whose vocabulary is SPECIALS + `tokens`, splitting text by the regex `pattern` (each match
    is one token; e.g. r"[0-9]{3}|." : three-digit values, else single characters); BOS is prepended, padding is
    on the left (as generation pads)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(tokens))}
    if len(vocab) != len(SPECIALS) + len(tokens):
        raise ValueError("word_level_tokenizer: a token is listed twice")
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        padding_side="left", model_max_length=max_length,
    )


def build_model(tokenizer, hidden: int = 128, layers: int = 4, heads: int = 4, seed: int = 0,
                max_positions: int = 64):
    """A LlamaForCausalLM sized for the tokenizer, initialised from `seed` (tied embeddings)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max_positions, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def encode_lines(tokenizer, lines: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids with BOS ... EOS and the loss mask (no loss on padding)."""
    rows = [tokenizer(s).input_ids + [tokenizer.eos_token_id] for s in lines]  # BOS is added by the tokenizer
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def check_vocabulary(tokenizer, lines: list[str]) -> None:
    """Refuse a corpus the tokenizer cannot spell (an <unk> token), naming the first such line."""
    unk = tokenizer.unk_token_id
    for line in lines:
        if unk in tokenizer(line).input_ids:
            raise ValueError(f"pretrain: the line {line!r} holds text outside the tokenizer's vocabulary")


def pretrain(out: Path, tokenizer, sample_lines: Callable[[np.random.Generator, int], list[str]], steps: int,
             batch: int = 96, lr: float = 3e-3, seed: int = 0, threads: int = 2, hidden: int = 128, layers: int = 4,
             heads: int = 4, device: str = "cpu", log_every: int = 100, save_every: int = 0,
             info: dict | None = None) -> dict:
    """Pretrain a fresh `build_model` on `sample_lines(rng, batch)` (a batch of corpus lines per step; rng seeded
    from seed + 1) with AdamW, warm-up and a cosine schedule; save model, tokenizer and pretrain_info.json (`info`
    added) to `out`. Deterministic for a seed on CPU with one thread."""
    torch.set_num_threads(threads)
    model = build_model(tokenizer, hidden=hidden, layers=layers, heads=heads, seed=seed).to(device)
    rng = np.random.default_rng(seed + 1)  # the named exception to soar_lite.seeds (no run exists yet): as it always was
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = min(200, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup)) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    model.train()
    t0, log = time.time(), []
    for step in range(steps):
        lines = sample_lines(rng, batch)
        if step == 0:
            check_vocabulary(tokenizer, lines)
        ids, mask = encode_lines(tokenizer, lines)
        ids, mask = ids.to(device), mask.to(device)
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            log.append({"step": step, "loss": float(loss.detach()), "seconds": round(time.time() - t0, 1)})
            print(json.dumps(log[-1]), flush=True)
        if save_every and step and step % save_every == 0:
            model.save_pretrained(out / f"step{step}")
            tokenizer.save_pretrained(out / f"step{step}")
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.to("cpu").save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "seconds": round(time.time() - t0, 1),
              "parameters": sum(p.numel() for p in model.parameters()), **(info or {}), "log": log}
    (out / "pretrain_info.json").write_text(json.dumps(record, indent=1, default=list))
    return record
