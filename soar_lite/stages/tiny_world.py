"""Stage `tiny_world` (notebook 02): the tiny world's own evidence, for worlds with a report (`Task.world_report`).

- piece accuracy per kind (common / shaky / confused) at T=1 and greedy, and greedy accuracy on easy chains;
- the stepping-stone property: fresh students (`world_check.arms`, the evaluation's own training code) on the
  oracle stones vs on hard-train alone, hard-test pass@k over training;
- what the untrained model writes as a teacher (the one teacher sampler), labelled by difficulty and correctness;
- the latent teaching signal: each base-teacher dataset (its own answers as references) trains one inner-loop
  student (`student.run_student_job`, the meta-loop's unit), scored on Q_R as the grounded reward would be;
- **the premise gate** (`premise_gate`): the paper's Finding 1 is that SOAR unlocks hard problems where direct RL
  has *no signal* (v3 Fig. 10). The gate measures whether this world has that premise: Hard-Only trained
  `evaluate.extended_steps_factor` x `evaluate.steps` stays flat, oracle stones still lift hard-test, the untrained
  model's on-path success rate on hard-test is bounded (its samples split into on-path successes and lucky final
  values, beside the product model's prediction), and the probe does not select on the luck of the draw. A failed
  check is printed as failed, in words (findings, run index, README); it never stops a run. The quick look
  measures the cheap checks (`world_check.gate_extended: false`).

Writes tables/piece_accuracy.csv, world_curves.csv, world_check.csv, teacher_pairs.csv, base_teacher_rewards.csv,
premise_gate.csv, hard_test_samples.csv and tiny_world/summary.json.
"""
from __future__ import annotations

