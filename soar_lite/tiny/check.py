"""Measurements of the tiny world's properties (rendered by notebooks/00_tiny_world.ipynb).

- piece accuracy per kind (common / shaky / confused) at T=1 and greedy;
- the stepping-stone property: RLOO on oracle stones vs RLOO on hard-train alone, hard-test pass@k;
- the latent teaching signal: datasets written by the untrained model (its own answers), each used for
  one short inner loop, and the change of hard-train accuracy they cause.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..models import restore, snapshot
from ..probe import count_correct, pass_at_k
from ..sampling import sample
from ..evaluate import train_fresh_student
from ..student import RLItem, accuracy, rl_train
from ..tasks.tiny import KIND_NAMES


def piece_accuracy(policy, task, samples: int, seed: int, batch_size: int = 512) -> pd.DataFrame:
    """One row per input x: its kind, T=1 accuracy of f(x) over `samples`, greedy correctness."""
    world = task.world
    probs = [world.problem(x, 1) for x in range(world.spec.n_values)]
    counts = count_correct(policy, task, probs, samples, 1.0, seed, batch_size)
    greedy = accuracy(policy, task, [p.question for p in probs], [p.answer for p in probs], [p.id for p in probs],
                      "greedy", 1, seed, batch_size)
    return pd.DataFrame({"x": range(world.spec.n_values), "kind": [KIND_NAMES[int(k)] for k in world.kind],
                         "t1_accuracy": counts / samples, "greedy_correct": greedy})


def hard_test_pass_at_k(policy, task, problems, samples: int, ks: list[int], seed: int, batch_size: int = 512) -> dict:
    counts = count_correct(policy, task, problems, samples, 1.0, seed, batch_size)
    return {k: float(np.mean([pass_at_k(samples, int(c), k) for c in counts])) for k in ks}


def rl_arm(policy, task, start, items: list[RLItem], ecfg, seed: int, test_problems,
           batch_size: int = 512) -> tuple[pd.DataFrame, list[float]]:
    """RLOO from `start` on `items` alone; hard-test pass@k every `ecfg.eval_every` steps."""
    return train_fresh_student(policy, task, start, [], items, test_problems, ecfg, seed, batch_size)


def teacher_samples(policy, task, count: int, seed: int, batch_size: int = 512) -> tuple[list, int]:
    """`count` format-valid QA pairs from the teacher prompt, and how many were rejected."""
    pairs, rejected, round_ = [], 0, 0
    while len(pairs) < count:
        texts, _ = sample(policy, [task.teacher_prompt()], [f"teacher-r{round_}"], count, 1.0,
                          task.teacher_max_new_tokens, seed + round_, batch_size)
        for t in texts[0]:
            qa = task.parse_teacher(t)
            if qa is None:
                rejected += 1
            elif len(pairs) < count:
                pairs.append(qa)
        round_ += 1
        if round_ > 20:
            raise RuntimeError(f"teacher produced only {len(pairs)}/{count} well-formed pairs in 20 rounds")
    return pairs, rejected


def label_teacher_pairs(task, pairs) -> pd.DataFrame:
    """Difficulty (uncertain pieces on the true path) and answer correctness of teacher pairs."""
    rows = []
    for qa in pairs:
        parsed = task.parse_question(qa.question)
        if parsed is None:
            rows.append({"question": qa.question, "answer": qa.answer, "well_posed": False, "depth": None,
                         "uncertain": None, "correct": False})
            continue
        x, d = parsed
        u, _ = task.world.n_uncertain(x, d)
        truth = task.world.format_chain(task.world.chain(x, d))
        rows.append({"question": qa.question, "answer": qa.answer, "well_posed": True, "depth": d, "uncertain": u,
                     "correct": qa.answer[-3:] == truth[-3:]})
    return pd.DataFrame(rows)


def latent_signal(policy, task, start, datasets: list[list], rl, inner_steps: int, hard_train, seed: int,
                  decoding: str = "greedy", reward_samples: int = 1, batch_size: int = 512) -> pd.DataFrame:
    """Delta of the reward metric on `hard_train` after one inner loop on each dataset (the model's own
    answers as references). Greedy-accuracy deltas are always recorded too (`delta_greedy`)."""
    qs, refs, keys = [p.question for p in hard_train], [p.answer for p in hard_train], [p.id for p in hard_train]

    def score(dec):
        return float(accuracy(policy, task, qs, refs, keys, dec, reward_samples, seed, batch_size).mean())

    restore(policy, start)
    base, base_greedy = score(decoding), score("greedy")
    rows = []
    for i, ds in enumerate(datasets):
        items = [RLItem(qa.question, qa.answer, f"d{i}q{j}") for j, qa in enumerate(ds)]
        restore(policy, start)
        rl_train(policy, task, items, rl, inner_steps, seed + i, batch_size)
        rows.append({"dataset": i, "seed": seed, "delta": score(decoding) - base, "baseline": base,
                     "delta_greedy": score("greedy") - base_greedy, "decoding": decoding})
    restore(policy, start)
    return pd.DataFrame(rows)


def run_world_check(cfg, log=print) -> dict:
    """Everything notebook 00 renders; writes tables/world_check.csv, world_curves.csv,
    base_teacher_rewards.csv, piece_accuracy.csv and teacher_pairs.csv into the run directory."""
    import dataclasses
    import time

    from ..pipeline import hard_sets, load, setup

    if cfg.task.name != "tiny":
        raise ValueError(f"notebook 00 measures the tiny world only; run '{cfg.name}' has task.name={cfg.task.name} "
                         "(`soar-lite run` skips this stage for other tasks)")
    out = setup(cfg, "tiny_world")
    tables = cfg.run_dir / "tables"
    wc, bs = cfg.world_check, cfg.model.gen_batch_size
    policy, task = load(cfg)
    start = snapshot(policy)
    hard_train, hard_test = hard_sets(cfg)
    timings = {}

    t0 = time.time()
    pieces = piece_accuracy(policy, task, wc.piece_samples, cfg.seed, bs)
    pieces.to_csv(tables / "piece_accuracy.csv", index=False)
    easy = task.problems("easy")
    easy_greedy = float(accuracy(policy, task, [p.question for p in easy], [p.answer for p in easy],
                                 [p.id for p in easy], "greedy", 1, cfg.seed, bs).mean())
    timings["pieces_s"] = time.time() - t0

    # --- stepping stones vs Hard-Only, equal RL steps, several seeds
    ecfg = dataclasses.replace(cfg.evaluate, steps=wc.steps, eval_every=wc.eval_every)
    stones = [RLItem(p.question, p.answer, p.id) for p in task.problems("stones")]
    hard_items = [RLItem(p.question, p.answer, p.id) for p in hard_train]
    curves = []
    for arm, items in (("stones", stones), ("hard-only", hard_items)):
        for seed in range(wc.seeds):
            t0 = time.time()
            curve, rewards = rl_arm(policy, task, start, items, ecfg, cfg.seed + seed, hard_test, bs)
            curve["arm"], curve["seed"] = arm, seed
            curves.append(curve)
            timings[f"{arm}_seed{seed}_s"] = time.time() - t0
            final = curve[curve.step == curve.step.max()].set_index("k").pass_at_k
            log(f"{arm} seed {seed}: pass@1 {final.get(1, float('nan')):.3f} pass@32 {final.get(32, float('nan')):.3f}"
                f"  train reward {np.mean(rewards[-10:]):.3f}  ({timings[f'{arm}_seed{seed}_s']:.0f} s)")
    curves = pd.concat(curves, ignore_index=True)
    curves.to_csv(tables / "world_curves.csv", index=False)
    final = curves[curves.step == curves.step.max()][["arm", "seed", "k", "pass_at_k"]]
    final.to_csv(tables / "world_check.csv", index=False)
    restore(policy, start)

    # --- the untrained model as a teacher: difficulty and correctness of its own pairs
    t0 = time.time()
    n_pairs = wc.datasets * cfg.meta.n
    pairs, rejected = teacher_samples(policy, task, n_pairs, cfg.seed + 99, bs)
    labels = label_teacher_pairs(task, pairs)
    labels.to_csv(tables / "teacher_pairs.csv", index=False)
    timings["teacher_sampling_s"] = time.time() - t0

    # --- latent teaching signal: one inner loop per base-teacher dataset
    t0 = time.time()
    datasets = [pairs[i * cfg.meta.n:(i + 1) * cfg.meta.n] for i in range(wc.datasets)]
    rng = np.random.default_rng(cfg.seed)
    q_r = [hard_train[i] for i in sorted(rng.choice(len(hard_train), min(cfg.meta.M, len(hard_train)), replace=False))]
    deltas = latent_signal(policy, task, start, datasets, cfg.meta.student, cfg.meta.inner_steps, q_r, cfg.seed,
                           cfg.meta.reward_decoding, cfg.meta.reward_samples, bs)
    deltas.to_csv(tables / "base_teacher_rewards.csv", index=False)
    timings["latent_signal_s"] = time.time() - t0
    summary = {"easy_greedy_accuracy": easy_greedy, "n_easy": len(easy), "n_stones": len(stones),
               "n_hard_train": len(hard_train), "n_hard_test": len(hard_test), "teacher_rejected": rejected,
               "teacher_pairs": len(pairs), "timings_s": {k: round(v, 1) for k, v in timings.items()}}
    from ..rundir import write_json

    write_json(out / "summary.json", summary)
    return {"pieces": pieces, "curves": curves, "final": final, "labels": labels, "deltas": deltas, "summary": summary}
