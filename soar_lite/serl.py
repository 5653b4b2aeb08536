"""SeRL, the self-play baseline of the paper's v3 Tables 4/5 (Fang et al. 2025), as an evaluation arm (`serl`).

The paper describes SeRL in one line (PAPER.md §5): self-play with a majority-vote self-reward plus learnability
and diversity filters, seeded with the fail@128 train set, reported at steps 50 and 100 (it converges by about 100).
What is built here, from that description and SeRL's own (self-instruction, online filtering, majority voting):

- **Self-instruction**: the untrained model writes questions from `Task.self_instruct_prompt(demonstrations)`, the
  demonstrations drawn from hard-train (a world whose model reads no demonstrations -- the tiny world -- keeps its
  teacher prompt). Its own answers are thrown away: SeRL's questions carry no label. The draws use Base-T's
  sampling stream (common random numbers: where the two prompts are equal, SeRL filters Base-T's questions).
- **Difficulty filter** (`agreement_share`, `select_questions`): each question is answered `votes` times by the
  untrained model; kept when the majority answer's share lies in [min_agreement, max_agreement] (SeRL: 0.2-0.8),
  so neither hopeless nor already solved.
- **Diversity filter**: an exact duplicate question is dropped (SeRL: ROUGE-L > 0.7 to a kept one; DEVIATION: exact
  match, the tiny world's questions are a few tokens long).
- **Self-reward** (`majority_answer`, used by `student.rl_train` for an item without a reference): a sample earns the
  task's reward against the majority answer of its own RLOO group, so no true answer of a synthetic question is used.

DEVIATIONS (named in the params files that run it): one round of self-instruction from the untrained model before
training, not a new round at every step from the current one; the questions train beside hard-train in mixed
mode, as every arm here trains beside it (hard-train problems keep their true answers, which at 0/128 give no
signal); reported at `evaluate.serl_step` (the paper's step 100) instead of by the stop rule.
"""
from __future__ import annotations

from collections import Counter


def majority_answer(answers: list[str | None]) -> str | None:
    """The most common extracted answer (whitespace stripped; ties: the first seen); None if no answer was extracted.
    >>> majority_answer(["3", " 4", "4", None])
    '4'
    """
    counts = Counter(a.strip() for a in answers if a is not None and a.strip())
    if not counts:
        return None
    top = max(counts.values())
    return next(a.strip() for a in answers if a is not None and a.strip() and counts[a.strip()] == top)


def agreement_share(answers: list[str | None]) -> float:
    """Share of all samples (unparsed ones included) that give the majority answer; 0 when none parses."""
    top = majority_answer(answers)
    if top is None or not answers:
        return 0.0
    return sum(a is not None and a.strip() == top for a in answers) / len(answers)


def select_questions(questions: list[str], shares: list[float], *, count: int, min_agreement: float,
                     max_agreement: float) -> list[int]:
    """Indices of the first `count` questions, in draw order, whose agreement share lies in
    [min_agreement, max_agreement] and whose text was not kept before (SeRL's difficulty and diversity filters)."""
    kept, seen = [], set()
    for i, (q, share) in enumerate(zip(questions, shares)):
        key = q.strip()
        if min_agreement <= share <= max_agreement and key not in seen:
            kept.append(i)
            seen.add(key)
            if len(kept) == count:
                break
    return kept
