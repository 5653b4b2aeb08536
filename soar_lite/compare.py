"""Compare runs: `soar-lite compare RUN_A RUN_B [...]` and the report it renders (notebook 06_compare).

For two or more run directories (each written by `soar-lite run`): the params that differ; the same methods'
hard-test pass@k side by side, each run against the first with the difference, its 95% interval and a test --
paired t where the seed scheme makes students index-matched (both runs have the same `seed`, so student s of a
method draws the same streams in both), Welch's t otherwise; the teacher-reward and question-diagnostics curves of
their meta-training runs; and, for reruns of one params file (the same values apart from name and results_dir), a
tolerance check: docs/running.md's Determinism section says how far two machines' numbers may drift (meta-training
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


PASS_AT_K_COLUMNS = ("method", "seed", "k", "pass_at_k")


def _read_config(path: Path) -> dict:
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as e:
        raise CompareError(f"{path}: cannot be read as YAML ({type(e).__name__})") from None
    if not isinstance(cfg, dict) or not cfg:
        raise CompareError(f"{path}: not a run's config (expected the mapping of sections `soar-lite run` records, got "
                           f"{'an empty file' if cfg is None or cfg == {} else type(cfg).__name__})")
    return cfg


def _read_pass_at_k(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=list(PASS_AT_K_COLUMNS))
    try:
        pk = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise CompareError(f"{path}: cannot be read as a table ({type(e).__name__})") from None
    missing = [c for c in PASS_AT_K_COLUMNS if c not in pk.columns]
    if missing:
        raise CompareError(f"{path}: not a pass@k table (no column {', '.join(missing)})")
    if pk[list(PASS_AT_K_COLUMNS[1:])].apply(pd.to_numeric, errors="coerce").isna().any().any():
        raise CompareError(f"{path}: seed, k and pass_at_k must be numbers in every row")
    doubled = pk.duplicated(list(PASS_AT_K_COLUMNS[:3]))
    if doubled.any():
        r = pk[doubled].iloc[0]
        raise CompareError(f"{path}: {int(doubled.sum())} rows repeat a (method, seed, k) (first: {r.method}, seed "
                           f"{r.seed}, k {r.k})")
    return pk


def load_run(path) -> RunData:
    """A run directory's config, pass@k table and meta-training metrics; a damaged one is a CompareError naming
    the file."""
    layout = RunLayout(Path(path))
    if not layout.config.exists():
        raise CompareError(f"{path}: not a run directory (no config.yaml; run soar-lite run PARAMS first)")
    cfg = _read_config(layout.config)
    pk = _read_pass_at_k(layout.table("pass_at_k"))
    meta = {}
    for d in sorted(layout.base.glob("meta*")):
        if (d / "metrics.jsonl").exists():
            rows = read_jsonl(d / "metrics.jsonl")
            if any(not isinstance(r, dict) or "step" not in r or "reward_mean" not in r for r in rows):
                raise CompareError(f"{d / 'metrics.jsonl'}: a row without step or reward_mean")
            meta[d.name] = pd.DataFrame(rows)
    return RunData(name=Path(path).name, path=Path(path), config=cfg, pass_at_k=pk, meta=meta)


def params_diff(a: RunData, b: RunData) -> pd.DataFrame:
    """Every params value that differs between two runs (name, results_dir, description and deviations aside). A key
    that one run's config lacks because it was rendered before the key existed, while the other holds its default,
    is a schema change, not a difference in what ran: left out (`schema_only_keys` lists them)."""
    fa, fb = flat(a.config), flat(b.config)
    schema = set(schema_only_keys(a, b))
    keys = sorted(k for k in set(fa) | set(fb) if k.split(".")[0] not in NOT_PARAMS and fa.get(k) != fb.get(k)
                  and k not in schema)
    return pd.DataFrame([{"key": k, "a": fa.get(k, "(absent)"), "b": fb.get(k, "(absent)")} for k in keys],
                        columns=["key", "a", "b"])


def schema_only_keys(a: RunData, b: RunData) -> list[str]:
    """Keys present in one run's config only, with today's default value there: the other run predates the key."""
    import dataclasses

    from .config import RunConfig

    defaults = flat(dataclasses.asdict(RunConfig()))
    fa, fb = flat(a.config), flat(b.config)
    return sorted(k for k in set(fa) ^ set(fb) if (fa.get(k, fb.get(k)) == defaults.get(k, object())))


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
                         "p_value": r["p_value"], "count_a": len(xa), "count_b": len(xb), "test": r["test"]})
    return pd.DataFrame(rows)


def rerun_check(a: RunData, b: RunData, reward_tol: float = 1e-6, pass_tol: float = 0.05) -> dict:
    """For two renders of the same params: the largest difference of a meta-training reward (R̂ of a step, same
    folder and step) and of a single student's pass@k (same method, seed, k), each against its tolerance, over the
    rows both runs hold; the rows one run holds and the other lacks are counted and named. `within_tolerance` only
    when something was compared, nothing is missing on either side and every gap is inside its tolerance. `same`
    is False (and nothing is checked) when the params differ."""
    if len(params_diff(a, b)):
        return {"same_params": False}
    reward_gaps, missing_steps = [], []
    for folder in sorted(set(a.meta) | set(b.meta)):
        ma, mb = a.meta.get(folder, pd.DataFrame(columns=["step"])), b.meta.get(folder, pd.DataFrame(columns=["step"]))
        both = ma.merge(mb, on="step", suffixes=("_a", "_b"))
        reward_gaps += list((both.reward_mean_a - both.reward_mean_b).abs()) if len(both) else []
        for side, mine, theirs in (("a", ma, mb), ("b", mb, ma)):
            lost = sorted(set(theirs.step) - set(mine.step))
            if lost:
                missing_steps.append(f"{folder} steps {lost[0]}..{lost[-1]} ({len(lost)}) missing in {side}")
    keys = ["method", "seed", "k"]
    pk = a.pass_at_k.merge(b.pass_at_k, on=keys, suffixes=("_a", "_b"), how="outer", indicator=True)
    pass_gaps = list((pk[pk._merge == "both"].pass_at_k_a - pk[pk._merge == "both"].pass_at_k_b).abs())
    missing_rows = []
    for side, flag in (("a", "right_only"), ("b", "left_only")):
        lost = pk[pk._merge == flag]
        if len(lost):
            per_method = lost.groupby("method").size()
            missing_rows.append(f"{len(lost)} rows missing in {side} (" + ", ".join(
                f"{m}: {n}" for m, n in per_method.items()) + ")")
    out = {"same_params": True, "reward_steps": len(reward_gaps), "student_rows": len(pass_gaps),
           "max_reward_gap": float(max(reward_gaps)) if reward_gaps else np.nan, "reward_tolerance": reward_tol,
           "max_pass_at_k_gap": float(max(pass_gaps)) if pass_gaps else np.nan, "pass_at_k_tolerance": pass_tol,
           "missing": missing_steps + missing_rows}
    compared = bool(reward_gaps or pass_gaps)
    out["within_tolerance"] = bool(compared and not out["missing"]
                                   and (not reward_gaps or out["max_reward_gap"] <= reward_tol)
                                   and (not pass_gaps or out["max_pass_at_k_gap"] <= pass_tol))
    out["verdict"] = ("incomplete" if out["missing"] else "nothing to compare" if not compared
                      else "within tolerance" if out["within_tolerance"] else "OUTSIDE tolerance")
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
        schema = schema_only_keys(base, other)
        if schema:
            out.append(f"  keys one run predates (the other holds their defaults; not a difference): {', '.join(schema)}")
        only = [f"{m} ({side} only)" for side, x, y in ((base.name, base, other), (other.name, other, base))
                for m in dict.fromkeys(x.pass_at_k.method) if m not in set(y.pass_at_k.method)]
        if only:
            out.append("  methods in one run only (not compared): " + ", ".join(only))
        cmp = compare_pass_at_k(base, other)
        if len(cmp):
            kmax = int(cmp.k.max())
            for _, r in cmp[cmp.k == kmax].iterrows():
                ci = (f"95% CI {100 * r.ci_low:+.1f} to {100 * r.ci_high:+.1f}, {r.test}, {stats.p_eq(r.p_value)}"
                      if not np.isnan(r.p_value) else "untestable: the differences do not vary"
                      if r.test == "untestable" else f"{r.test}: too few students for an interval")
                out.append(f"  {r.method} pass@{kmax}: {100 * r.mean_a:.1f} -> {100 * r.mean_b:.1f} "
                           f"({100 * r.difference:+.1f} points, {ci}, n = {r.count_a} -> {r.count_b})")
        check = rerun_check(base, other)
        if check["same_params"] and not (check["reward_steps"] or check["student_rows"]):
            out.append(f"  rerun check: {check['verdict']} -- no meta-training step or student row is in both runs"
                       + (f" ({'; '.join(check['missing'])})" if check["missing"] else "") + ": not a rerun check")
        elif check["same_params"]:
            out.append(f"  rerun check: largest reward gap {check['max_reward_gap']:.2g} over {check['reward_steps']} "
                       f"steps (tolerance {check['reward_tolerance']:g}), largest single-student pass@k gap "
                       f"{check['max_pass_at_k_gap']:.3g} over {check['student_rows']} rows (tolerance "
                       f"{check['pass_at_k_tolerance']:g}): {check['verdict']}"
                       + (f" -- {'; '.join(check['missing'])}" if check["missing"] else ""))
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

