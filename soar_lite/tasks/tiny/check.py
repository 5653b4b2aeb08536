"""The tiny world's own measurements behind report 02 (stages/tiny_world.py runs them): fact accuracy per kind, the
untrained teacher's pairs labelled by difficulty and correctness (the task's one labeller), the latent teaching
signal -- the grounded reward each base-teacher dataset would earn with one inner-loop student -- and the premise
gate's sample split: the untrained model's hard-problem samples as on-path successes, lucky final values and the
product model's prediction."""
from __future__ import annotations

import pandas as pd

import math

import numpy as np

from ...models import restore
from ...probe import count_correct
from ...sampling import sample
from ...seeds import stream_key
from ...student import RLItem, StudentJob, run_student_job, score_problems
from .world import KIND_NAMES


def piece_accuracy(policy, task, samples: int, seed: int, batch_size: int = 512) -> pd.DataFrame:
    """One row per input x: its kind, T=1 accuracy of f(x) over `samples`, greedy correctness."""
    world = task.world
    probs = [world.problem(x, 1) for x in range(world.spec.n_values)]
    counts = count_correct(policy, task, probs, samples, 1.0, seed, batch_size)
    greedy = score_problems(policy, task, probs, decoding="greedy", seed=seed, batch_size=batch_size)
    return pd.DataFrame({"x": range(world.spec.n_values), "kind": [KIND_NAMES[int(k)] for k in world.kind],
                         "t1_accuracy": counts / samples, "greedy_correct": greedy})


def label_teacher_pairs(task, pairs) -> pd.DataFrame:
    """Difficulty (uncertain pieces on the true path) and, by the task's one labeller (`exact_label`), well-posedness
    and answer correctness of teacher pairs."""
    rows = []
    for qa in pairs:
        label = task.exact_label(qa.question, qa.answer)
        parsed = task.parse_question(qa.question) if label["is_well_posed"] else None
        if parsed is None:
            rows.append({"question": qa.question, "answer": qa.answer, "well_posed": False, "depth": None,
                         "uncertain": None, "correct": False})
            continue
        x, d = parsed
        u, _ = task.world.n_uncertain(x, d)
        rows.append({"question": qa.question, "answer": qa.answer, "well_posed": True, "depth": d, "uncertain": u,
                     "correct": bool(label["is_correct"])})
    return pd.DataFrame(rows)


def latent_signal(policy, task, start, datasets: list[list], *, rl, inner_steps: int, q_r, seed_of,
                  decoding: str = "greedy", reward_samples: int = 1, batch_size: int = 512) -> pd.DataFrame:
    """The grounded reward each dataset would earn: the change of the reward's score on Q_R after one inner-loop
    student trained on it (the model's own answers as references). Greedy-accuracy deltas are recorded too.
    `seed_of(role, *indices)`: the seed derivation of the caller's stage."""
    eval_seed = seed_of("reward_score")

    def mean_score(dec):
        return float(score_problems(policy, task, q_r, decoding=dec, samples=reward_samples, seed=eval_seed,
                                    batch_size=batch_size).mean())

    restore(policy, start)
    base, base_greedy = mean_score(decoding), mean_score("greedy")
    rows = []
    for i, ds in enumerate(datasets):
        items = [RLItem(qa.question, qa.answer, stream_key("world_dataset", i, j)) for j, qa in enumerate(ds)]
        job = StudentJob(baseline=start, items=items, steps=inner_steps, seed=seed_of("student_train", i),
                         reward_problems=q_r, decoding=decoding, reward_samples=reward_samples, eval_seed=eval_seed)
        res = run_student_job(policy, task, job, rl, batch_size)
        rows.append({"dataset": i, "delta": res.score - base, "baseline": base,
                     "delta_greedy": mean_score("greedy") - base_greedy, "decoding": decoding})
    restore(policy, start)
    return pd.DataFrame(rows)


def hard_sample_split(policy, task, problems, samples: int, seed: int, accuracy: np.ndarray, batch_size: int = 512,
                      on_progress=None) -> pd.DataFrame:
    """One row per problem: `samples` fresh T=1 samples of the untrained model, split into on_path (the whole chain
    right: what the verifier counts) and lucky (the right final value through a wrong chain: what a final-value
    verifier would have counted), beside predicted_on_path = samples x the product of the measured per-fact
    accuracies `accuracy` along the problem's path (`TinyWorld.on_path_probability`)."""
    world = task.world
    per = math.lcm(samples, batch_size) // samples
    chunk = per * max(1, -(-16 // per))
    rows = []
    for start in range(0, len(problems), chunk):
        part = problems[start:start + chunk]
        texts, _ = sample(policy, [task.student_prompt(p.question) for p in part],
                          [stream_key("problem", p.id) for p in part], samples, 1.0, task.student_max_new_tokens, seed,
                          batch_size)
        for p, t in zip(part, texts):
            x, d = p.meta["x"], p.meta["depth"]
            rows.append({"id": p.id, "depth": d, "uncertain": p.meta["uncertain"], "confused": p.meta["confused"],
                         "samples": samples, "on_path": sum(task.is_correct(c, p.answer) for c in t),
                         "lucky": sum(task.lucky(c, p.answer) for c in t),
                         "predicted_on_path": samples * world.on_path_probability(x, d, accuracy),
                         "designed_on_path": samples * world.on_path_probability(x, d)})
        if on_progress is not None:
            on_progress(start + len(part), len(problems))
    return pd.DataFrame(rows)
