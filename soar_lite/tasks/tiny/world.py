"""The tiny world: chained lookups through facts the model knows with *low confidence*, hard by design.

A seeded permutation f of 0..N-1 (N = 256, numbers written with 3 digits, one token each). Every input x is a
*piece* f(x) of one of four kinds, laid out in runs along the cycles of f (uncertain runs of 9-16 pieces, 20% of
them confused; common runs of 1-4):

- common:    always written correctly in the pretraining corpus (the model knows it);
- shaky:     written correctly with probability q_shaky (0.15), otherwise a uniformly random wrong value: greedy
             gets it, sampling at T=1 gets it ~15% of the time;
- confused:  written correctly with probability q_confused (0.20), a fixed wrong *distractor* with probability
             p_distractor (0.45), else uniform: greedy picks the distractor;
- undefined: a hole (half of the common pieces): f has no value here, the corpus writes a uniformly random one. A
             question whose path passes through a hole is *ill posed* (`defined`, `TinyTask.exact_label`): the model
             writes such questions as a teacher as readily as others, so well-posedness is an axis (paper Finding 3).

A line is a worked chain ``f^3(123)=456>789>012``: the question ``f^3(123)``, a scratchpad and the final value
``012``; the verifier checks the whole chain (`TinyTask.is_correct`), so a wrong chain that lands on the right final
value -- a 1-in-256 guess -- is no success.

*Hard by design* (`is_hard_candidate`): a well-posed chain of depth 6-9 through >= 1 confused piece (greedy fails)
whose on-path success probability at T=1, the product of the corpus's per-piece accuracies along the path
(`on_path_probability`; the product model, which matched sampling on the earlier world: 27 on-path successes
observed, 26.9 predicted, shared/TINY_WORLD.md), is <= 1e-6 (sampling fails): 8 or more uncertain pieces. The
probe's pool is the shortest such chain from each start: 105 problems (`hard_candidates` says why one per start). A Hard-Only run draws ~6e4 samples in 480 steps, so it expects < 0.06 on-path successes: direct RL has no signal (the premise of
the paper's Finding 1), which report 02's premise gate measures rather than assumes (results/tiny-gate; docs/tiny-world.md
"The tiny world" quotes its tables). The earlier world (N = 200,
q 0.25 / 0.20, >= 5 uncertain pieces with 1-2 confused, final-value verifier) failed that: 3e-3 successes per sample,
19 in 20 of them lucky final values, 2e-4 on path, and Hard-Only trained 4x longer gained +60 points of pass@32.

They fail through *unreliable composition of knowledge the model has*, which RL sharpens: an RL step on a short
chain through a shaky or confused piece with the right answer moves that piece towards the truth, and every hard
problem through it gains (the stepping stones, `stepping_stones`). The model's own answers to short questions are
right more often than any single wrong answer for shaky pieces (0.15 vs 0.0033), and less often than the distractor
for confused ones, so self-written stepping stones carry signal whose sign a grounded teacher reward must learn to
pick.

How the values were chosen (pilots on the hard candidates, before any probe or split; the measured values of the
shipped model are report 02's): N = 256 and half the common pieces as holes give ~15% ill-posed questions at depth
<= 3 while keeping 184 hard chains (105 starts); with every hard chain in the pool, the split's groups were whole
runs of f (25 groups of 184) and only 6% of hard-test's facts lay on hard-train paths (the earlier world: 37%); with
the shortest chain per start, 80%; the first design (q_confused 0.10, p_distractor 0.5, >= 2 confused pieces,
uncertain runs 7-12) had oracle stones reach only 0.16 hard pass@32 after 360 RLOO steps: its confused pieces moved
0.08 -> 0.15 at T=1 in 240 steps while shaky ones moved 0.11 -> 0.81, so q_confused went back to the earlier world's
0.20 (where confused pieces did learn from stones) and one confused piece suffices, with more shaky ones to keep the
on-path bound.

Relation to the paper: the hard set is selected exactly as in App. B.5 (fail@128 at T=1; here it keeps nearly every
candidate, which is the point), the verifier is exact comparison of the worked chain (the tiny world's Math-Verify),
the teacher prompt is the empty prompt (the model writes one worked line: question, then its own answer; the tiny
world's analogue of App. B.1), and the format check mirrors App. B.2 (a question, '=', an answer whose last value
parses).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..base import Problem

COMMON, SHAKY, CONFUSED, UNDEFINED = 0, 1, 2, 3
KIND_NAMES = {COMMON: "common", SHAKY: "shaky", CONFUSED: "confused", UNDEFINED: "undefined"}
UNCERTAIN = (SHAKY, CONFUSED)

_QUESTION = re.compile(r"^f\^([0-9])\(([0-9]{3})\)$")
_CHAIN = re.compile(r"^[0-9]{3}(>[0-9]{3})*$")
_LAST_VALUE = re.compile(r"([0-9]{3})$")
_DEPTH_INPUT = re.compile(r"^f\^([0-9]*)\(([0-9]*)\)$")


@dataclass(frozen=True)
class TinyWorldSpec:
    """Parameters of the world. Changing any of them changes the shipped model's world."""

    n_values: int = 256
    seed: int = 0
    max_depth: int = 9
    common_run: tuple[int, int] = (1, 4)
    uncertain_run: tuple[int, int] = (9, 16)
    confused_share: float = 0.2
    q_shaky: float = 0.15
    q_confused: float = 0.20
    p_distractor: float = 0.45
    undefined_share: float = 0.5  # of the common pieces: holes, where f has no value (ill-posed questions)
    hard_min_depth: int = 6
    hard_min_confused: int = 1
    hard_max_on_path: float = 1e-6  # the product of the corpus's q over the path: what T=1 sampling succeeds


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
        # holes: a seeded share of the common pieces has no value in this world (drawn after everything above, so
        # that f, the kinds and the distractors do not depend on undefined_share)
        common = np.flatnonzero(self.kind == COMMON)
        holes = rng.choice(common, size=round(spec.undefined_share * len(common)), replace=False)
        self.kind[holes] = UNDEFINED

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
        return int(((kinds == SHAKY) | (kinds == CONFUSED)).sum()), int((kinds == CONFUSED).sum())

    def defined(self, x: int, depth: int) -> bool:
        """Whether f^depth(x) has an answer: no input on its path is a hole. A question through a hole is ill posed."""
        return not (self.kind[self.path(x, depth)] == UNDEFINED).any()

    def piece_accuracy_of_corpus(self) -> np.ndarray:
        """Per input, the probability that the corpus writes f(x) right (1 common, q_shaky, q_confused; 0 for a hole,
        which has no right value): what sampling at T=1 reproduces after pretraining (measured in report 02)."""
        s = self.spec
        q = np.array([1.0, s.q_shaky, s.q_confused, 0.0])
        return q[self.kind]

    def on_path_probability(self, x: int, depth: int, accuracy: np.ndarray | None = None) -> float:
        """The product model: the chance that one T=1 sample writes every value of f^depth(x) right, from per-fact
        accuracies (`accuracy`, e.g. measured ones; default the corpus's). Matches sampling (TINY_WORLD.md: 27
        on-path successes observed, 26.9 predicted)."""
        acc = self.piece_accuracy_of_corpus() if accuracy is None else np.asarray(accuracy, dtype=float)
        return float(np.prod(acc[self.path(x, depth)]))

    def piece_distribution(self, x: int) -> np.ndarray:
        """The corpus's distribution of the value written for f(x): what pretraining teaches."""
        n, s = self.spec.n_values, self.spec
        p = np.zeros(n)
        k = self.kind[x]
        if k == COMMON:
            p[self.f[x]] = 1.0
            return p
        if k == UNDEFINED:
            p[:] = 1.0 / n
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
        """Hard by design: a well-posed chain of depth hard_min_depth..max_depth through >= hard_min_confused confused
        pieces (greedy fails) whose on-path probability at T=1 is <= hard_max_on_path (sampling fails)."""
        s = self.spec
        if depth < s.hard_min_depth or depth > s.max_depth or not self.defined(x, depth):
            return False
        _, c = self.n_uncertain(x, depth)
        return c >= s.hard_min_confused and self.on_path_probability(x, depth) <= s.hard_max_on_path

    @cached_property
    def hard_candidates(self) -> list[tuple[int, int]]:
        """The probe's pool: from every start x that has a hard chain, the shortest one, f^d0(x). One problem per start
        keeps the split's groups small (a longer chain from x, or one from x + 1 inside it, would tie whole runs of
        f into one group), so hard-test shares uncertain facts with hard-train -- the tiny world's shared skills --
        while no hard-test chain lies inside a hard-train chain (`TinyTask.split_groups`). Every longer chain from x
        is hard too and, like f^d0(x), never appears in any training data (`touches_hard_candidate`)."""
        return sorted(self._hard_prefix_starts.items())

    @cached_property
    def _hard_prefix_starts(self) -> dict[int, int]:
        """start x -> smallest depth at which a chain from x is hard (`is_hard_candidate`)."""
        out: dict[int, int] = {}
        for x in range(self.spec.n_values):
            for d in range(self.spec.hard_min_depth, self.spec.max_depth + 1):
                if self.is_hard_candidate(x, d):
                    out[x] = d
                    break
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
            meta={"x": x, "depth": depth, "uncertain": u, "confused": c, "defined": self.defined(x, depth)},
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
        if k == UNDEFINED:  # no value exists: the corpus makes one up, uniformly
            return int(rng.integers(n))
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
                if self.touches_hard_candidate(x, d) or not self.defined(x, d):
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
            if self.n_uncertain(x, d)[0] == 0 and self.defined(x, d)
        ]
