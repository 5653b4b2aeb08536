"""Rebuild the shipped tiny model: a tokenizer with one token per 3-digit value and per other character, and a
LlamaForCausalLM pretrained on the world's corpus (`make tiny-model`).

    python -m soar_lite.tasks.tiny.pretrain --out soar_lite/tasks/tiny/model [--steps 2500] [--seed 0]

Deterministic for a given seed and torch version on CPU (one thread). The corpus is sampled on the fly
from `TinyWorld.sample_line`; lines that are or extend a hard candidate are never emitted, so no
hard problem is ever seen with any answer.

The tokenizer, the model (a LlamaConfig) and the training loop are the package's helper for a world's model
(soar_lite.tasks.pretrain, which says what was measured to matter); this file gives it the tiny world's vocabulary
and corpus.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..pretrain import SPECIALS, build_model, encode_lines, word_level_tokenizer  # noqa: F401 (re-exported)
from ..pretrain import pretrain as pretrain_model
from .world import TinyWorld, TinyWorldSpec

CHARS = list("0123456789f^()=>")
# depths 1..9: short chains dominate (they teach the facts), long ones teach composition
DEPTH_WEIGHTS = np.array([5.0, 2.0, 1.5, 1.2, 1.0, 1.0, 1.0, 1.0, 1.0])


def build_tokenizer(n_values: int = TinyWorldSpec().n_values):
    """Characters, plus one token per 3-digit value of the world (000 .. n_values-1).

    One token per value makes a fact f(x) a token-to-token association, which a 1M-parameter model
    memorises in minutes; with one token per digit the same model had learnt only ~23% of the common
    facts after 800 steps (measured, see docs/tiny-world.md). Every other character is its own token.
    """
    return word_level_tokenizer(CHARS + [f"{v:03d}" for v in range(n_values)], pattern=r"[0-9]{3}|.")


def pretrain(out: Path, steps: int, batch: int, lr: float, seed: int, spec: TinyWorldSpec, log_every: int = 100,
             threads: int = 2, save_every: int = 0, hidden: int = 128, layers: int = 4, heads: int = 4,
             device: str = "cpu") -> dict:
    """Pretrain on the world's corpus with the package's helper (soar_lite.tasks.pretrain). The defaults build the
    shipped model; larger sizes (scripts/gpu_smoke.py's ~100M model) take the same recipe on `device`."""
    world = TinyWorld(spec)
    weights = DEPTH_WEIGHTS[: spec.max_depth] / DEPTH_WEIGHTS[: spec.max_depth].sum()
    # the named exception to soar_lite.seeds (this builds the world before any run): the corpus stream is seeded
    # from seed + 1 inside the helper, as it always was, so that a rebuild reproduces the shipped weights
    return pretrain_model(out, build_tokenizer(spec.n_values), lambda rng, n: [world.sample_line(rng, weights)
                                                                               for _ in range(n)],
                          steps=steps, batch=batch, lr=lr, seed=seed, threads=threads, hidden=hidden, layers=layers,
                          heads=heads, device=device, log_every=log_every, save_every=save_every,
                          info={"world": spec.__dict__})


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