import dataclasses
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
from ..tasks.tiny.check import hard_sample_split, label_teacher_pairs, latent_signal, piece_accuracy
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
    gate: pd.DataFrame  # the premise gate: check, value, threshold, passed (premise_gate)
    samples_split: pd.DataFrame  # per hard-test problem: samples, on_path, lucky, predicted_on_path (empty: not measured)
    probe_fit: dict  # stats.common_rate_test of the probe's first-batch counts, with kept_share

    def piece_table(self) -> pd.DataFrame:
        """Fact accuracy per kind: mean, SD and count over facts, at T=1 and greedy."""
        return self.pieces.groupby("kind")[["t1_accuracy", "greedy_correct"]].agg(["mean", "std", "count"]).round(3)

    def distinct_curves(self) -> pd.DataFrame:
        """The curves of the students trained, each once: without the gate's name for the Hard-Only arm when the two
        are the same students (world_check.arms.steps = the extended budget)."""
        if self.summary.get("extended_is_hard_only"):
            return self.curves[self.curves.arm != "hard-only-extended"]
        return self.curves

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
        interval = (f"(95% CI {100 * c['ci_low']:+.1f} to {100 * c['ci_high']:+.1f}, {c['test']}, {stats.p_eq(c['p_value'])}, "
                    if not np.isnan(c["p_value"]) else "(")
        unit = "log-likelihood (nats/token)" if (self.deltas.decoding == "logprob").all() else "accuracy"
        return self.gate_findings() + [
            f"Facts at T=1: common {pt.get('common', np.nan):.2f}, shaky {pt.get('shaky', np.nan):.2f}, confused "
            f"{pt.get('confused', np.nan):.2f} correct (mean over facts).",
            f"Stepping stones vs Hard-Only, hard-test pass@{c['k']} after training: {100 * c['difference']:+.1f} points "
            f"{interval}n = {c['n_a']}): the stepping-stone property is {verdict} in this run.",
            f"Null spread of the reward ({unit} gain from one base-teacher dataset, n = {len(d)}): {d.mean():+.4f} ± "
            f"{d.std(ddof=1):.4f}; the tau it implies for batches of g datasets (an untrained teacher promotes at "
            f"least once in a run with the family-wise rate meta.tau_fwer): {self.summary['null_tau']:.4f}.",
        ]

    def gate_findings(self) -> list[str]:
        """The premise gate in words: each check passed or FAILED, what was not measured, the sample split."""
        out = []
        for r, st in zip(self.gate.itertuples(), gate_status(self.gate)):
            word = {"passed": "passed", "failed": "FAILED",
                    "underpowered": "underpowered at this run's size (not a failure of the world)"}[st]
            out.append(f"Premise gate, {GATE_WORDS[r.check]}: {_fmt(r.check, r.value)} (needed {r.threshold}): {word}.")
        missing = [GATE_WORDS[c] for c in GATE_CHECKS if c not in set(self.gate.check)]
        if missing:
            out.append(f"Premise gate, not measured in this run: {'; '.join(missing)} (world_check.gate_extended / "
                       f"gate_samples; the powered gate run measures all).")
        sp = self.samples_split
        if len(sp):
            n = int(sp.samples.sum())
            out.append(f"The untrained model's hard-test samples ({len(sp)} problems x {int(sp.samples.iloc[0])}): "
                       f"{int(sp.on_path.sum())} on-path successes ({sp.on_path.sum() / n:.1e} per sample; the product "
                       f"of the measured per-fact accuracies predicts {sp.predicted_on_path.sum():.2f}, the world's design "
                       f"{sp.designed_on_path.sum():.2g}); {int(sp.lucky.sum())} lucky final values through a wrong "
                       f"chain ({sp.lucky.sum() / n:.1e} per sample), which the verifier does not count.")
        f = self.probe_fit
        if f.get("n"):
            fit = ("no problem of its pool was solved in the first batch: it selects nothing by luck"
                   if not f["solved_share"] else
                   f"its first-batch counts {'fit' if f['p_value'] >= stats.ALPHA else 'do not fit'} one common rate "
                   f"({f['rate']:.1e} per sample; dispersion {f['dispersion']:.2f}, {stats.p_eq(f['p_value'])})"
                   + (": **the probe selects on the luck of the draw**" if f["p_value"] >= stats.ALPHA else ""))
            out.append(f"The probe kept {100 * f['kept_share']:.0f}% of its pool of {f['n']} (fail@{f['samples']} "
                       f"twice); {fit}.")
        return out

    def teacher_difficulty(self) -> pd.DataFrame:
        """Well-posed teacher pairs per number of uncertain facts: count and share with a correct answer."""
        wp = self.labels[self.labels.well_posed]
        return wp.groupby("uncertain").agg(n=("correct", "size"), correct_share=("correct", "mean")).round(3)


GATE_CHECKS = ("hard_only_extended_gain", "stones_gain", "on_path_rate_upper95", "probe_solved_share")
GATE_WORDS = {"hard_only_extended_gain": "Hard-Only trained longer, gain in hard-test pass@k over the untrained model",
              "stones_gain": "oracle stepping stones, gain in hard-test pass@k over the untrained model",
              "on_path_rate_upper95": "the untrained model's on-path success rate per hard-test sample (95% upper bound)",
              "probe_solved_share": "share of the probe's pool solved in its first batch"}


def _fmt(check: str, value: float) -> str:
    if check.endswith("_gain"):
        return f"{value:+.1f} points"
    return f"{value:.2g}" if check == "on_path_rate_upper95" else f"{value:.3f}"


def arm_gains(curves: pd.DataFrame, arm: str, k: int) -> np.ndarray:
    """Per student of `arm`: pass@k at its last step minus its own step-0 pass@k (the untrained model), in points."""
    c = curves[(curves.arm == arm) & (curves.k == k)]
    if c.empty:
        return np.array([])
    first = c[c.step == 0].set_index("seed").pass_at_k
    last = c[c.step == c.step.max()].set_index("seed").pass_at_k
    return 100 * (last - first.reindex(last.index)).to_numpy(dtype=float)


