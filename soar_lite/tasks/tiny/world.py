"""The tiny world: chained lookups through facts the model knows with *medium confidence*.

A seeded permutation f of 0..N-1 (N = 200, numbers written with 3 digits, one token each). Every input x is a
*piece* f(x) of one of three kinds, laid out in runs along the cycles of f:

- common:    always written correctly in the pretraining corpus (the model knows it);
- shaky:     written correctly with probability q_shaky (0.25), otherwise a uniformly random wrong
             value: the true value is the most likely one (greedy gets it), sampling at T=1 gets it
             ~25% of the time;
- confused:  written correctly with probability q_confused (0.20), a fixed wrong *distractor* with
             probability p_distractor (0.45), else uniform: greedy picks the distractor.

A line is a worked chain ``f^3(123)=456>789>012``: the question ``f^3(123)``, a scratchpad and the
final value ``012``. Difficulty is the number of uncertain (shaky or confused) pieces on the true
path. *Hard* problems are chains of depth 5-8 through >= 5 uncertain pieces, 1-2 of them confused:
at T=1 they succeed ~0.25^4 * 0.2 ~ 8e-4 of the time or less (0/128 twice for most), greedy fails on
the confused piece. They fail through *unreliable composition of knowledge the model has*, which RL sharpens
(the design principle of the tiny-world issue): an RL step on a short chain through a shaky or
confused piece with the right answer moves that piece towards the truth, and every hard problem
through it gains. The model's own answers to short questions are right more often than any single
wrong answer for shaky pieces, and less often than the distractor for confused ones, so
self-written stepping stones carry signal whose sign a grounded teacher reward must learn to pick.

Relation to the paper: the hard set is selected exactly as in App. B.5 (fail@128 at T=1), the
verifier is exact comparison of the final value (the tiny world's Math-Verify), the teacher prompt
is the empty prompt (the model writes one worked line: question, then its own answer; the tiny
world's analogue of App. B.1), and the format check mirrors App. B.2 (a question, '=', an answer
whose last value parses).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..base import Problem

COMMON, SHAKY, CONFUSED = 0, 1, 2
KIND_NAMES = {COMMON: "common", SHAKY: "shaky", CONFUSED: "confused"}

_QUESTION = re.compile(r"^f\^([0-9])\(([0-9]{3})\)$")
_CHAIN = re.compile(r"^[0-9]{3}(>[0-9]{3})*$")
_LAST_VALUE = re.compile(r"([0-9]{3})$")
_DEPTH_INPUT = re.compile(r"^f\^([0-9]*)\(([0-9]*)\)$")


@dataclass(frozen=True)
class TinyWorldSpec:
    """Parameters of the world. Changing any of them changes the shipped model's world."""

    n_values: int = 200
    seed: int = 0
    max_depth: int = 8
    common_run: tuple[int, int] = (2, 6)
    uncertain_run: tuple[int, int] = (5, 9)
    confused_share: float = 0.3
    q_shaky: float = 0.25
    q_confused: float = 0.20
    p_distractor: float = 0.45
    hard_min_depth: int = 5
    hard_min_uncertain: int = 5
    hard_confused: tuple[int, int] = (1, 2)


