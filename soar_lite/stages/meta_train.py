"""Stage `meta_train` (notebook 03): Algorithm 1 for each teacher kind in `meta.teachers` and each of `meta.runs`
teacher seeds -- the grounded SOAR teacher into meta/, the intrinsic (learnability) Intrinsic-T teacher into
meta_intrinsic/, Grounded-T without promotion into meta_no_promotion/, SOAR at the paper's grouping (the credit-
granularity control arm, meta.paper_grouping) into meta_paper_grouping/; further seeds into <dir>_run<i>/ (paper §2,
§3, App. B.8). The loop is `soar_lite.soar.MetaTrainer`; this module runs it and reads back what it wrote.

Does the teacher learn? Read three ways, none of them the hard-test set: the reward's trend at a fixed inner-step
count; the world's own question diagnostics per outer step (`Task.question_diagnostics`, e.g. the tiny world's
share of useful stepping stones) with a Spearman trend; and, at the end, those diagnostics of the trained teacher
against the untrained one on one sampling stream (diagnostics.json). With `meta.snr_draws` the stage also estimates
the teacher-gradient SNR per outer step at the run's and the paper's grouping (soar_lite.snr; tables/teacher_snr.csv).
The claims about teachers are tested across teachers, the unit they are about (`teacher_level`,
tables/teacher_level.csv): does each kind's trained teacher beat the untrained one on the world's headline diagnostic,
and do the grounded teachers gain more than each other kind's (the frozen-teacher control included)? Ours: the paper
reports no such test.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .. import stats as st
from ..executor import run_jobs, run_pooled
from ..rundir import RunDirError, read_json, read_jsonl, report_progress, write_json, write_table
from ..checkpoint import check_meta_dir
from ..soar import PROMOTING, MetaTrainer
from ..tasks import make_task
from .common import display_path, exclusive, hard_sets, open_run, scale_label

# a teacher whose sample fails the format check at this rate (or more) at some outer step is called collapsed
COLLAPSE_REJECT_RATE = 0.4

# evaluation's teacher methods -> the meta-trained teacher they sample (None = the untrained model)
@dataclass
class MetaRun:
    """What one meta-training run wrote (read back from its folder, so a fresh kernel sees the same)."""

    teacher: str  # grounded | intrinsic | grounded-no-promotion
    run: int  # teacher seed index
    metrics: pd.DataFrame  # one row per outer step (see MetaTrainer._outer_step)
    pq: list[dict]  # Promotion Questions: question, answer, stage, step
    promotions: list[dict]  # step, dataset, student, reward, hard_train_score, hard_train_greedy_acc
    initial_hard_train_acc: float | None  # the base student's greedy accuracy on hard-train (stage 0)
    initial_hard_train_score: float | None  # and its reward-metric score there
    tau: float | None  # the threshold the run used (calibrated from tau_null when meta.tau_null_steps > 0)
    tau_null: list[list[float]]  # the calibration's null steps: the dataset rewards R_k of each
    tau_null_summary: dict  # soar.NullThreshold's fields (empty for a fixed tau)
    end_diagnostics: dict  # diagnostics.json: the world's question diagnostics, trained vs untrained teacher
    dir: Path
    stopped: dict = field(default_factory=dict)  # stopped.json: why the run stopped early, with the format acceptance
    tau_stages: list = field(default_factory=list)  # every stage's calibration (meta.tau_per_stage): inner_steps,
    #                                                 promotions, tau, null
    seconds: float = 0.0  # spent in this session

    def student_rollouts(self, meta) -> int:
        """Student RLOO rollouts this run's inner loops consumed (`meta`: the run's meta section): per outer step g x r
        students x its inner steps x batch_questions x group_size, the tau calibrations' null steps at their inner-step
        counts (each an outer step without an update; one per stage with meta.tau_per_stage) and the confirming
        students of each promotion. The compute-matched Hard-Only arm trains this many."""
        per_step = meta.student.batch_questions * meta.student.group_size
        total = 0
        if not self.metrics.empty:
            for kj, inner in zip(self.metrics.rewards_kj, self.metrics.inner_steps):
                total += sum(len(row) for row in kj) * int(inner) * per_step  # g x r students this step
        stages = self.tau_stages or [{"null": self.tau_null, "inner_steps": meta.inner_steps}]
        for stage in stages:  # one R_k per dataset of each null step; meta.r students each
            total += sum(len(null_step) for null_step in stage["null"]) * meta.r * stage["inner_steps"] * per_step
        for p in self.promotions:  # the confirming students of a promotion (meta.promotion_students)
            if p.get("confirm"):
                total += len(p["confirm"]["rewards"]) * int(p["inner_steps"]) * per_step
        return int(total)

    def diagnostics(self) -> pd.DataFrame:
        """One row per outer step: the world's question diagnostics of that step's teacher sample, the sample's
        format-rejection rate, and the guard's record of the update that followed."""
        if self.metrics.empty:
            return pd.DataFrame()
        m = self.metrics
        out = pd.DataFrame(list(m["diagnostics"])) if "diagnostics" in m else pd.DataFrame(index=m.index)
        out.insert(0, "step", m.step.values)
        out["reject_rate"] = (m.rejected / (m.rejected + m.accepted)).values
        if "guard" in m:
            g = pd.DataFrame(list(m["guard"]))
            out["kl_prev"], out["guard_retries"], out["kept_previous"] = g.kl_prev, g.retries, g.kept_previous
            out["reject_after"] = g.reject_after
        if "teacher_kl" in m:  # the teacher's KL from its initial model, as each step's update measured it
            out["kl_initial"] = m.teacher_kl.values
        return out

    @property
    def collapsed(self) -> bool:
        """A step's sample failed the format check at COLLAPSE_REJECT_RATE or more."""
        d = self.diagnostics()
        return bool(len(d) and (d.reject_rate >= COLLAPSE_REJECT_RATE).any())

    @property
    def guard_events(self) -> int:
        """Outer steps whose update the collapse guard undid at least once."""
        d = self.diagnostics()
        return int((d.guard_retries > 0).sum()) if "guard_retries" in d else 0

    def status(self) -> str:
        """How reports name this teacher: 'stopped ...', 'collapsed at steps a-b (...), recovered | not recovered',
        'guarded (N updates retried)' or 'stable'. A collapse is a step whose sample failed the format check at
        COLLAPSE_REJECT_RATE or more; the teacher recovered when its last step's rate is below a quarter of that."""
        if self.stopped:
            return (f"stopped at outer step {self.stopped['step']} (format acceptance "
                    f"{self.stopped['format_acceptance']:.3f} of {self.stopped['samples']} samples)")
        if self.collapsed:
            d = self.diagnostics()
            bad = d.step[d.reject_rate >= COLLAPSE_REJECT_RATE]
            where = f"step {bad.min()}" if len(bad) == 1 else f"steps {bad.min()}-{bad.max()}"
            last = float(d.reject_rate.iloc[-1])
            outcome = "recovered" if last < COLLAPSE_REJECT_RATE / 4 else "not recovered"
            return (f"collapsed at {where} (format rejections up to {d.reject_rate.max():.2f} of a step's samples), "
                    f"{outcome} (last step {last:.2f})")
        return f"guarded ({self.guard_events} updates retried)" if self.guard_events else "stable"

    def null_simulation(self, cfg) -> tuple[np.ndarray, np.ndarray]:
        """The calibration's simulated null runs again (same seed): (R̂ of every simulated step, the largest moving
        average of every simulated run) -- tau is the (1 - meta.tau_fwer) quantile of the second."""
        from ..seeds import derive
        from ..soar import moving_average_paths, null_runs

        s = self.tau_null_summary
        rng = np.random.default_rng(derive(cfg.seed, "meta_train", "tau_null_simulation", self.run))
        r_hat = null_runs(self.tau_null, s["g"], s["steps"], s["sims"], rng)
        return r_hat.ravel(), moving_average_paths(r_hat, cfg.meta.ma_window).max(axis=1)

    def diagnostic_trend(self, key: str = "useful_share") -> dict:
        """Spearman trend of a question diagnostic over outer steps (NaN where the world logs none)."""
        d = self.diagnostics()
        n = int(d[key].notna().sum()) if key in d else 0
        if n < 3:
            return {"spearman_rho": np.nan, "p_value": np.nan, "first": np.nan, "last": np.nan, "n_steps": n}
        rho, p = (np.nan, np.nan) if d[key].nunique() < 2 else stats.spearmanr(d.step, d[key])
        half = len(d) // 2
        return {"spearman_rho": float(rho), "p_value": float(p), "first": float(d[key].iloc[:half].mean()),
                "last": float(d[key].iloc[half:].mean()), "n_steps": n}

    def end_comparison(self, key: str = "useful_share") -> dict:
        """The trained teacher's share vs the untrained teacher's on diagnostics.json's fresh samples: difference
        with its 95% interval and a two-proportion test (common random numbers make the samples positively
        correlated, so treating them as independent is conservative). {} where not measured."""
        e = self.end_diagnostics
        if not e or key not in e.get("trained", {}) or key not in e.get("untrained", {}):
            return {}
        a, b = e["trained"], e["untrained"]
        return {"trained": a[key], "untrained": b[key], "n_trained": a["n"], "n_untrained": b["n"],
                **st.two_proportions(a[key], a["n"], b[key], b["n"])}

    def stage_table(self) -> pd.DataFrame:
        """Stage 0 (base student) and each promotion: the baseline on all of hard-train, greedy accuracy (Fig. 6) and the
        run's own reward metric (what SOAR-PS is chosen by; in the tiny world greedy accuracy stays 0), and what the
        promotion cleared: its moving average, the tau and the inner steps its rewards were measured at, and with
        meta.promotion_students the confirming students' rewards (the median promoted)."""
        rows = [{"stage": 0, "step": 0, "hard_train_greedy_acc": self.initial_hard_train_acc,
                 "hard_train_score": self.initial_hard_train_score}]
        rows += [{"stage": i + 1, "step": p["step"], "hard_train_greedy_acc": p["hard_train_greedy_acc"],
                  "hard_train_score": p.get("hard_train_score"), "moving_average": p.get("moving_average"),
                  "tau": p.get("tau"), "inner_steps": p.get("inner_steps"),
                  "confirm_rewards": (p.get("confirm") or {}).get("rewards")} for i, p in enumerate(self.promotions)]
        return pd.DataFrame(rows)

    @property
    def name(self) -> str:
        return self.teacher + (f" run {self.run}" if self.run else "")

    def learning(self) -> dict:
        """Does the teacher learn? The reward over outer steps at the most common inner-step count (the reward
        grows with inner steps, so steps with other counts are left out), its Spearman trend, and the teacher's
        KL from its start (logged at each update) at the first and last steps."""
        m = self.metrics
        if m.empty:
            return {}
        inner = int(m.inner_steps.mode().iloc[0])
        at = m[m.inner_steps == inner]
        rho, p = stats.spearmanr(at.step, at.reward_mean) if len(at) >= 3 and at.reward_mean.nunique() > 1 \
            else (np.nan, np.nan)
        trend, end = self.diagnostic_trend(), self.end_comparison()
        g, n, r = self.grouping()
        return {"run": self.name, "grouping": f"{g}x{n}x{r}", "inner_steps": inner, "n_steps": len(at),
                "spearman_rho": float(rho), "p_value": float(p),
                "reward_first_half": float(at.reward_mean.iloc[: len(at) // 2].mean()) if len(at) >= 2 else np.nan,
                "reward_second_half": float(at.reward_mean.iloc[len(at) // 2:].mean()) if len(at) >= 2 else np.nan,
                "useful_rho": trend["spearman_rho"], "useful_p": trend["p_value"],
                "useful_end_trained": end.get("trained", np.nan), "useful_end_untrained": end.get("untrained", np.nan),
                "useful_end_diff_ci": (end.get("ci_low", np.nan), end.get("ci_high", np.nan)),
                "kl_first": float(m.teacher_kl.iloc[0]), "kl_last": float(m.teacher_kl.iloc[-1]),
                "promotions": len(self.promotions), "tau": self.tau, "status": self.status()}

    def grouping(self) -> tuple[int, int, int]:
        """(g, n, r) the run used, read from its first logged step."""
        m = self.metrics
        rk = m.rewards_kj.iloc[0]
        return len(rk), int(m.accepted.iloc[0]) // len(rk), len(rk[0])

    def pq_examples(self, n: int = 6) -> dict[int, str]:
        """The first `n` Promotion Questions of each promotion stage, as 'question=answer'."""
        out: dict[int, list[str]] = {}
        for r in self.pq:
            out.setdefault(r["stage"], []).append(f"{r['question']}={r['answer']}")
        return {stage: "  ".join(qs[:n]) for stage, qs in out.items()}


@dataclass
class MetaTrainResult:
    runs: dict[tuple[str, int], MetaRun] = field(default_factory=dict)  # (teacher kind, run) -> run
    snr: pd.DataFrame = field(default_factory=pd.DataFrame)  # teacher-gradient SNR per grouping (meta.snr_draws)
    scale: str = "toy"  # the run's scale label (common.scale_label): every teacher-level verdict carries it

    @property
    def grounded(self) -> MetaRun | None:
        return self.runs.get(("grounded", 0))

    @property
    def intrinsic(self) -> MetaRun | None:
        return self.runs.get(("intrinsic", 0))

    def learning_table(self) -> pd.DataFrame:
        """One row per run: the reward trend at fixed inner steps, the useful-share trend and its end comparison with
        the untrained teacher, the teacher's KL from its start, promotions, tau, status (stable / guarded / collapsed)."""
        return pd.DataFrame([r.learning() for r in self.runs.values() if not r.metrics.empty])

    def diagnostic_keys(self) -> list[str]:
        """The question diagnostics the world logs (`Task.question_diagnostics`' keys, less its count `n`), in the
        order the world returns them."""
        keys: dict[str, None] = {}
        for r in self.runs.values():
            for row in r.metrics.get("diagnostics", pd.Series(dtype=object)):
                if isinstance(row, dict):
                    keys.update(dict.fromkeys(k for k, v in row.items() if k != "n" and isinstance(v, (int, float))))
            for side in ("trained", "untrained"):
                keys.update(dict.fromkeys(k for k, v in r.end_diagnostics.get(side, {}).items()
                                          if k != "n" and isinstance(v, (int, float))))  # not at_step_size's record
        return list(keys)

    def end_table(self, keys=None) -> pd.DataFrame:
        """Per run: each question diagnostic (default: every one the world logs) of the trained and the untrained
        teacher on the same fresh samples."""
        rows = []
        keys = self.diagnostic_keys() if keys is None else keys
        for r in self.runs.values():
            e = r.end_diagnostics
            if not e:
                continue
            for key in keys:
                if key in e["trained"] and key in e["untrained"]:
                    rows.append({"run": r.name, "diagnostic": key, "untrained": e["untrained"][key],
                                 "trained": e["trained"][key], "samples": e["samples"]})
        return pd.DataFrame(rows)

    def guard_table(self) -> pd.DataFrame:
        """Every outer step whose teacher update the collapse guard undid: run, step, retries, KL and rejections."""
        rows = []
        for r in self.runs.values():
            d = r.diagnostics()
            if "guard_retries" in d:
                for _, x in d[d.guard_retries > 0].iterrows():
                    rows.append({"run": r.name, "step": int(x.step), "retries": int(x.guard_retries),
                                 "kept_previous": bool(x.kept_previous), "reject_before": x.reject_rate})
        return pd.DataFrame(rows)

    def findings(self) -> list[str]:
        """Sentences computed from the runs (the report's closing cell)."""
        out = []
        for r in self.runs.values():
            if r.stopped:
                out.append(f"{r.name}: {r.status()}: {r.stopped['reason']}")
            lr = r.learning()
            if not lr:
                continue
            tau = f"; tau {lr['tau']:.4f}" if lr["tau"] is not None and r.teacher in PROMOTING else ""
            halves = (f" (mean {lr['reward_first_half']:+.4f} in the first half, {lr['reward_second_half']:+.4f} in "
                      f"the second)" if np.isfinite(lr["reward_first_half"]) and np.isfinite(lr["reward_second_half"])
                      else "")
            text = (f"{r.name} ({lr['grouping']}, {lr['status']}): at {lr['inner_steps']} inner steps the reward "
                    f"{trend_words(lr['spearman_rho'], lr['p_value'], lr['n_steps'])}{halves}; "
                    f"{lr['promotions']} promotions{tau}.")
            t = r.diagnostic_trend()
            if t["n_steps"] >= 3:
                text += (f" Useful share of its samples {trend_words(t['spearman_rho'], t['p_value'], t['n_steps'])} "
                         f"({t['first']:.3f} in the first half, {t['last']:.3f} in the second).")
            e = r.end_comparison()
            if e and np.isnan(e["p_value"]):
                text += (f" At the end, on {e['n_trained']} / {e['n_untrained']} format-valid fresh samples: useful "
                         f"share {e['trained']:.3f} vs the untrained teacher's {e['untrained']:.3f}: no difference "
                         f"to test (no variance).")
            elif e:
                verdict = "beyond the sampling error" if e["ci_low"] > 0 else \
                    "below the untrained teacher beyond the sampling error" if e["ci_high"] < 0 else "not established"
                text += (f" At the end, on {e['n_trained']} / {e['n_untrained']} format-valid fresh samples: useful "
                         f"share {e['trained']:.3f} vs the untrained teacher's {e['untrained']:.3f} "
                         f"({e['difference']:+.3f}, 95% CI {e['ci_low']:+.3f} to {e['ci_high']:+.3f}, "
                         f"{st.p_eq(e['p_value'])}): {verdict}.")
            out.append(text)
        out += teacher_level_words(self.teacher_level())
        out += self.snr_findings()
        return out

    def teacher_level(self) -> pd.DataFrame:
        """`teacher_level` on these runs' end diagnostics (tables/teacher_level.csv)."""
        return teacher_level({name: r.end_diagnostics for name, r in self.runs.items() if r.end_diagnostics},
                             scale=self.scale)

    def snr_findings(self) -> list[str]:
        out = []
        for r in self.snr.itertuples():
            steps = "never (SNR <= 0)" if not np.isfinite(r.steps_for_snr_1) else f"about {r.steps_for_snr_1:,.0f}"
            out.append(f"Teacher-gradient SNR per outer step at g = {r.g}, n = {r.n}, r = {r.r}: {r.snr:.4f} (95% CI "
                       f"{r.ci_low:.4f} to {r.ci_high:.4f}, {r.draws} draws of the untrained teacher): {steps} outer "
                       f"steps before the summed signal exceeds the noise.")
        return out




TEACHER_LEVEL_COLUMNS = ["comparison", "measure", "difference", "ci_low", "ci_high", "p_value", "n_a", "n_b", "unit",
                         "k_a", "k_b", "verdict", "rests_on", "scale", "test", "note"]


def headline_diagnostic(end: dict) -> str | None:
    """The world's first question diagnostic (the order `Task.question_diagnostics` returns them: the tiny world's
    useful share) that the runs' diagnostics.json hold for both teachers; None where none is measured. The format
    rejection rate (`teacher.reject_rate`, written before the world's keys) is the teacher's, not the world's."""
    for e in end.values():
        for k, v in e.get("trained", {}).items():
            if k not in ("n", "reject_rate") and isinstance(v, (int, float)) and k in e.get("untrained", {}):
                return k
    return None


def teacher_level(end: dict[tuple[str, int], dict], key: str | None = None, scale: str = "toy") -> pd.DataFrame:
    """The claims about teachers, tested across teachers (the unit they are about; ours, the paper reports no test of
    them). `end`: (teacher kind, run) -> that run's diagnostics.json; `key`: the diagnostic read (default the world's
    headline one, `headline_diagnostic`).

    - '<kind> teachers vs the untrained teacher': each trained teacher's end share against the untrained teacher's
      on the same fresh samples (common random numbers), paired t over the kind's teachers -- does the teacher learn?
    - 'grounded vs <kind> teachers': the grounded teachers' gain over the untrained teacher against another kind's,
      Welch t over teachers. Against the frozen-teacher control (never updated, so its gain is 0 by construction)
      this is the teacher-level reading of 'the teacher learned, not just selection'.

    Verdicts as everywhere (`stats.verdict`: >= MIN_REPLICATES teachers per arm for 'reproduced'; 'untestable'
    without variance). Rows: TEACHER_LEVEL_COLUMNS; empty where no run measured a diagnostic."""
    key = key or headline_diagnostic(end)
    if key is None:
        return pd.DataFrame(columns=TEACHER_LEVEL_COLUMNS)
    by_kind: dict[str, list[tuple[float, float]]] = {}
    for (kind, _), e in sorted(end.items()):
        if key in e.get("trained", {}) and key in e.get("untrained", {}):
            by_kind.setdefault(kind, []).append((float(e["trained"][key]), float(e["untrained"][key])))
    samples = sorted({int(e.get("samples", 0)) for e in end.values()})
    each = f", {samples[0]:,} fresh samples each" if len(samples) == 1 and samples[0] else ""
    rows = []

    def row(comparison, a, b, paired, note=""):
        r = st.compare(a, b, paired)
        ka, kb = len(a), len(b)
        word = st.verdict(r["difference"], r["p_value"], min(ka, kb), r["test"])
        if word == "suggestive":
            word = f"suggestive ({min(ka, kb)} teachers)"
        rests = f"{ka} teachers, paired{each}" if paired else f"{ka} / {kb} teachers{each}"
        rows.append({"comparison": comparison, "measure": key, **{c: r[c] for c in ("difference", "ci_low", "ci_high",
                                                                                      "p_value")},
                     "n_a": ka, "n_b": kb, "unit": "teacher", "k_a": ka, "k_b": kb, "verdict": word,
                     "rests_on": rests, "scale": scale, "test": f"{r['test']} on teachers", "note": note})

    for kind, pairs in by_kind.items():
        trained, untrained = zip(*pairs)
        frozen = "the frozen teacher never moves: its samples are the untrained teacher's" \
            if kind == "grounded-frozen" else ""
        row(f"{kind} teachers vs the untrained teacher", list(trained), list(untrained), True, frozen)
    if "grounded" in by_kind:
        gain = lambda pairs: [t - u for t, u in pairs]  # noqa: E731
        for kind, pairs in by_kind.items():
            if kind != "grounded":
                row(f"grounded vs {kind} teachers", gain(by_kind["grounded"]), gain(pairs), False,
                    "each teacher's gain over the untrained teacher")
    return pd.DataFrame(rows, columns=TEACHER_LEVEL_COLUMNS)


def run_end_diagnostics(run_dir: Path) -> dict[tuple[str, int], dict]:
    """(teacher kind, run) -> diagnostics.json of every meta-training folder of a run directory (rundir.META_DIRS
    and their _run<i> seeds): what `teacher_level` reads, from a rendered run's committed outputs."""
    import re

    from ..rundir import META_DIRS

    out = {}
    for kind, base in META_DIRS.items():
        for d in sorted(Path(run_dir).glob(f"{base}*")):
            m = re.fullmatch(re.escape(base) + r"(?:_run(\d+))?", d.name)
            if m and (d / "diagnostics.json").exists():
                out[(kind, int(m.group(1) or 0))] = read_json(d / "diagnostics.json")
    return out


def teacher_level_words(table: pd.DataFrame) -> list[str]:
    """One sentence per row of `teacher_level`: verdict, difference in points of the diagnostic with its interval,
    test and p, and what it rests on."""
    out = []
    for r in table.itertuples():
        ci = (f", 95% CI {100 * r.ci_low:+.1f} to {100 * r.ci_high:+.1f}, {r.test}, {st.p_eq(r.p_value)}"
              if np.isfinite(r.p_value) else f", {r.test} (no variance between teachers)")
        note = f"; {r.note}" if isinstance(r.note, str) and r.note else ""
        out.append(f"{r.comparison} ({r.measure} at the end, across teachers): {r.verdict} -- "
                   f"{100 * r.difference:+.1f} points{ci}; {r.rests_on}; {r.scale}{note}.")
    return out


def trend_words(rho: float, p: float, n: int) -> str:
    """'rises over N outer steps (Spearman rho +0.87, p = 6.1e-07)', 'falls ...', 'shows no trend ...', 'is constant
    over N outer steps' (no rank correlation exists), or 'cannot be tested for a trend (fewer than 3 steps)'."""
    if n < 3:
        return "cannot be tested for a trend (fewer than 3 steps)"
    if np.isnan(rho) or np.isnan(p):
        return f"is constant over {n} outer steps (no trend to test)"
    trend = ("rises" if rho > 0 else "falls") if p < 0.05 else "shows no trend"
    return f"{trend} over {n} outer steps (Spearman rho {rho:+.2f}, {st.p_eq(p)})"


def runs_of(cfg) -> list[tuple[str, int]]:
    return [(kind, i) for kind in cfg.meta.teachers for i in range(cfg.meta.runs_for(kind))]


def _worker_log(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)

    def log(msg):
        with open(path, "a") as f:
            f.write(msg + "\n")
    return log


def meta_job(cfg, kind: str, i: int, resume: bool, log=None) -> float:
    """One meta-training run (teacher kind, teacher seed i) into its own folder; returns its seconds. A run in a
    worker process logs into <run dir>/run.log (and its metrics.jsonl as always)."""
    layout = cfg.layout.meta(kind, i)
    log = log or _worker_log(layout.dir / "run.log")
    hard_train, _ = hard_sets(cfg)
    log(f"== {kind} teacher, run {i}")
    t0 = time.time()
    MetaTrainer(cfg, make_task(cfg.task), hard_train, layout, teacher=kind, run=i, log=log).run(resume=resume)
    return time.time() - t0


def snr_path(cfg, grouping, draws: int) -> Path:
    g, n, r = grouping
    return cfg.run_dir / "meta_snr" / f"snr_g{g}_n{n}_r{r}_K{draws}.json"


def snr_job(cfg, grouping: tuple[int, int, int], draws: int, log=None) -> dict:
    """The teacher-gradient SNR at one grouping (soar_lite.snr.estimate), kept in meta_snr/ and reused when the same
    grouping and draw count are asked again with the same values a meta-training run depends on (config.resume_key,
    recorded beside it; anything else is recomputed)."""
    import hashlib
    import json

    from ..config import resume_key
    from ..snr import estimate

    path = snr_path(cfg, grouping, draws)
    key = hashlib.sha256(json.dumps(resume_key(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]
    if path.exists():
        kept = read_json(path)
        if kept.get("config_key") == key:
            return {k: v for k, v in kept.items() if k != "config_key"}
    log = log or _worker_log(path.parent / "snr.log")
    hard_train, _ = hard_sets(cfg)
    row = estimate(cfg, make_task(cfg.task), hard_train, grouping, draws, log=log).row()
    write_json(path, {**row, "config_key": key})
    return row


def teacher_snr(cfg, groupings=None, draws: int | None = None, log=print) -> pd.DataFrame:
    """`soar-lite snr`: the SNR for each grouping (default: the params' and meta.paper_grouping), one after another."""
    from ..snr import groupings as default_groupings

    hard_sets(cfg)  # the probe must have run
    draws = draws or cfg.meta.snr_draws
    return pd.DataFrame([snr_job(cfg, gr, draws, log) for gr in (groupings or default_groupings(cfg))])


def preflight(cfg, resume: bool) -> dict[tuple[str, int], str]:
    """What each meta-training run of the config will do ("fresh" or "resume"), or the RunDirError that stops the
    stage, decided before anything is written (the CLI calls it before papermill starts)."""
    return {(kind, i): check_meta_dir(cfg, cfg.layout.meta(kind, i), resume) for kind, i in runs_of(cfg)}


def _job(cfg, what: str, *args) -> object:
    """One job of the stage on a worker: a meta-training run or an SNR estimate."""
    return meta_job(cfg, *args) if what == "meta" else snr_job(cfg, *args)


@exclusive("meta_train")
def run(cfg, resume: bool = False, log=print) -> MetaTrainResult:
    """Meta-train every (teacher kind, teacher seed) of the config, each resumable from its own checkpoints: on
    `executor.workers` local processes that share every run's inner-loop students (`executor.run_pooled`: a worker
    whose run waits, or that has no run left, trains any run's students, so every core stays busy until the last
    run ends), or (executor.kind ray) one after another here with every outer step's g*r students on the Ray
    actors. Each run's seeds come from its own index: the same results in any order. With
    meta.snr_draws > 0 the SNR estimates run as further jobs beside them."""
    from ..snr import groupings

    preflight(cfg, resume)  # refuse before anything is written
    layout = open_run(cfg)
    hard_sets(cfg)  # fail here, before any worker starts, if the probe has not run
    runs = runs_of(cfg)
    in_process = cfg.executor.kind == "ray" or cfg.executor.workers <= 1
    here = log if in_process else None
    snr_groupings = groupings(cfg) if cfg.meta.snr_draws else []
    jobs = [(cfg, "meta", kind, i, resume, here) for kind, i in runs]
    jobs += [(cfg, "snr", gr, cfg.meta.snr_draws, here) for gr in snr_groupings]
    for kind, i in runs:  # every job's total from the start, so the progress line's ETA counts the queued ones too
        null = cfg.meta.tau_null_steps if kind in PROMOTING and cfg.meta.promote else 0
        report_progress(layout, "meta_train", cfg.layout.meta(kind, i).dir.name, 0, null + cfg.meta.outer_steps,
                        "outer steps")
    for g, n, r in snr_groupings:
        report_progress(layout, "meta_train", f"snr_g{g}_n{n}_r{r}", 0, cfg.meta.snr_draws, "outer steps")

    def done(job, out):
        if job[1] == "meta":
            log(f"== {job[2]} teacher, run {job[3]}: done in {out / 60:.1f} min")
        else:
            log(f"== SNR at g, n, r = {job[2]}: {out['snr']:.4f} ({out['seconds'] / 60:.1f} min)")

    outputs = (run_jobs(_job, jobs, 1, on_done=done) if in_process
               else run_pooled(_job, jobs, cfg.executor.workers, on_done=done))
    result = MetaTrainResult(scale=scale_label(cfg))
    for (kind, i), sec in zip(runs, outputs):
        result.runs[(kind, i)] = read(cfg, kind, i)
        result.runs[(kind, i)].seconds = sec
    if snr_groupings:
        result.snr = pd.DataFrame(outputs[len(runs):])
        write_table(result.snr, layout.table("teacher_snr"))
    levels = result.teacher_level()
    if len(levels):
        write_table(levels, layout.table("teacher_level"))
    return result


def read(cfg, teacher: str = "grounded", run: int = 0) -> MetaRun:
    """What one meta-training run wrote (empty frames and lists where it has not run)."""
    p = cfg.layout.meta(teacher, run)
    state = read_json(p.state) if p.state.exists() else {}
    return MetaRun(teacher=teacher, run=run, metrics=pd.DataFrame(read_jsonl(p.metrics)),
                   pq=read_json(p.pq) if p.pq.exists() else [],
                   promotions=read_json(p.promotions) if p.promotions.exists() else [],
                   initial_hard_train_acc=state.get("initial_hard_train_acc"),
                   initial_hard_train_score=state.get("initial_hard_train_score"), tau=state.get("tau"),
                   tau_null=state.get("tau_null", []), tau_null_summary=state.get("tau_null_summary", {}),
                   tau_stages=state.get("tau_stages", []),
                   end_diagnostics=read_json(p.diagnostics) if p.diagnostics.exists() else {}, dir=p.dir,
                   stopped=read_json(p.stopped) if p.stopped.exists() else {})


def unfinished(cfg, teacher: str, run: int = 0) -> str | None:
    """Why the meta-training run (teacher, run) of `cfg`'s run directory has not finished, or None when it has
    (state.json at meta.outer_steps with its pq.json, or stopped early with stopped.json: a collapsed teacher is
    reported as such) or holds no checkpoint at all (the evaluation names that as a missing teacher)."""
    p = cfg.layout.meta(teacher, run)
    if p.stopped.exists() or not p.state.exists():
        return None
    try:
        step = int(read_json(p.state).get("step", -1))
    except (OSError, ValueError, TypeError, AttributeError):
        return f"{display_path(p.state)} cannot be read"
    if step >= cfg.meta.outer_steps and p.pq.exists():
        return None
    return f"{display_path(p.dir)} holds the teacher of outer step {step} of {cfg.meta.outer_steps}"


def check_finished(cfg, kinds, what: str) -> None:
    """Refuse (RunDirError, one line naming the run and the step it holds) to read a teacher whose meta-training has
    not finished, unless evaluate.allow_unfinished_teacher (a deviation the params name) says to."""
    if cfg.evaluate.allow_unfinished_teacher:
        return
    for kind in dict.fromkeys(k for k in kinds if k is not None):
        for i in range(cfg.meta.runs_for(kind)):
            why = unfinished(cfg, kind, i)
            if why:
                raise RunDirError(f"{what}: {why}: meta-training has not finished (finish it with `soar-lite run PARAMS "
                                  f"--only meta_train --resume`, or set evaluate.allow_unfinished_teacher: true and "
                                  f"name it in deviations:)")


def trained_teacher_path(cfg, teacher: str, run: int = 0) -> Path:
    """The checkpoint a trained teacher is sampled from: the grounded teacher at evaluate.teacher_step (paper:
    step 170 for HARP, 200 for MATH), else the last step; the baselines at their last step ("trained 200 steps", §3)."""
    p = cfg.layout.meta(teacher, run)
    if teacher == "grounded" and cfg.evaluate.teacher_step:
        return p.teacher_at(cfg.evaluate.teacher_step)
    return p.teacher
