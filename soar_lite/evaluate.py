"""Fresh-student evaluation (paper §2.9, App. B.6/B.8): train a new student with RLOO on a question set
plus hard-train, log hard-test pass@k over steps, pick the stop step from the training reward.

Follows the paper:
- mixed mode: synthetic and real questions sampled together throughout (uniformly from the union,
  INFERRED; the ratio is not given); curriculum mode: `curriculum_steps` steps (64) on synthetic
  questions only, then hard-train only;
- pass@k, k in {1,4,8,16,32}, from 32 samples per test problem at T=1 (unbiased estimator);
- stopping rule: 25-step centred moving average of the training reward, discrete slopes normalised
  by the reward range, stop at the first step after the steepest point where the slope falls below
  15% of the maximum slope; report the mean test pass@k over the window after the stop.
Named choices: the stop is searched *after* the steepest point (otherwise a flat start would stop at
step 0); a curve with no rise (max slope <= 0) stops at the last step; the evaluation points inside the
window [stop, stop + after_stop_window] are averaged, or the last point when none falls inside.
Ours: a student given a `partial` file saves its training state as it goes and resumes from it, with the result of
an uninterrupted student (`train_fresh_student`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .models import restore
from .probe import count_correct, pass_at_k
from .rloo import make_optimizer
from .student import RLItem, rl_train


def centred_moving_average(x, window: int) -> np.ndarray:
    """Centred moving average; near the ends the window shrinks to what exists."""
    x = np.asarray(x, dtype=np.float64)
    half = window // 2
    c = np.concatenate([[0.0], np.cumsum(x)])
    out = np.empty_like(x)
    for i in range(len(x)):
        lo, hi = max(0, i - half), min(len(x), i + half + 1)
        out[i] = (c[hi] - c[lo]) / (hi - lo)
    return out


def stop_step(train_rewards, window: int = 25, fraction: float = 0.15) -> int:
    """App. B.8 early-stopping rule on a per-step training-reward curve; returns a step index."""
    r = np.asarray(train_rewards, dtype=np.float64)
    if len(r) < 3:
        return max(0, len(r) - 1)
    s = centred_moving_average(r, window)
    span = s.max() - s.min()
    if span <= 0:
        return len(r) - 1
    slope = np.diff(s) / span
    peak = int(np.argmax(slope))
    if slope[peak] <= 0:
        return len(r) - 1
    below = np.nonzero(slope[peak:] < fraction * slope[peak])[0]
    return int(peak + below[0]) if len(below) else len(r) - 1


def window_mean(curve: pd.DataFrame, stop: int, window: int) -> pd.Series:
    """Mean pass@k per k over evaluation steps in [stop, stop + window] (the last point if none)."""
    inside = curve[(curve.step >= stop) & (curve.step <= stop + window)]
    if inside.empty:
        inside = curve[curve.step == curve.step.max()]
    return inside.groupby("k").pass_at_k.mean()


def evaluation_points(steps: int, every: int) -> int:
    """Hard-test evaluations of one fresh student (`train_fresh_student`): step 0, every multiple of `every`, and the
    last step where it is not one."""
    return steps // every + 1 + (1 if steps % every else 0)


def make_sampler(synthetic: list[RLItem], real: list[RLItem], mode: str, batch: int, curriculum_steps: int):
    """Batches for fresh-student training: 'mixed' draws uniformly from the union; 'curriculum' draws
    synthetic only for the first `curriculum_steps` steps, then real only. Empty synthetic = Hard-Only."""
    union = synthetic + real

    def sampler(step: int, rng: np.random.Generator) -> list[RLItem]:
        if not synthetic:
            pool = real
        elif mode == "curriculum":
            pool = synthetic if step < curriculum_steps else real
        else:
            pool = union
        idx = rng.choice(len(pool), size=min(batch, len(pool)), replace=False)
        return [pool[i] for i in idx]

    return sampler


def test_pass_at_k(policy, task, problems, *, samples: int, ks: list[int], seed: int, batch_size: int) -> dict[int, float]:
    """Mean unbiased pass@k over `problems` from `samples` samples each at T=1 (§2.9)."""
    counts = count_correct(policy, task, problems, samples, 1.0, seed, batch_size)
    return {k: float(np.mean([pass_at_k(samples, int(c), k) for c in counts])) for k in ks}


# A student with a `partial` file saves its state there at most every PARTIAL_EVERY_S seconds, checked every
# PARTIAL_PIECE_STEPS steps (the RLOO chunk between two evaluations is trained in pieces of this many steps, one
# generator through them): a killed render resumes the student where it was saved, not from step 0.
PARTIAL_EVERY_S = 300.0
PARTIAL_PIECE_STEPS = 10


def train_fresh_student(policy, task, start, *, synthetic: list[RLItem], hard_train: list[RLItem], test_problems, ecfg,
                        seed_of: Callable[..., int], batch_size: int = 256, log=None, partial=None,
                        partial_key: str = "") -> tuple[pd.DataFrame, list[float]]:
    """One fresh student from the adapter `start`, with its own AdamW, trained by `ecfg` (a FreshStudentConfig):
    returns (test curve rows step/k/pass_at_k, per-step training rewards). `seed_of(role, *indices)` is the
    student's seed derivation (`soar_lite.seeds.derive` bound to its stage and student index): test sampling at
    step t draws from ("test_sample", t), the RLOO chunk starting at step t from ("student_train", t).

    `partial` (a path; ours): the student's state -- adapter, AdamW state, the chunk's generator, the curve and
    rewards so far, its training seconds so far (summed over sittings; the caller adds them to the resumed
    sitting's wall time) -- is saved there as it trains (PARTIAL_EVERY_S) under `partial_key`, and a saved state
    with that key is resumed from: the result is the one an uninterrupted student gives (every draw is the same;
    tested). A state with another key is ignored, a damaged one named in the log; the caller deletes the file once
    the finished result is kept. Long students need it: the compute-matched Hard-Only trains for hours."""
    import time

    restore(policy, start)
    sampler = make_sampler(synthetic, hard_train, ecfg.mode, ecfg.student.batch_questions, ecfg.curriculum_steps)
    rows, rewards = [], []
    opt = make_optimizer(policy, ecfg.student.lr, ecfg.student.weight_decay)

    def evaluate(step: int) -> None:
        pk = test_pass_at_k(policy, task, test_problems, samples=ecfg.samples, ks=ecfg.ks, seed=seed_of("test_sample", step),
                            batch_size=batch_size)
        rows.extend({"step": step, "k": k, "pass_at_k": v} for k, v in pk.items())

    started, earlier_s = time.monotonic(), 0.0  # this sitting's start; training seconds of earlier sittings
    state = load_partial(partial, partial_key, log) if partial is not None else None
    if state is None:
        evaluate(0)
        done, chunk_start, rng = 0, 0, None
    else:  # resume: the adapter, AdamW, curve, rewards and the chunk's generator as they were saved
        restore(policy, state["adapter"])
        opt.load_state_dict(state["optimizer"])
        rows, rewards, done, chunk_start = state["rows"], state["rewards"], state["done"], state["chunk_start"]
        earlier_s = partial_seconds(state)
        rng = None  # saved at a chunk's end: the next chunk draws its generator anew
        if state["rng"] is not None:  # saved inside a chunk: its generator goes on where it was
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
        if log:
            log(f"  resumed at step {done} of {ecfg.steps} from {partial.name}")
    saved_at = time.monotonic()
    while done < ecfg.steps:
        chunk_end = chunk_start + min(ecfg.eval_every, ecfg.steps - chunk_start)
        if rng is None:  # a new chunk: its generator from its first step, as one rl_train call would draw
            rng = np.random.default_rng(seed_of("student_train", chunk_start))
        while done < chunk_end:
            piece = min(PARTIAL_PIECE_STEPS if partial is not None else chunk_end - done, chunk_end - done)
            stats = rl_train(policy, task, [], ecfg.student, piece, 0, batch_size,
                             item_sampler=lambda step, g: sampler(step + done, g), optimizer=opt,
                             step_offset=done, total_steps=ecfg.steps, rng=rng)
            rewards += [s["reward"] for s in stats]
            done += piece
            if partial is not None and done < chunk_end and time.monotonic() - saved_at >= PARTIAL_EVERY_S:
                save_partial(partial, partial_key, policy, opt, rows, rewards, done, chunk_start, rng,
                             seconds=earlier_s + time.monotonic() - started)
                saved_at = time.monotonic()
        evaluate(done)
        if log:
            log(f"  step {done}: train reward {np.mean(rewards[-(chunk_end - chunk_start):]):.3f}")
        chunk_start, rng = done, None
        if partial is not None and done < ecfg.steps and time.monotonic() - saved_at >= PARTIAL_EVERY_S:
            save_partial(partial, partial_key, policy, opt, rows, rewards, done, chunk_start, None,
                         seconds=earlier_s + time.monotonic() - started)
            saved_at = time.monotonic()
    return pd.DataFrame(rows), rewards


def save_partial(path, key: str, policy, opt, rows: list[dict], rewards: list[float], done: int, chunk_start: int,
                 rng: np.random.Generator | None, seconds: float = 0.0) -> None:
    """A training student's state, atomically (one file: a kill leaves the previous state or this one); `seconds`:
    its training seconds up to this save, summed over sittings (work redone after a kill is counted once)."""
    import io

    import torch

    from .models import snapshot
    from .rundir import atomic_write

    buf = io.BytesIO()
    torch.save({"key": key, "done": done, "chunk_start": chunk_start, "rows": rows, "rewards": rewards,
                "rng": rng.bit_generator.state if rng is not None else None, "adapter": snapshot(policy),
                "optimizer": opt.state_dict(), "seconds": float(seconds)}, buf)
    atomic_write(path, lambda tmp: tmp.write_bytes(buf.getvalue()))


def load_partial(path, key: str, log=None) -> dict | None:
    """The saved state of a training student with this key (`save_partial`), or None: no file, another key (made
    for other inputs), or a damaged file (named in the log; the student starts over)."""
    import torch

    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        ok = isinstance(state, dict) and {"key", "done", "chunk_start", "rows", "rewards", "rng", "adapter",
                                          "optimizer"} <= set(state)
    except Exception as e:  # noqa: BLE001 -- any unreadable file is a damaged one: say so, start over
        ok, state = False, f"{type(e).__name__}"
    if not ok:
        if log:
            log(f"{path.name}: damaged ({state if isinstance(state, str) else 'not a saved student state'}): "
                f"the student starts over")
        return None
    return state if state["key"] == key else None


def partial_seconds(state: dict) -> float:
    """The training seconds a saved student state records (`save_partial`); 0 for a state saved before they were
    recorded (its earlier sittings' time is unknown)."""
    return float(state.get("seconds", 0.0))


def summarize(curve: pd.DataFrame, rewards: list[float], ecfg) -> tuple[int, pd.Series]:
    """(stop step, pass@k per k): the stop rule and the window after it (App. B.8), or the fixed step (Table 6)."""
    fixed = getattr(ecfg, "fixed_step", 0)  # the evaluate section's (Table 6); the world check's arms have none
    if fixed:
        return fixed, window_mean(curve, fixed, 0)
    stop = stop_step(rewards, ecfg.smooth_window, ecfg.slope_fraction)
    return stop, window_mean(curve, stop, ecfg.after_stop_window)
