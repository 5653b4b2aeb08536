"""Token and time tallies for the cost model (cost.py): what a piece of work generated, trained on and
scored, and how long each took. Not in the paper; measurement only.

    with tally() as t:
        trainer.outer_step()
    t.gen_tokens / t.gen_s   # generation throughput of this step, tokens/s

Tallies nest (every open tally receives each record). On a GPU the recorded spans end at a host sync
(`.tolist()` while sampling, `float(loss)` after a step), so their seconds are device time too.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

_OPEN: list["Tally"] = []


@dataclass
class Tally:
    gen_rows: int = 0  # completions sampled
    gen_prompt_tokens: int = 0  # prefill tokens
    gen_tokens: int = 0  # tokens generated (completion lengths)
    gen_s: float = 0.0
    train_rows: int = 0  # rollouts in policy-gradient steps
    train_tokens: int = 0  # prompt + completion tokens through forward + backward (+ reference forward)
    train_s: float = 0.0
    score_tokens: int = 0  # tokens through no-grad scoring forwards (log-likelihood rewards)
    score_s: float = 0.0

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@contextmanager
def tally():
    t = Tally()
    _OPEN.append(t)
    try:
        yield t
    finally:
        _OPEN.remove(t)


def record(kind: str, seconds: float, tokens: int, rows: int = 0, prompt_tokens: int = 0) -> None:
    """Add one span of work of `kind` (gen | train | score) to every open tally."""
    for t in _OPEN:
        setattr(t, f"{kind}_s", getattr(t, f"{kind}_s") + seconds)
        setattr(t, f"{kind}_tokens", getattr(t, f"{kind}_tokens") + tokens)
        if kind in ("gen", "train"):
            setattr(t, f"{kind}_rows", getattr(t, f"{kind}_rows") + rows)
        if prompt_tokens:
            t.gen_prompt_tokens += prompt_tokens


class span:
    """`with span() as s: ...; s.done(kind, tokens, rows)` records the block's wall time."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        return False

    def done(self, kind: str, tokens: int, rows: int = 0, prompt_tokens: int = 0) -> None:
        record(kind, time.perf_counter() - self.t0, tokens, rows, prompt_tokens)
