"""Rebuild the shipped tiny model: a tokenizer with one token per 3-digit value and per other character, and a
LlamaForCausalLM pretrained on the world's corpus (`make tiny-model`).

    python -m soar_lite.tasks.tiny.pretrain --out soar_lite/tasks/tiny/model [--steps 2500] [--seed 0]

Deterministic for a given seed and torch version on CPU (one thread). The corpus is sampled on the fly
from `TinyWorld.sample_line`; lines that are or extend a hard candidate are never emitted, so no
hard problem is ever seen with any answer.

The model is a LlamaConfig (not Qwen2Config: AutoTokenizer would then load Qwen's byte-level
tokenizer and drop characters, measured on this stack), saved with `save_pretrained` together with a
`tokenizers` WordLevel vocabulary (`build_tokenizer`).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from .world import TinyWorld, TinyWorldSpec

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
CHARS = list("0123456789f^()=>")
# depths 1..8: short chains dominate (they teach the facts), long ones teach composition
DEPTH_WEIGHTS = np.array([5.0, 2.0, 1.5, 1.2, 1.0, 1.0, 1.0, 1.0])


def build_tokenizer(n_values: int = TinyWorldSpec().n_values):
    """Characters, plus one token per 3-digit value of the world (000 .. n_values-1).

    One token per value makes a fact f(x) a token-to-token association, which a 1M-parameter model
    memorises in minutes; with one token per digit the same model had learnt only ~23% of the common
    facts after 800 steps (measured, see README). Every other character is its own token.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    numbers = [f"{v:03d}" for v in range(n_values)]
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS + numbers)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[0-9]{3}|."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        padding_side="left", model_max_length=64,
    )


def build_model(tokenizer, hidden: int = 128, layers: int = 4, heads: int = 4, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=64, rope_theta=10000.0, tie_word_embeddings=True,
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


def pretrain(out: Path, steps: int, batch: int, lr: float, seed: int, spec: TinyWorldSpec, log_every: int = 100,
             threads: int = 2, save_every: int = 0, hidden: int = 128, layers: int = 4, heads: int = 4,
             device: str = "cpu") -> dict:
    """Pretrain on the world's corpus. The defaults build the shipped model; larger sizes (scripts/gpu_smoke.py's
    ~100M model) take the same recipe on `device`."""
    torch.set_num_threads(threads)  # pretraining runs alone: both cores
    world = TinyWorld(spec)
    tokenizer = build_tokenizer(spec.n_values)
    model = build_model(tokenizer, hidden=hidden, layers=layers, heads=heads, seed=seed).to(device)
    # the named exception to soar_lite.seeds (this builds the world before any run): kept so that a rebuild
    # reproduces the shipped weights
    rng = np.random.default_rng(seed + 1)
    weights = DEPTH_WEIGHTS[: spec.max_depth] / DEPTH_WEIGHTS[: spec.max_depth].sum()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = min(200, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    model.train()
    t0, log = time.time(), []
    for step in range(steps):
        ids, mask = encode_lines(tokenizer, [world.sample_line(rng, weights) for _ in range(batch)])
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
    info = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "seconds": round(time.time() - t0, 1),
            "parameters": sum(p.numel() for p in model.parameters()), "world": spec.__dict__, "log": log}
    (out / "pretrain_info.json").write_text(json.dumps(info, indent=1, default=list))
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "model")
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--save-every", type=int, default=0, help="also save intermediate models (debugging)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    info = pretrain(a.out, a.steps, a.batch, a.lr, a.seed, TinyWorldSpec(), threads=a.threads, save_every=a.save_every)
    print(f"saved {a.out} ({info['parameters']} parameters) in {info['seconds']} s")


if __name__ == "__main__":
    main()
