"""Compare runs: `soar-lite compare RUN_A RUN_B [...]` and the report it renders (notebook 06_compare).

For two or more run directories (each written by `soar-lite run`): the params that differ; the same methods'
hard-test pass@k side by side, each run against the first with the difference, its 95% interval and a test --
paired t where the seed scheme makes students index-matched (both runs have the same `seed`, so student s of a
method draws the same streams in both), Welch's t otherwise; the teacher-reward and question-diagnostics curves of
their meta-training runs; and, for reruns of one params file (the same values apart from name and results_dir), a
tolerance check: the README's Determinism section says how far two machines' numbers may drift (meta-training
rewards ~1e-7; a single student's pass@k a few points), and this says whether they did.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .config import flat
from .rundir import RunLayout, read_jsonl

NOT_PARAMS = ("name", "results_dir", "description", "deviations")  # keys that do not change what a run computes


@dataclass
class RunData:
    name: str
    path: Path
    config: dict
    pass_at_k: pd.DataFrame  # method, seed, k, pass_at_k ({} when the run was not evaluated)
    meta: dict[str, pd.DataFrame] = field(default_factory=dict)  # meta folder -> its metrics rows


class CompareError(ValueError):
    """A run directory cannot be compared (one line naming it)."""


def load_run(path) -> RunData:
    import yaml

    layout = RunLayout(Path(path))
    if not layout.config.exists():
        raise CompareError(f"{path}: not a run directory (no config.yaml; run soar-lite run PARAMS first)")
    cfg = yaml.safe_load(layout.config.read_text()) or {}
    pk_path = layout.table("pass_at_k")
    pk = pd.read_csv(pk_path) if pk_path.exists() else pd.DataFrame(columns=["method", "seed", "k", "pass_at_k"])
    meta = {d.name: pd.DataFrame(read_jsonl(d / "metrics.jsonl")) for d in sorted(layout.base.glob("meta*"))
            if (d / "metrics.jsonl").exists()}
    return RunData(name=Path(path).name, path=Path(path), config=cfg, pass_at_k=pk, meta=meta)


def params_diff(a: RunData, b: RunData) -> pd.DataFrame:
    """Every params value that differs between two runs (name, results_dir, description and deviations aside)."""
    fa, fb = flat(a.config), flat(b.config)
    keys = sorted(k for k in set(fa) | set(fb) if k.split(".")[0] not in NOT_PARAMS and fa.get(k) != fb.get(k))
    return pd.DataFrame([{"key": k, "a": fa.get(k, "(absent)"), "b": fb.get(k, "(absent)")} for k in keys],
                        columns=["key", "a", "b"])


def paired_design(a: RunData, b: RunData) -> bool:
    """Students are index-matched across the two runs when both derive every draw from the same run seed."""
    return a.config.get("seed") == b.config.get("seed")


def compare_pass_at_k(a: RunData, b: RunData) -> pd.DataFrame:
    """Per method in both runs and k: mean pass@k of a (the reference) and b, b - a with its 95% interval and test
    (pass@k in [0, 1])."""
    rows = []
    paired = paired_design(a, b)
    methods = [m for m in dict.fromkeys(a.pass_at_k.method) if m in set(b.pass_at_k.method)]
    for m in methods:
        for k in sorted(set(a.pass_at_k.k) & set(b.pass_at_k.k)):
            xa = a.pass_at_k[(a.pass_at_k.method == m) & (a.pass_at_k.k == k)].set_index("seed").pass_at_k.sort_index()
            xb = b.pass_at_k[(b.pass_at_k.method == m) & (b.pass_at_k.k == k)].set_index("seed").pass_at_k.sort_index()
            both = paired and list(xa.index) == list(xb.index)
            r = stats.compare(xb.values, xa.values, both)
            rows.append({"method": m, "k": int(k), "mean_a": float(xa.mean()), "mean_b": float(xb.mean()),
                         "difference": r["difference"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "p_value": r["p_value"], "n_a": r["n_a"], "n_b": r["n_b"], "test": r["test"]})
    return pd.DataFrame(rows)


def rerun_check(a: RunData, b: RunData, reward_tol: float = 1e-6, pass_tol: float = 0.05) -> dict:
    """For two renders of the same params: the largest difference of a meta-training reward (R̂ of a step, same
    folder and step) and of a single student's pass@k (same method, seed, k), each against its tolerance. `same`
    is False (and nothing is checked) when the params differ."""
    if len(params_diff(a, b)):
        return {"same_params": False}
    reward_gaps = []
    for folder, ma in a.meta.items():
        mb = b.meta.get(folder)
        if mb is not None and len(ma) and len(mb):
            both = ma.merge(mb, on="step", suffixes=("_a", "_b"))
            reward_gaps += list((both.reward_mean_a - both.reward_mean_b).abs())
    keys = ["method", "seed", "k"]
    pk = a.pass_at_k.merge(b.pass_at_k, on=keys, suffixes=("_a", "_b"))
    pass_gaps = list((pk.pass_at_k_a - pk.pass_at_k_b).abs())
    out = {"same_params": True, "reward_steps": len(reward_gaps), "student_rows": len(pass_gaps),
           "max_reward_gap": float(max(reward_gaps)) if reward_gaps else np.nan, "reward_tolerance": reward_tol,
           "max_pass_at_k_gap": float(max(pass_gaps)) if pass_gaps else np.nan, "pass_at_k_tolerance": pass_tol}
    out["within_tolerance"] = bool((not reward_gaps or out["max_reward_gap"] <= reward_tol)
                                   and (not pass_gaps or out["max_pass_at_k_gap"] <= pass_tol))
    return out


def diagnostics_frame(run: RunData, key: str = "useful_share") -> pd.DataFrame:
    """step, the run, the meta folder, and a question diagnostic (or the reward) of every logged outer step."""
    rows = []
    for folder, m in run.meta.items():
        for _, r in m.iterrows():
            d = r.get("diagnostics")
            value = r.reward_mean if key == "reward_mean" else d.get(key, np.nan) if isinstance(d, dict) else np.nan
            rows.append({"run": run.name, "folder": folder, "step": int(r.step), key: value})
    return pd.DataFrame(rows)


def summary_lines(runs: list[RunData]) -> list[str]:
    """What `soar-lite compare` prints: per run against the first, the params diff, each method's pass@k at the
    largest k with its interval, and the rerun check where the params are the same."""
    base, out = runs[0], []
    for other in runs[1:]:
        diff = params_diff(base, other)
        out.append(f"{other.name} vs {base.name}: " + (
            "the same params" if diff.empty else "params differ in " + ", ".join(
                f"{r.key} ({r.a!r} -> {r.b!r})" for _, r in diff.iterrows())))
        cmp = compare_pass_at_k(base, other)
        if len(cmp):
            kmax = int(cmp.k.max())
            for _, r in cmp[cmp.k == kmax].iterrows():
                ci = (f"95% CI {100 * r.ci_low:+.1f} to {100 * r.ci_high:+.1f}, {r.test}, p = {r.p_value:.2g}"
                      if not np.isnan(r.p_value) else f"{r.test}: too few students for an interval")
                out.append(f"  {r.method} pass@{kmax}: {100 * r.mean_a:.1f} -> {100 * r.mean_b:.1f} "
                           f"({100 * r.difference:+.1f} points, {ci}, n = {r.n_a}/{r.n_b})")
        check = rerun_check(base, other)
        if check["same_params"]:
            out.append(f"  rerun check: largest reward gap {check['max_reward_gap']:.2g} over {check['reward_steps']} "
                       f"steps (tolerance {check['reward_tolerance']:g}), largest single-student pass@k gap "
                       f"{check['max_pass_at_k_gap']:.3g} over {check['student_rows']} rows (tolerance "
                       f"{check['pass_at_k_tolerance']:g}): {'within' if check['within_tolerance'] else 'OUTSIDE'} "
                       f"tolerance")
    return out


def write_summary(runs: list[RunData], out_dir: Path) -> None:
    """The tables behind the comparison report (out_dir/tables), written atomically."""
    from .rundir import write_json, write_table

    base = runs[0]
    for other in runs[1:]:
        tag = f"{other.name}_vs_{base.name}".replace("/", "-")
        write_table(params_diff(base, other), out_dir / "tables" / f"params_diff_{tag}.csv")
        write_table(compare_pass_at_k(base, other), out_dir / "tables" / f"pass_at_k_{tag}.csv")
        write_json(out_dir / "tables" / f"rerun_check_{tag}.json", rerun_check(base, other))
    (out_dir / "compare.txt").write_text("\n".join(summary_lines(runs)) + "\n")