def premise_gate(curves: pd.DataFrame, split: pd.DataFrame, probe_fit: dict, wc) -> pd.DataFrame:
    """The gate's rows (check, value, threshold, passed, status) from what this run measured; a check whose
    measurement is absent (the quick look's extended arm, gate_samples 0, no probe counts) has no row. `wc`: the
    world_check section. Gains are means over students (each student against its own step 0); the on-path bound is
    the exact 95% upper bound of on-path successes over all hard-test samples. A check this run's size cannot decide
    is `underpowered` (passed False, never 'failed'): the on-path bound when zero successes in these samples still
    bound the rate above the threshold (it takes ~3 / threshold samples), the stones gain when the arms train fewer
    than world_check.gate_stones_min_steps steps."""
    rows = []
    k = int(curves.k.max()) if len(curves) else 0
    for check, arm, op, threshold in (("hard_only_extended_gain", "hard-only-extended", "<=", wc.gate_hard_only_max_gain),
                                      ("stones_gain", "stones", ">=", wc.gate_stones_min_gain)):
        gains = arm_gains(curves, arm, k)
        if len(gains):
            value = float(gains.mean())
            ok = bool(value <= threshold if op == "<=" else value >= threshold)
            short = arm == "stones" and wc.arms.steps < wc.gate_stones_min_steps
            rows.append({"check": check, "value": value, "threshold": f"{op} {threshold:+g} (pass@{k}, n = {len(gains)})",
                         "passed": ok, "status": "passed" if ok else "underpowered" if short else "failed"})
    if len(split):
        bound = stats.rate_upper_bound(int(split.on_path.sum()), int(split.samples.sum()))
        ok = bool(bound <= wc.gate_on_path_max)
        short = int(split.on_path.sum()) == 0 and not ok  # zero successes: more samples, not the world, are missing
        rows.append({"check": "on_path_rate_upper95", "value": bound, "threshold": f"<= {wc.gate_on_path_max:g}",
                     "passed": ok, "status": "passed" if ok else "underpowered" if short else "failed"})
    if probe_fit.get("n"):
        share = probe_fit["solved_share"]
        ok = bool(share <= wc.gate_probe_max_solved)
        rows.append({"check": "probe_solved_share", "value": share, "threshold": f"<= {wc.gate_probe_max_solved:g}",
                     "passed": ok, "status": "passed" if ok else "failed"})
    return pd.DataFrame(rows, columns=["check", "value", "threshold", "passed", "status"])


def gate_status(gate: pd.DataFrame) -> pd.Series:
    """Each row's outcome: passed, failed or underpowered (a table written before `status` existed: from `passed`)."""
    if "status" in gate:
        return gate.status.fillna("failed")
    return gate.passed.map({True: "passed", False: "failed"}).fillna("failed")


