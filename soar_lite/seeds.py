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

Sampling streams have names too. A generated row's draws are seeded by (seed, stream key, sample index), so a key
decides which draws two rows share: `stream_key(kind, *indices)` builds every key of the package from one table
(`STREAM_KEYS`), and `recording_keys()` collects them, so the tests check the keys as they check the seeds (no two
kinds of stream ever produce one key; the evaluation's arms draw the same keys: common random numbers).

One exception, named: a world's model is pretrained before any run exists (`soar_lite/tasks/pretrain.py`, which
builds the tiny model for `soar_lite/tasks/tiny/pretrain.py` and examples/add_world's); its two streams (torch init
from the seed, the corpus from the seed plus one) are kept as they were so that a rebuild reproduces the shipped
weights.
"""
from __future__ import annotations

import contextlib
import hashlib

from .arms import stream_keys as arm_stream_keys

STAGES = ("model", "probe", "tiny_world", "meta_train", "evaluate", "analyze")
_records: list[list[tuple]] = []
_key_records: list[list[tuple]] = []

# kind of sampling stream -> the format of its key (positional indices)
STREAM_KEYS = {
    "problem": "{}",  # a real problem (probe, hard-train, hard-test, Q_R): its id
    "training_step": "{}#s{}",  # an item's samples at a student's RL step: the item's key, the step
    "teacher_step": "t{}r{}",  # meta-training's teacher sample: outer step, rejection round
    "inner_question": "s{}d{}q{}",  # an inner-loop question: outer step, dataset, position
    "null_teacher": "null{}r{}",  # tau's null steps: null step, rejection round
    "null_question": "null{}d{}q{}",  # a null step's question: null step, dataset, position
    "stage_null_teacher": "i{}null{}r{}",  # tau's null steps at a later stage: its inner steps, null step, round
    "stage_null_question": "i{}null{}d{}q{}",  # their questions: inner steps, null step, dataset, position
    "guard_probe": "guard{}a{}",  # the collapse guard's fresh samples: outer step, attempt
    "diagnostics": "diagnostics",  # the end-of-run question diagnostics (one stream: trained vs untrained)
    "snr_teacher": "snr{}x{}x{}d{}r{}",  # the SNR estimate's teacher sample: g, n, r, draw, round
    "snr_question": "snr{}d{}q{}",  # its questions: draw, dataset, position
    "teacher_answer": "{}-a{}",  # a two-turn teacher's answer call: its question call's stream key, the row
    "teacher_draw": "{}-draw{}-r{}",  # a teacher question set of evaluation or analysis: stage, draw, round
    "ablation": "q{}",  # the ablation's question: its index in the labelled set (same in both arms)
    "world_teacher": "teacher-r{}",  # the tiny world report's teacher sample: rejection round
    "world_dataset": "d{}q{}",  # its latent-signal datasets: dataset, position
    # the evaluation arms' own streams (arms.py): synthetic (a teacher arm's question: its position, the same in every
    # arm), pq (a Promotion Question: its position), curated (a curated problem: its id), serl_vote (SeRL's filter)
    **arm_stream_keys(),
}


def derive(run_seed: int, stage: str, role: str, *indices) -> int:
    """The seed of draw `role` (with `indices`) in `stage` of the run seeded `run_seed` (63 bits)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} for a seed (one of {', '.join(STAGES)})")
    text = "|".join(map(str, (int(run_seed), stage, role, *indices)))
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1
    for rec in _records:
        rec.append((stage, role, tuple(indices), seed))
    return seed


def stream_key(kind: str, *indices) -> str:
    """The sampling-stream key of `kind` (STREAM_KEYS) with `indices`."""
    key = STREAM_KEYS[kind].format(*indices)
    for rec in _key_records:
        rec.append((kind, key))
    return key


@contextlib.contextmanager
def _collecting(registry: list):
    """A list that collects, while the block runs, what the functions writing to `registry` record."""
    rec: list[tuple] = []
    registry.append(rec)
    try:
        yield rec
    finally:
        registry.remove(rec)


def recording_keys():
    """Collect (kind, key) for every stream key built inside the block."""
    return _collecting(_key_records)


def shared_keys(records) -> dict[str, set[str]]:
    """Keys built by more than one kind of stream: must be empty for a run."""
    kinds: dict[str, set[str]] = {}
    for kind, key in records:
        kinds.setdefault(key, set()).add(kind)
    return {k: v for k, v in kinds.items() if len(v) > 1}


def recording():
    """Collect (stage, role, indices, seed) for every derivation made inside the block."""
    return _collecting(_records)


def shared_seeds(records) -> dict[int, set[tuple[str, str]]]:
    """Seeds derived for more than one (stage, role): must be empty for a run."""
    roles: dict[int, set[tuple[str, str]]] = {}
    for stage, role, _, seed in records:
        roles.setdefault(seed, set()).add((stage, role))
    return {s: r for s, r in roles.items() if len(r) > 1}
