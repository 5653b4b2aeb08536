"""The problem-source interface shared by the tiny world and the math benchmarks.

A *task* knows how to phrase a question for the student (paper App. B.1 student prompt), how to ask
the teacher for a new question+answer pair (App. B.1 teacher prompt), how to parse the teacher's
output (App. B.2 format check), and how to score a student completion (App. B.3 shaped reward).
Everything a loop needs about "the world" goes through this interface, so the SOAR loop, probe and
evaluation code never branch on which world they run in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Problem:
    """One question with its reference answer. `level` is a difficulty label (world-specific)."""

    id: str
    question: str
    answer: str
    level: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class QAPair:
    """A teacher rollout that passed the format check: its question, its (possibly wrong) answer."""

    question: str
    answer: str
    text: str  # the full teacher completion, kept for the teacher's RLOO update


# Paper App. B.3 shaped student reward, divided by 120 so that a verified answer is worth 1.0
# (RLOO is invariant to adding a constant but not to scale; the division keeps learning rates
# comparable between the binary and the shaped reward).
REWARD_VERIFIED = 120.0
REWARD_CONTAINS = 20.0
REWARD_FORMATTED = 10.0


def shaped_reward(formatted: bool, verified: bool, contains_reference: bool) -> float:
    """Paper App. B.3: 120 if boxed and verified; 20 if boxed, not verified, reference in the
    extracted answer; 10 if boxed otherwise; 0 without a box. Returned divided by 120."""
    if not formatted:
        return 0.0
    if verified:
        return REWARD_VERIFIED / REWARD_VERIFIED
    if contains_reference:
        return REWARD_CONTAINS / REWARD_VERIFIED
    return REWARD_FORMATTED / REWARD_VERIFIED


class Task(Protocol):
    name: str
    student_max_new_tokens: int
    teacher_max_new_tokens: int

    def student_prompt(self, question: str) -> str: ...

    def teacher_prompt(self) -> str: ...

    def parse_teacher(self, text: str) -> QAPair | None: ...

    def extract_answer(self, completion: str) -> str | None: ...

    def is_correct(self, completion: str, reference: str) -> bool: ...

    def is_correct_many(self, completions: list[str], references: list[str]) -> list[bool]: ...

    def student_reward(self, completion: str, reference: str) -> float: ...

    def student_rewards(self, completions: list[str], references: list[str]) -> list[float]: ...

    def problems(self, pool: str) -> list[Problem]: ...