def gate_outcome(gate: pd.DataFrame) -> str:
    """The gate in a few words: 'passed (4 of 4 checks)', 'FAILED (stones_gain)', or 'not decided at this size
    (underpowered: ...; 1 of 3 passed)'; 'not measured' without rows."""
    if gate is None or gate.empty:
        return "not measured"
    st = gate_status(gate)
    passed = int((st == "passed").sum())
    if (st == "failed").any():
        return f"FAILED ({', '.join(gate.check[st == 'failed'])}; {passed} of {len(gate)} passed)"
    if (st == "underpowered").any():
        return (f"not decided at this size (underpowered: {', '.join(gate.check[st == 'underpowered'])}; "
                f"{passed} of {len(gate)} passed)")
    return f"passed ({passed} of {len(gate)} checks)"


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
    arms = [("stones", stones, wc.arms), ("hard-only", hard_items, wc.arms)]
    ev = cfg.evaluate  # the premise gate: direct RL given extended_steps_factor x the evaluation's budget (v3 Fig. 10)
    extended_steps = ev.extended_steps_factor * ev.steps
    if wc.gate_extended and extended_steps != wc.arms.steps:  # equal steps: the Hard-Only arm *is* that arm
        arms.append(("hard-only-extended", hard_items, dataclasses.replace(wc.arms, steps=extended_steps)))
    for a, (arm, items, ecfg) in enumerate(arms):
        for seed in range(wc.arms.seeds):
            report_progress(layout, "tiny_world", "arms", a * wc.arms.seeds + seed, len(arms) * wc.arms.seeds + 1,
                            "students")
            t0 = time.time()
            curve, rewards = train_fresh_student(policy, task, start, synthetic=[], hard_train=items,
                                                 test_problems=hard_test, ecfg=ecfg,
                                                 seed_of=lambda role, *i, s=seed: seed_of(role, s, *i), batch_size=bs)
            curve["arm"], curve["seed"] = arm, seed
            curves.append(curve)
            timings[f"{arm}_seed{seed}_s"] = time.time() - t0
            final = curve[curve.step == curve.step.max()].set_index("k").pass_at_k
            log(f"{arm} seed {seed}: pass@1 {final.get(1, float('nan')):.3f} pass@32 {final.get(32, float('nan')):.3f}"
                f"  train reward {np.mean(rewards[-10:]):.3f}  ({timings[f'{arm}_seed{seed}_s']:.0f} s)")
    curves = pd.concat(curves, ignore_index=True)
    if wc.gate_extended and extended_steps == wc.arms.steps:  # the same students, under the gate's name too
        curves = pd.concat([curves, curves[curves.arm == "hard-only"].assign(arm="hard-only-extended")],
                           ignore_index=True)
    write_table(curves, layout.table("world_curves"))
    last = curves.groupby("arm").step.transform("max")
    final = curves[(curves.step == last) & (curves.arm != "hard-only-extended")][["arm", "seed", "k", "pass_at_k"]]
    write_table(final, layout.table("world_check"))
    restore(policy, start)

    # --- the premise gate's sample split and the probe's selection
    t0 = time.time()
    split = pd.DataFrame()
    if wc.gate_samples:
        split = hard_sample_split(policy, task, hard_test, wc.gate_samples, seed_of("gate_samples"),
                                  pieces.t1_accuracy.to_numpy(), bs)
        write_table(split, layout.table("hard_test_samples"))
    timings["gate_samples_s"] = time.time() - t0
    probe_fit = {}
    if layout.first_batch_counts.exists():
        counts = pd.read_csv(layout.first_batch_counts).first_correct.to_numpy()
        probe_summary = json.loads(layout.summary("probe").read_text()) if layout.summary("probe").exists() else {}
        probe_fit = {**stats.common_rate_test(counts, cfg.probe.samples), "samples": cfg.probe.samples,
                     "kept_share": probe_summary.get("fail_both_batches", np.nan) / max(len(counts), 1)}
    gate = premise_gate(curves, split, probe_fit, wc)
    write_table(gate, layout.table("premise_gate"))

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
               "teacher_pairs": len(pairs), "extended_is_hard_only": bool(wc.gate_extended and extended_steps == wc.arms.steps),
               "premise_gate_passed": bool(len(gate) and gate.passed.all()), "premise_gate": gate_outcome(gate),
               "premise_gate_checks": len(gate), "timings_s": {k: round(v, 1) for k, v in timings.items()}}
    info = json.loads((TINY_MODEL_DIR / "pretrain_info.json").read_text())
    summary["pretrain"] = {k: info[k] for k in ("steps", "batch", "lr", "seed", "seconds", "parameters", "world")}
    write_json(layout.summary("tiny_world"), summary)
    return TinyWorldResult(pieces=pieces, curves=curves, final=final, labels=labels, deltas=deltas, summary=summary,
                           pretrain_info={k: info[k] for k in ("steps", "batch", "lr", "seed", "seconds", "parameters")},
                           gate=gate, samples_split=split, probe_fit=probe_fit)

