"""Stage `tiny_world` (notebook 02): the tiny world's own evidence, for worlds with a report (`Task.world_report`).

- piece accuracy per kind (common / shaky / confused) at T=1 and greedy, and greedy accuracy on easy chains;
- the stepping-stone property: fresh students (`world_check.arms`, the evaluation's own training code) on the
  oracle stones vs on hard-train alone, hard-test pass@k over training;
- what the untrained model writes as a teacher (the one teacher sampler), labelled by difficulty and correctness;
- the latent teaching signal: each base-teacher dataset (its own answers as references) trains one inner-loop
  student (`student.run_student_job`, the meta-loop's unit), scored on Q_R as the grounded reward would be.

Writes tables/piece_accuracy.csv, world_curves.csv, world_check.csv, teacher_pairs.csv, base_teacher_rewards.csv
and tiny_world/summary.json.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..evaluate import train_fresh_student
from ..models import restore, snapshot
from ..rundir import report_progress, write_json, write_table
from ..seeds import derive, stream_key
from ..soar import null_threshold
from ..teacher import sample_qa_pairs
from .. import stats
from ..student import RLItem, reward_questions, score_problems
from ..tasks import make_task
from ..tasks.tiny import TINY_MODEL_DIR
from ..tasks.tiny.check import label_teacher_pairs, latent_signal, piece_accuracy
from .common import exclusive, hard_sets, load, open_run


@dataclass
class TinyWorldResult:
    pieces: pd.DataFrame  # x, kind, t1_accuracy, greedy_correct
    curves: pd.DataFrame  # step, k, pass_at_k, arm, seed
    final: pd.DataFrame  # arm, seed, k, pass_at_k at the last step
    labels: pd.DataFrame  # the untrained teacher's pairs: question, answer, well_posed, depth, uncertain, correct
    deltas: pd.DataFrame  # dataset, delta, baseline, delta_greedy, decoding (the null spread of the reward)
    summary: dict  # includes null_tau: the tau this null spread implies for batches of meta.g datasets (soar.null_threshold)
    pretrain_info: dict  # how the shipped model was pretrained

    def piece_table(self) -> pd.DataFrame:
        """Fact accuracy per kind: mean, SD and count over facts, at T=1 and greedy."""
        return self.pieces.groupby("kind")[["t1_accuracy", "greedy_correct"]].agg(["mean", "std", "count"]).round(3)

    def arm_table(self) -> pd.DataFrame:
        """Hard-test pass@k (largest k) at the last step per arm: mean, SD and n over seeds."""
        kmax = int(self.final.k.max())
        return self.final[self.final.k == kmax].groupby("arm").pass_at_k.agg(["mean", "std", "count"])

    def stones_vs_hard_only(self, k: int | None = None) -> dict:
        """Stones minus Hard-Only at the last step, pass@k (largest k), paired by student, with its test."""
        k = int(self.final.k.max()) if k is None else k
        f = self.final[self.final.k == k]
        a = f[f.arm == "stones"].set_index("seed").pass_at_k.sort_index()
        b = f[f.arm == "hard-only"].set_index("seed").pass_at_k.sort_index()
        return {"k": k, **stats.compare(a.values, b.values, paired=list(a.index) == list(b.index))}

    def findings(self) -> list[str]:
        """Sentences computed from the tables (the report's closing cell)."""
        pt = self.pieces.groupby("kind").t1_accuracy.mean()
        c = self.stones_vs_hard_only()
        d = self.deltas.delta
        verdict = ("untestable (no variance)" if np.isnan(c["p_value"]) else
                   "established" if c["p_value"] < stats.ALPHA else "not established")
        interval = (f"(95% CI {100 * c['ci_low']:+.1f} to {100 * c['ci_high']:+.1f}, {c['test']}, p = {c['p_value']:.2g}, "
                    if not np.isnan(c["p_value"]) else "(")
        unit = "log-likelihood (nats/token)" if (self.deltas.decoding == "logprob").all() else "accuracy"
        return [
            f"Facts at T=1: common {pt.get('common', np.nan):.2f}, shaky {pt.get('shaky', np.nan):.2f}, confused "
            f"{pt.get('confused', np.nan):.2f} correct (mean over facts).",
            f"Stepping stones vs Hard-Only, hard-test pass@{c['k']} after training: {100 * c['difference']:+.1f} points "
            f"{interval}n = {c['n_a']}): the stepping-stone property is {verdict} in this run.",
            f"Null spread of the reward ({unit} gain from one base-teacher dataset, n = {len(d)}): {d.mean():+.4f} ± "
            f"{d.std(ddof=1):.4f}; the tau it implies for batches of g datasets (an untrained teacher promotes at "
            f"least once in a run with the family-wise rate meta.tau_fwer): {self.summary['null_tau']:.4f}.",
        ]

    def teacher_difficulty(self) -> pd.DataFrame:
        """Well-posed teacher pairs per number of uncertain facts: count and share with a correct answer."""
        wp = self.labels[self.labels.well_posed]
        return wp.groupby("uncertain").agg(n=("correct", "size"), correct_share=("correct", "mean")).round(3)


@exclusive("tiny_world")
def run(cfg, log=print) -> TinyWorldResult:
    if not make_task(cfg.task).world_report:  # decided before anything is loaded or written
        raise ValueError(f"the tiny_world report measures worlds with a report only; run '{cfg.name}' has "
                         f"task.name={cfg.task.name} (`soar-lite run` skips this stage for it)")
    layout = open_run(cfg)
    policy, task = load(cfg)
    wc, bs = cfg.world_check, cfg.model.gen_batch_size
    start = snapshot(policy)
    hard_train, hard_test = hard_sets(cfg)
    timings = {}

    t0 = time.time()
    def seed_of(role, *idx):
        return derive(cfg.seed, "tiny_world", role, *idx)

    pieces = piece_accuracy(policy, task, wc.piece_samples, seed_of("piece_samples"), bs)
    write_table(pieces, layout.table("piece_accuracy"))
    easy = task.problems("easy")
    easy_greedy = float(score_problems(policy, task, easy, decoding="greedy", seed=0, batch_size=bs).mean())
    timings["pieces_s"] = time.time() - t0

    # --- stepping stones vs Hard-Only: fresh students with equal RL steps, several seeds
    stones = [RLItem(p.question, p.answer, stream_key("problem", p.id)) for p in task.problems("stones")]
    hard_items = [RLItem(p.question, p.answer, stream_key("problem", p.id)) for p in hard_train]
    curves = []
    for a, (arm, items) in enumerate((("stones", stones), ("hard-only", hard_items))):
        for seed in range(wc.arms.seeds):
            report_progress(layout, "tiny_world", "arms", a * wc.arms.seeds + seed, 2 * wc.arms.seeds + 1, "students")
            t0 = time.time()
            curve, rewards = train_fresh_student(policy, task, start, synthetic=[], hard_train=items,
                                                 test_problems=hard_test, ecfg=wc.arms,
                                                 seed_of=lambda role, *i, s=seed: seed_of(role, s, *i), batch_size=bs)
            curve["arm"], curve["seed"] = arm, seed
            curves.append(curve)
            timings[f"{arm}_seed{seed}_s"] = time.time() - t0
            final = curve[curve.step == curve.step.max()].set_index("k").pass_at_k
            log(f"{arm} seed {seed}: pass@1 {final.get(1, float('nan')):.3f} pass@32 {final.get(32, float('nan')):.3f}"
                f"  train reward {np.mean(rewards[-10:]):.3f}  ({timings[f'{arm}_seed{seed}_s']:.0f} s)")
    curves = pd.concat(curves, ignore_index=True)
    write_table(curves, layout.table("world_curves"))
    final = curves[curves.step == curves.step.max()][["arm", "seed", "k", "pass_at_k"]]
    write_table(final, layout.table("world_check"))
    restore(policy, start)

    # --- the untrained model as a teacher: difficulty and correctness of its own pairs
    t0 = time.time()
    sampled = sample_qa_pairs(policy, task, wc.datasets * cfg.meta.n,
                              stream=lambda r: (stream_key("world_teacher", r), seed_of("teacher_sample", r)), batch_size=bs)
    pairs = sampled.pairs
    labels = label_teacher_pairs(task, pairs)
    write_table(labels, layout.table("teacher_pairs"))
    timings["teacher_sampling_s"] = time.time() - t0

    # --- latent teaching signal: one inner loop per base-teacher dataset
    t0 = time.time()
    datasets = [pairs[i * cfg.meta.n:(i + 1) * cfg.meta.n] for i in range(wc.datasets)]
    q_r = reward_questions(hard_train, cfg.meta.M, seed_of("reward_questions"))
    deltas = latent_signal(policy, task, start, datasets, rl=cfg.meta.student, inner_steps=cfg.meta.inner_steps, q_r=q_r,
                           seed_of=seed_of, decoding=cfg.meta.reward_decoding, reward_samples=cfg.meta.reward_samples,
                           batch_size=bs)
    write_table(deltas, layout.table("base_teacher_rewards"))
    timings["latent_signal_s"] = time.time() - t0
    m = cfg.meta
    null = null_threshold([deltas.delta.tolist()], g=m.g, window=m.ma_window, steps=m.outer_steps, fwer=m.tau_fwer,
                          sims=m.tau_null_sims, seed=seed_of("tau_null_simulation"))
    summary = {"null_tau": null.tau, "null_rhat_sd": null.rhat_sd,
               "easy_greedy_accuracy": easy_greedy, "n_easy": len(easy), "n_stones": len(stones),
               "n_hard_train": len(hard_train), "n_hard_test": len(hard_test), "teacher_rejected": sampled.rejected,
               "teacher_pairs": len(pairs), "timings_s": {k: round(v, 1) for k, v in timings.items()}}
    write_json(layout.summary("tiny_world"), summary)
    info = json.loads((TINY_MODEL_DIR / "pretrain_info.json").read_text())
    return TinyWorldResult(pieces=pieces, curves=curves, final=final, labels=labels, deltas=deltas, summary=summary,
                           pretrain_info={k: info[k] for k in ("steps", "batch", "lr", "seed", "seconds", "parameters")})