class TinyWorld:
    """The world's ground truth: f, piece kinds, distractors, corpus sampling and problem levels."""

    def __init__(self, spec: TinyWorldSpec = TinyWorldSpec()):
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        n = spec.n_values
        self.f = rng.permutation(n)
        self.kind = self._lay_out_kinds(rng)
        # a confused piece's distractor: a fixed wrong value
        shift = rng.integers(1, n, size=n)
        self.distractor = (self.f + shift) % n

    def _lay_out_kinds(self, rng: np.random.Generator) -> np.ndarray:
        """Alternate runs of common and uncertain pieces along each cycle of f, so that long
        chains through many uncertain pieces exist (the hard set) next to reliable ones."""
        n, spec = self.spec.n_values, self.spec
        kind = np.zeros(n, dtype=np.int64)
        seen = np.zeros(n, dtype=bool)
        for start in range(n):
            if seen[start]:
                continue
            cycle, x = [], start
            while not seen[x]:
                seen[x] = True
                cycle.append(x)
                x = self.f[x]
            i, uncertain = 0, bool(rng.random() < 0.5)
            while i < len(cycle):
                lo, hi = spec.uncertain_run if uncertain else spec.common_run
                length = int(rng.integers(lo, hi, endpoint=True))
                for x in cycle[i : i + length]:
                    if uncertain:
                        kind[x] = CONFUSED if rng.random() < spec.confused_share else SHAKY
                i += length
                uncertain = not uncertain
        return kind

    # ---- ground truth -------------------------------------------------------------------
    def path(self, x: int, depth: int) -> list[int]:
        """The inputs visited by f^depth(x): x, f(x), ..., f^(depth-1)(x)."""
        out, v = [], x
        for _ in range(depth):
            out.append(v)
            v = int(self.f[v])
        return out

    def chain(self, x: int, depth: int) -> list[int]:
        """True values f(x), f^2(x), ..., f^depth(x)."""
        return [int(self.f[v]) for v in self.path(x, depth)]

    def n_uncertain(self, x: int, depth: int) -> tuple[int, int]:
        """(uncertain pieces, confused pieces) on the true path of f^depth(x)."""
        kinds = self.kind[self.path(x, depth)]
        return int((kinds != COMMON).sum()), int((kinds == CONFUSED).sum())

    def piece_distribution(self, x: int) -> np.ndarray:
        """The corpus's distribution of the value written for f(x): what pretraining teaches."""
        n, s = self.spec.n_values, self.spec
        p = np.zeros(n)
        k = self.kind[x]
        if k == COMMON:
            p[self.f[x]] = 1.0
            return p
        correct = s.q_shaky if k == SHAKY else s.q_confused
        distract = 0.0 if k == SHAKY else s.p_distractor
        rest = 1.0 - correct - distract
        p[:] = rest / (n - 2 if distract else n - 1)
        p[self.f[x]] = correct
        if distract:
            p[self.distractor[x]] = distract
        return p

    def is_hard_candidate(self, x: int, depth: int) -> bool:
        s = self.spec
        if depth < s.hard_min_depth or depth > s.max_depth:
            return False
        u, c = self.n_uncertain(x, depth)
        return u >= s.hard_min_uncertain and s.hard_confused[0] <= c <= s.hard_confused[1]

    @cached_property
    def hard_candidates(self) -> list[tuple[int, int]]:
        return [
            (x, d)
            for x in range(self.spec.n_values)
            for d in range(self.spec.hard_min_depth, self.spec.max_depth + 1)
            if self.is_hard_candidate(x, d)
        ]

    @cached_property
    def _hard_prefix_starts(self) -> dict[int, int]:
        """start x -> smallest depth at which a chain from x is a hard candidate."""
        out: dict[int, int] = {}
        for x, d in self.hard_candidates:
            out[x] = min(d, out.get(x, d))
        return out

    def is_subchain(self, inner: Problem, outer: Problem) -> bool:
        """Whether `inner`'s path is a contiguous piece of `outer`'s (f^e(y) inside f^d(x))."""
        y, e = inner.meta["x"], inner.meta["depth"]
        path = self.path(outer.meta["x"], outer.meta["depth"])
        return y in path and path.index(y) + e <= len(path)

    def touches_hard_candidate(self, x: int, depth: int) -> bool:
        """True when f^depth(x) is, or extends, a hard candidate: such lines never enter any
        training data (pretraining corpus, stepping stones), so no hard problem is ever trained on."""
        d0 = self._hard_prefix_starts.get(x)
        return d0 is not None and depth >= d0

    # ---- text ---------------------------------------------------------------------------
    @staticmethod
    def question(x: int, depth: int) -> str:
        return f"f^{depth}({x:03d})"

    @staticmethod
    def format_chain(values: list[int]) -> str:
        return ">".join(f"{v:03d}" for v in values)

    def level(self, x: int, depth: int) -> str:
        u, _ = self.n_uncertain(x, depth)
        return f"u{u}"

    def problem(self, x: int, depth: int) -> Problem:
        u, c = self.n_uncertain(x, depth)
        return Problem(
            id=f"{x:03d}-{depth}",
            question=self.question(x, depth),
            answer=self.format_chain(self.chain(x, depth)),
            level=f"u{u}",
            meta={"x": x, "depth": depth, "uncertain": u, "confused": c},
        )

    # ---- corpus ---------------------------------------------------------------------------
    def sample_line(self, rng: np.random.Generator, depth_weights: np.ndarray) -> str:
        """One pretraining line: a worked chain whose uncertain pieces are written with noise.
        After a wrong value the chain continues from that value (f applied to what was written)."""
        while True:
            depth = int(rng.choice(len(depth_weights), p=depth_weights)) + 1
            x = int(rng.integers(self.spec.n_values))
            if not self.touches_hard_candidate(x, depth):
                break
        values, v = [], x
        for _ in range(depth):
            v = self._noisy_value(v, rng)
            values.append(v)
        return f"{self.question(x, depth)}={self.format_chain(values)}"

    def _noisy_value(self, x: int, rng: np.random.Generator) -> int:
        s, k, n = self.spec, self.kind[x], self.spec.n_values
        if k == COMMON:
            return int(self.f[x])
        u = rng.random()
        correct = s.q_shaky if k == SHAKY else s.q_confused
        if u < correct:
            return int(self.f[x])
        if k == CONFUSED and u < correct + s.p_distractor:
            return int(self.distractor[x])
        while True:
            w = int(rng.integers(n))
            if w != self.f[x] and (k == SHAKY or w != self.distractor[x]):
                return w

    # ---- stepping stones (the oracle curriculum of the "Curated" arm) ------------------------
    def stepping_stones(self, max_depth: int = 2) -> list[Problem]:
        """Every chain of depth <= max_depth through exactly one uncertain piece, correct answers,
        minus anything touching a hard candidate."""
        out = []
        for x in range(self.spec.n_values):
            for d in range(1, max_depth + 1):
                if self.touches_hard_candidate(x, d):
                    continue
                u, _ = self.n_uncertain(x, d)
                if u == 1:
                    out.append(self.problem(x, d))
        return out

    def easy_problems(self, max_depth: int = 3) -> list[Problem]:
        """Chains through common pieces only (level u0)."""
        return [
            self.problem(x, d)
            for x in range(self.spec.n_values)
            for d in range(1, max_depth + 1)
            if self.n_uncertain(x, d)[0] == 0
        ]
