"""The one seed derivation: every random draw of a run takes its seed from `derive(run_seed, stage, role, *indices)`.

A seed is a 63-bit hash (BLAKE2b) of the run seed, the stage that draws, the role of the draw and its indices
(outer step, dataset, student, evaluation point, ...). Two different (stage, role, indices) give independent
streams; there are no hand-picked offsets (plus 11, times 7919 plus the step, ...) that can make two roles meet.
In particular the evaluation's test-sampling streams can never coincide with the probe's selection batches
(paper App. B: base inference is non-zero "because the seeds differ from the filtering seeds").

Common random numbers are a deliberate choice, made by leaving a role's index out: the sampling seeds of a
student are the same for every method (so methods are compared student by student, a paired design), and the
teacher question draws are the same for the base, grounded and intrinsic teachers.

`recording()` collects every derivation made inside it (stage, role, indices, seed); the tests use it to check
that a whole run never derives one seed for two different roles.

One exception, named: the tiny model's pretraining (`soar_lite/tiny/pretrain.py`) builds the world before any
run exists; its two streams (torch init from the seed, the corpus from the seed plus one) are kept as they were
so that a rebuild reproduces the shipped weights.
"""
from __future__ import annotations

import contextlib
import hashlib

STAGES = ("model", "probe", "tiny_world", "meta_train", "evaluate", "analyze")
_records: list[list[tuple]] = []


def derive(run_seed: int, stage: str, role: str, *indices) -> int:
    """The seed of draw `role` (with `indices`) in `stage` of the run seeded `run_seed` (63 bits)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} for a seed (one of {', '.join(STAGES)})")
    text = "|".join(map(str, (int(run_seed), stage, role, *indices)))
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1
    for rec in _records:
        rec.append((stage, role, tuple(indices), seed))
    return seed


@contextlib.contextmanager
def recording():
    """Collect (stage, role, indices, seed) for every derivation made inside the block."""
    rec: list[tuple] = []
    _records.append(rec)
    try:
        yield rec
    finally:
        _records.remove(rec)


def shared_seeds(records) -> dict[int, set[tuple[str, str]]]:
    """Seeds derived for more than one (stage, role): must be empty for a run."""
    roles: dict[int, set[tuple[str, str]]] = {}
    for stage, role, _, seed in records:
        roles.setdefault(seed, set()).add((stage, role))
    return {s: r for s, r in roles.items() if len(r) > 1}
