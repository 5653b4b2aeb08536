"""A world of your own, defined outside soar_lite: the tiny world's lookups with more holes.

f is the tiny world's permutation and the model is the shipped tiny model, but here a further seeded share of inputs
is *undefined* (`settings.undefined_share`), beside the tiny world's own holes: a question `f^d(x)` whose path passes
through one has no answer in this world -- it is ill posed. The model was pretrained with values for these inputs,
so as a teacher it writes such questions as readily as any other (about 1 - (1 - share)^d of its depth-d questions),
which makes the paper's Finding 3 axis -- well-posed structure vs correct answers -- wider than in the tiny world.
The labels come from an exact judge (`exact_label`), no LLM.

The probe pools hold well-posed problems only, so the hard set is the tiny world's hard problems that avoid every
hole. Everything else (prompts, format check, verifier, shaped reward, split groups, the question diagnostics --
which read well-posedness through this world's `exact_label`) is the tiny world's.

Run it (from the repository root):

    soar-lite run examples/partial_world/params.yaml --jobs 2
"""
from __future__ import annotations

import numpy as np

from soar_lite.tasks.base import Problem, question_label
from soar_lite.tasks.tiny import TinyTask, TinyWorld


class PartialTask(TinyTask):
    """The tiny world with holes: inputs in `undefined` have no f here."""

    name = "partial_world"
    world_report = False  # the tiny world's own report measures the tiny world; this world has none

    def __init__(self, undefined_share: float, seed: int, student_max_new_tokens: int, teacher_max_new_tokens: int):
        super().__init__(TinyWorld(), student_max_new_tokens, teacher_max_new_tokens)
        n = self.world.spec.n_values
        rng = np.random.default_rng(seed)
        self.undefined = {int(x) for x in rng.choice(n, size=round(undefined_share * n), replace=False)}

    def defined(self, x: int, depth: int) -> bool:
        """Every input on the path of f^depth(x) has a value in this world."""
        return not any(v in self.undefined for v in self.world.path(x, depth))

    def problems(self, pool: str) -> list[Problem]:
        """The tiny world's pools, well-posed problems only."""
        return [p for p in super().problems(pool) if self.defined(p.meta["x"], p.meta["depth"])]

    def exact_label(self, question: str, answer: str) -> dict:
        """The tiny world's labels, and Ill_Posed for a question through a hole (no answer exists)."""
        label = super().exact_label(question, answer)
        if label["is_well_posed"]:
            x, depth = self.parse_question(question)
            if not self.defined(x, depth):
                return question_label(False, False, "Ill_Posed", "N/A")
        return label


def make(task_cfg) -> PartialTask:
    """The factory `task.name: partial_world:make` names; `task.settings` holds undefined_share and seed."""
    settings = dict(task_cfg.settings)
    share = settings.pop("undefined_share", 0.15)
    seed = settings.pop("seed", 1)
    if settings:
        raise ValueError(f"unknown setting(s) {', '.join(map(str, settings))} (this world knows undefined_share, seed)")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise ValueError(f"undefined_share must be a number in [0, 1), got {share!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return PartialTask(float(share), seed, task_cfg.student_max_new_tokens, task_cfg.teacher_max_new_tokens)
