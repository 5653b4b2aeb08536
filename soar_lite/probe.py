"""fail@k hard sets and the unbiased pass@k estimator (paper App. B.5, §2.9).

Follows the paper: 128 samples per problem at T = 1.0 with the student prompt, keep problems with 0/128
correct, split the survivors 50/50 at random into hard-train and hard-test.
Addition (named): a second, independent batch of 128 samples must also be 0/128. A selection made at
0/128 is leaky when true success rates are ~1e-3 (the winner's curse: on an earlier tiny world a 0/128
selection scored pass@32 0.095 on a fresh batch); the confirmation removes problems a fresh batch solves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .sampling import sample
from .seeds import stream_key
from .tasks.base import Problem


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms huge binomials.
    """
    if not (0 <= c <= n) or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"k={k} exceeds the number of samples n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: list[int], n: int, ks: list[int]) -> dict[int, float]:
    """Mean pass@k over problems with `counts[i]` correct out of n."""
    return {k: float(np.mean([pass_at_k(n, c, k) for c in counts])) if counts else math.nan for k in ks}


def count_correct(policy, task, problems: list[Problem], samples: int, temperature: float, seed: int,
                  batch_size: int = 256, on_progress=None) -> np.ndarray:
    """Correct samples out of `samples` per problem (student prompt, T = temperature). `on_progress(done, total)`
    is told after each chunk of problems; the chunks are whole generation batches (a multiple of lcm(samples,
    batch_size) rows), and every row's draws come from its own seed, so chunking changes no sample."""
    import math

    per = math.lcm(samples, batch_size) // samples  # problems per whole number of batches
    chunk = per * max(1, -(-32 // per))
    out = []
    for start in range(0, len(problems), chunk):
        part = problems[start:start + chunk]
        prompts = [task.student_prompt(p.question) for p in part]
        texts, _ = sample(policy, prompts, [stream_key("problem", p.id) for p in part], samples, temperature,
                          task.student_max_new_tokens, seed, batch_size)
        out += [sum(task.is_correct_many(t, [p.answer] * len(t))) for t, p in zip(texts, part)]
        if on_progress is not None:
            on_progress(start + len(part), len(problems))
    return np.array(out, dtype=int)


@dataclass
class HardSet:
    pool: str
    n_pool: int
    first_counts: np.ndarray
    confirm_counts: np.ndarray
    train: list[Problem]
    test: list[Problem]
    split_seed: int

    @property
    def n_fail(self) -> int:
        return len(self.train) + len(self.test)

    def row(self) -> dict:
        return {"pool": self.pool, "n_pool": self.n_pool, "n_fail": self.n_fail, "n_train": len(self.train),
                "n_test": len(self.test)}


def split_train_test(problems: list[Problem], test_fraction: float, seed: int,
                     groups: list | None = None) -> tuple[list[Problem], list[Problem]]:
    """Random split (the paper's seed is not given; ours is derived from the run seed). With `groups` (one
    label per problem, `Task.split_groups`), whole groups go to one side: groups are shuffled and taken into
    hard-test until it holds `test_fraction` of the problems (the group that crosses the target goes where
    the count lands closer)."""
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = list(range(len(problems)))
    members: dict = {}
    for i, gid in enumerate(groups):
        members.setdefault(gid, []).append(i)
    labels = list(members)
    target = len(problems) * test_fraction
    test_idx: list[int] = []
    for gi in rng.permutation(len(labels)):
        group = members[labels[gi]]
        if len(test_idx) >= target:
            break
        if abs(len(test_idx) + len(group) - target) <= abs(len(test_idx) - target) or not test_idx:
            test_idx += group
    chosen = set(test_idx)
    test = [problems[i] for i in sorted(chosen)]
    train = [problems[i] for i in range(len(problems)) if i not in chosen]
    return train, test


def find_hard_set(policy, task, pool_name: str, problems: list[Problem], *, samples: int, confirm_samples: int,
                  temperature: float, test_fraction: float, first_seed: int, confirm_seed: int, split_seed: int,
                  batch_size: int = 256, on_progress=None) -> HardSet:
    """fail@samples filter, confirmed by a second independent batch (its own seed), then a random split that
    keeps the task's split groups together (`Task.split_groups`: no hard-test chain inside a hard-train chain).
    `on_progress(done, total)` counts problems probed over both batches (the confirming one's size is known once the
    first is done)."""
    first = count_correct(policy, task, problems, samples, temperature, first_seed, batch_size,
                          on_progress and (lambda d, t: on_progress(d, 2 * t)))
    survivors = [p for p, c in zip(problems, first) if c == 0]
    confirm = np.zeros(0, dtype=int)
    if confirm_samples:
        n = len(problems)
        confirm = count_correct(policy, task, survivors, confirm_samples, temperature, confirm_seed, batch_size,
                                on_progress and (lambda d, t: on_progress(n + d, n + t)))
        survivors = [p for p, c in zip(survivors, confirm) if c == 0]
    train, test = split_train_test(survivors, test_fraction, split_seed, task.split_groups(survivors))
    return HardSet(pool_name, len(problems), first, confirm, train, test, split_seed)
