"""The generated blocks of README.md and docs/*.md: every number in them comes from a rendered run's tables or from
the cost model, so none is typed by hand. A block sits between

    <!-- generated: NAME -->  ...  <!-- end generated: NAME -->

    python scripts/readme_tables.py --write   # regenerate every block in README.md and docs/*.md
    python scripts/readme_tables.py --check   # exit 1 and name the blocks that drifted (tests/test_readme.py)

Blocks: verdicts (the README's results at a glance: each paper claim, its verdict, the unit it rests on, the scale
label and the report), results-<run>-pass-at-k, results-<run>-comparisons, results-<run>-meta, results-<run>-findings (the closing
findings cell of its reports 03-05, quoted), results-<run>-world, results-<run>-gate (the premise gate),
results-<run>-snr, results-<run>-summary (for each committed run under results/),
teacher-snr-earlier-world (docs/data/teacher_snr_60e5870.csv: the SNR measured on the earlier world, kept as data),
cost-paper (the cost model on the shipped paper params).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from soar_lite.stats import p_eq, p_text

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
# results/tiny-full's teacher-gradient SNR estimate on the earlier tiny world (meta_train at commit 60e5870,
# 2026-11-30), kept as committed data: the powered re-render on the new world does not re-estimate it (snr_draws 0)
SNR_EARLIER_WORLD = REPO / "docs" / "data" / "teacher_snr_60e5870.csv"


def documents() -> list[Path]:
    """The files whose generated blocks this script keeps: the README and every page under docs/."""
    return [README] + sorted((REPO / "docs").glob("*.md"))
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)", re.S)


def pass_at_k_table(run: Path) -> str:
    from soar_lite.stats import mean_sd

    pk = pd.read_csv(run / "tables" / "pass_at_k.csv")
    ks = sorted(pk.k.unique())
    out = ["| method | n | " + " | ".join(f"pass@{k} (%)" for k in ks) + " |", "|---|---|" + "---|" * len(ks)]
    for m in dict.fromkeys(pk.method):
        cells = [mean_sd(pk[(pk.method == m) & (pk.k == k)].pass_at_k).rsplit(" (", 1)[0] for k in ks]
        out.append(f"| {m} | {pk[pk.method == m].seed.nunique()} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def comparisons_table(run: Path) -> str:
    c = pd.read_csv(run / "tables" / "comparisons.csv")
    kmax = int(c.k.max())
    out = [f"| comparison (pass@{kmax}) | difference (points) | 95% CI | test | p | n | power for the paper's ratio |",
           "|---|---|---|---|---|---|---|"]
    for _, r in c[c.k == kmax].iterrows():
        if r.test == "untestable":
            out.append(f"| {r.comparison} | {100 * r.difference:+.1f} | — | untestable | — | {r.n_a}/{r.n_b} | {r.note} |")
            continue
        power = f"{r.power:.2f} ({r.paper_ratio:.2f}x)" if pd.notna(r.power) else (r.get("note") if isinstance(r.get("note"), str) else "—")
        ci = f"{100 * r.ci_low:+.1f} to {100 * r.ci_high:+.1f}" if pd.notna(r.ci_low) else "—"
        p = p_text(r.p_value) if pd.notna(r.p_value) else "—"
        out.append(f"| {r.comparison} | {100 * r.difference:+.1f} | {ci} | {r.test} | {p} | {r.n_a}/{r.n_b} | {power} |")
    return "\n".join(out)


def meta_lines(run: Path) -> str:
    """One line per meta-training run of the recorded config: teacher kind and seed, grouping, promotions (and tau
    where the kind promotes), the teacher's status, the useful share's trend over outer steps and its end-of-run
    comparison with the untrained teacher (diagnostics.json)."""
    import yaml

    from soar_lite.rundir import RunLayout
    from soar_lite.stages.meta_train import PROMOTING, MetaRun

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    meta, out = cfg["meta"], []
    for kind in meta["teachers"]:
        for i in range(meta["runs"]):
            d = RunLayout(run).meta(kind, i).dir
            if not (d / "metrics.jsonl").exists():
                continue
            m = pd.DataFrame([json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()])
            end = json.loads((d / "diagnostics.json").read_text()) if (d / "diagnostics.json").exists() else {}
            r = MetaRun(teacher=kind, run=i, metrics=m, pq=[], promotions=[], initial_hard_train_acc=None,
                        initial_hard_train_score=None, tau=None, tau_null=[], tau_null_summary={},
                        end_diagnostics=end, dir=d)
            g, n, k = meta["paper_grouping"] if kind == "grounded-paper-grouping" else (meta["g"], meta["n"], meta["r"])
            promotes = kind in PROMOTING and meta["promote"]
            line = (f"- `{d.name}` ({kind}, teacher seed {i}, g × n × r = {g} × {n} × {k}): {len(m)} outer steps, "
                    + (f"{int(m.promotions.iloc[-1])} promotions (tau {m.tau.iloc[-1]:.4f})" if promotes else
                       "does not promote") + f"; {r.status()}")
            t = r.diagnostic_trend()
            if not np.isnan(t["p_value"]):
                line += (f"; useful share {t['first']:.3f} (first half) → {t['last']:.3f} (second half), Spearman rho "
                         f"{t['spearman_rho']:+.2f} ({p_eq(t['p_value'])})")
            e = r.end_comparison()
            if e:
                line += (f"; at the end {e['trained']:.3f} vs the untrained teacher's {e['untrained']:.3f} "
                         f"({e['difference']:+.3f}, 95% CI {e['ci_low']:+.3f} to {e['ci_high']:+.3f}, two-proportion "
                         f"{p_eq(e['p_value'])}; {end['samples']:,} fresh samples each)")
            out.append(line)
    return "\n".join(out)


def world_table(run: Path) -> str:
    """The tiny world's measured properties (report 01 and 02's tables), one row each."""
    t = run / "tables"
    summary = json.loads((run / "tiny_world" / "summary.json").read_text())
    info = summary.get("pretrain")  # the model the run measured (recorded since the world of issue 36)
    probe = json.loads((run / "probe" / "summary.json").read_text())
    pieces = pd.read_csv(t / "piece_accuracy.csv").groupby("kind").agg(t1=("t1_accuracy", "mean"),
                                                                          greedy=("greedy_correct", "mean"),
                                                                          n=("x", "size"))
    levels = pd.read_csv(t / "pass_at_k_by_level.csv")
    lv = levels[levels.k == 1].set_index("level").pass_at_k
    wc = pd.read_csv(t / "world_check.csv")
    kmax = int(wc.k.max())
    arm = lambda a, k: wc[(wc.arm == a) & (wc.k == k)].pass_at_k  # noqa: E731
    pairs = pd.read_csv(t / "teacher_pairs.csv")
    d = pd.read_csv(t / "base_teacher_rewards.csv")
    sh = probe.get("shared_structure") or {}
    rows = [
        ("pretraining (`make tiny-model`)", f"{info['steps']:,} steps × {info['batch']} lines, {info['seconds']:.0f} s, "
                                            f"{info['parameters']:,} parameters" if info else
         "not recorded in this run (rendered before runs recorded it, with an earlier world's model)"),
        ("fact accuracy at T=1 / greedy", ", ".join(f"{k} {r.t1:.3f} / {r.greedy:.2f} (n={int(r.n)})" for k, r in pieces.iterrows())),
        ("easy chains (common facts only, depth ≤ 3), greedy", f"{summary['easy_greedy_accuracy']:.2f} ({summary['n_easy']} problems)"),
        ("base pass@1 per level", ", ".join(f"{k} {v:.3f}" for k, v in lv.items())),
        ("hard set (fail@128 twice)", f"{probe['n_pool']} candidates, {probe['fail_first_batch']} fail the first batch, "
                                      f"{probe['leaked_in_confirmation']} of those solved by the second: **{probe['fail_both_batches']} "
                                      f"hard ({probe['n_train']} train / {probe['n_test']} test)**; "
                                      f"{100 * sh.get('test_subchains_of_train', 0):.0f}% of hard-test chains inside a hard-train "
                                      f"chain, {100 * sh.get('test_pieces_on_train_paths', 0):.0f}% of hard-test facts on "
                                      f"hard-train paths"),
        (f"oracle stones vs Hard-Only, hard-test pass@{kmax} at the last step",
         f"{arm('stones', kmax).mean():.3f} ± {arm('stones', kmax).std():.3f} vs {arm('hard-only', kmax).mean():.3f} ± "
         f"{arm('hard-only', kmax).std():.3f} (n = {len(arm('stones', kmax))} each; pass@1 {arm('stones', 1).mean():.3f} vs "
         f"{arm('hard-only', 1).mean():.3f})"),
        ("the untrained model as teacher", f"{summary['teacher_pairs']} pairs, {summary['teacher_rejected']} format "
                                          f"rejections, {100 * pairs.well_posed.mean():.0f}% well posed, "
                                          f"{100 * pairs.correct.mean():.0f}% correct"),
        (f"latent teaching signal: {len(d)} base-teacher datasets of {summary['teacher_pairs'] // max(len(d), 1)}, one inner loop each",
         f"Δ greedy hard-train accuracy = 0 for {(d.delta_greedy == 0).sum()}/{len(d)}; Δ log-likelihood of the true "
         f"chains > 0 for {(d.delta > 0).sum()}/{len(d)}, {d.delta.mean():+.4f} ± {d.delta.std():.4f} nats/token; the "
         f"tau it implies for g = 64 datasets: {summary['null_tau']:.4f}"),
    ]
    return "\n".join(["| property | measured |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])


def gate_table(run: Path) -> str:
    """The premise gate of a run's report 02 (tables/premise_gate.csv), with the untrained model's hard-test samples
    split into on-path successes and lucky final values (tables/hard_test_samples.csv) and the probe's selection."""
    from soar_lite.stages.tiny_world import GATE_WORDS, gate_outcome, gate_status

    g = pd.read_csv(run / "tables" / "premise_gate.csv")
    out = [f"Premise gate: **{gate_outcome(g)}**.", "",
           "| check | measured | needed | outcome |", "|---|---|---|---|"]
    for r, st in zip(g.itertuples(), gate_status(g)):
        value = f"{r.value:+.1f} points" if r.check.endswith("_gain") else f"{r.value:.2g}"
        out.append(f"| {GATE_WORDS[r.check]} | {value} | {r.threshold} | {'**failed**' if st == 'failed' else st} |")
    sp = run / "tables" / "hard_test_samples.csv"
    if sp.exists():
        sp = pd.read_csv(sp)
        n = int(sp.samples.sum())
        out += ["", f"The untrained model on hard-test, {len(sp)} problems × {int(sp.samples.iloc[0]):,} samples ({n:,}): "
                    f"{int(sp.on_path.sum())} on-path successes (product of the measured per-fact accuracies: "
                    f"{sp.predicted_on_path.sum():.2g} expected; the world's design: {sp.designed_on_path.sum():.2g}), "
                    f"{int(sp.lucky.sum()):,} lucky final values through a wrong chain ({sp.lucky.sum() / n:.1e} per "
                    f"sample, not counted by the verifier)."]
    return "\n".join(out)


def run_summary(run: Path) -> str:
    """A run's wall time per stage (provenance), its probe, and every meta-training run that stopped early."""
    from soar_lite.stages import STAGES

    out = []
    for f in sorted((run / "provenance").glob("*.json"), key=lambda f: list(STAGES).index(f.stem) if f.stem in STAGES else 99):
        p = json.loads(f.read_text())
        out.append(f"- {p['stage']}: {p['seconds']:,.0f} s, rendered from commit {p['commit']}"
                   + (" with uncommitted changes" if p.get("uncommitted_changes") else ""))
    pr = run / "probe" / "summary.json"
    if pr.exists():
        s = json.loads(pr.read_text())
        out.append(f"- probe: {s['fail_both_batches']} of {s['n_pool']} problems fail both batches "
                   f"({s['n_train']} hard-train / {s['n_test']} hard-test)")
    for st in sorted(run.glob("meta*/stopped.json")):
        s = json.loads(st.read_text())
        out.append(f"- `{st.parent.name}` stopped at outer step {s['step']}: format acceptance of the teacher "
                   f"{s['format_acceptance']:.3f} ({round(s['format_acceptance'] * s['samples'])} of {s['samples']} "
                   f"fresh samples)")
    return "\n".join(out)


def snr_table(csv: Path) -> str:
    t = pd.read_csv(csv)
    out = ["| g × n × r | teacher samples per step | SNR per outer step | 95% CI | outer steps for SNR 1 | draws | mean R_k | "
           "SD of R_k within a step |", "|---|---|---|---|---|---|---|---|"]
    for _, r in t.iterrows():
        steps = "never (SNR ≤ 0)" if not pd.notna(r.steps_for_snr_1) or r.steps_for_snr_1 == float("inf") or r.snr <= 0 \
            else f"{r.steps_for_snr_1:,.0f}"
        out.append(f"| {r.g:.0f} × {r.n:.0f} × {r.r:.0f} | {r.g * r.n:.0f} | {r.snr:.4f} | {r.ci_low:.4f} to {r.ci_high:.4f} | {steps} | "
                   f"{r.draws:.0f} | {r.reward_mean:+.4f} | {r.reward_sd_between:.4f} |")
    return "\n".join(out)


def report_findings(run: Path) -> str:
    """The closing findings cell of each rendered report of the run (computed in the report from its tables),
    quoted with the report's name: the README repeats the report's own words, never retypes them."""
    out = []
    for nb in sorted(run.glob("0[3-5]_*.ipynb")):
        if nb.name.endswith(".partial.ipynb"):
            continue
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code" and c.get("outputs")]
        texts = []
        for o in cells[-1]["outputs"] if cells else []:
            data = o.get("data", {})
            texts.append("".join(data.get("text/markdown") or o.get("text") or ""))
        body = "\n".join(t.strip() for t in texts if t.strip().startswith("- "))
        if body:
            out.append(f"From [{nb.stem}]({run.relative_to(REPO).as_posix()}/{nb.stem}.html):\n\n{body}")
    return "\n\n".join(out)


def teacher_level_table(run: Path) -> pd.DataFrame:
    """The claims about teachers, across teachers: report 03's tables/teacher_level.csv; a run rendered before that
    table existed has it computed here, by the function report 03 calls (`meta_train.teacher_level`), from its
    committed diagnostics.json files, with the scale label its comparisons carry."""
    from soar_lite.report_index import scale_of
    from soar_lite.stages.meta_train import run_end_diagnostics, teacher_level

    path, cmp = run / "tables" / "teacher_level.csv", run / "tables" / "comparisons.csv"
    if path.exists():
        return pd.read_csv(path)
    return teacher_level(run_end_diagnostics(run), scale=scale_of(pd.read_csv(cmp) if cmp.exists() else None))


def teacher_level_lines(run: Path) -> str:
    """One sentence per teacher-level comparison of a run (`teacher_level_table`), and where it was computed."""
    from soar_lite.stages.meta_train import teacher_level_words

    where = ("report 03's tables/teacher_level.csv" if (run / "tables" / "teacher_level.csv").exists() else
             "computed by scripts/readme_tables.py with `meta_train.teacher_level` from the run's diagnostics.json "
             "files (the run was rendered before report 03 wrote tables/teacher_level.csv)")
    return "\n".join([f"Across teachers ({where}):", ""] +
                     [f"- {s}" for s in teacher_level_words(teacher_level_table(run))])


def verdict_table(runs: list[Path], gate: Path) -> str:
    """The README's results at a glance: `soar_lite.report_index.verdict_rows` on the committed runs' comparisons
    (`runs` in order: the powered run, then the runs that take its teachers; the first run holding a claim's
    comparison decides it) and the premise gate of the powered run where it measured one, else of `gate`'s run,
    linked to their reports."""
    from soar_lite.report_index import skipped_arms, verdict_rows
    from soar_lite.stages import STAGES

    def read(path: Path):
        return pd.read_csv(path) if path.exists() else None

    tables = [read(run / "tables" / "comparisons.csv") for run in runs]
    tables = [t.assign(run=run.name) for run, t in zip(runs, tables) if t is not None]
    gate_run = next((run for run in runs if (run / "tables" / "premise_gate.csv").exists()), gate)
    by_name = {run.name: run for run in runs}

    def link(stage: str, run: str | None) -> str:
        where = gate_run if stage == "tiny_world" else by_name.get(run, runs[0])
        nb = STAGES[stage].notebook.replace(".ipynb", "")
        return f"[{where.name}/{nb}]({where.relative_to(REPO).as_posix()}/{nb}.html)"

    skipped = {}
    for run in reversed(runs):  # the first run that skipped an arm names it
        skipped.update(skipped_arms(run / "evaluate" / "summary.json", run.name))
    comparisons = pd.concat(tables, ignore_index=True) if tables else None
    teachers = [t.assign(run=run.name) for run in runs if len(t := teacher_level_table(run))]
    return "\n".join(verdict_rows(comparisons, read(gate_run / "tables" / "premise_gate.csv"), link, skipped,
                                  pd.concat(teachers, ignore_index=True) if teachers else None))


def run_time(run: Path) -> str:
    """A run's measured wall time from its provenance (first stage started -> last stage finished, minute resolution),
    with the date and commit: the README's timing line for `make reproduce`, never typed by hand."""
    import datetime

    provs = [json.loads(f.read_text()) for f in (run / "provenance").glob("*.json")]
    if not provs:
        return "not measured"
    at = lambda t: datetime.datetime.strptime(t, "%Y-%m-%d %H:%M UTC")  # noqa: E731
    start, end = min(at(p["started"]) for p in provs), max(at(p["finished"]) for p in provs)
    minutes = (end - start).total_seconds() / 60
    commits = sorted({p["commit"] for p in provs})
    return (f"{minutes:.0f} min of stages ({start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC, `soar-lite run params/tiny.yaml "
            f"--jobs 2` at commit {', '.join(commits)}; the sum of the stages' own times is "
            f"{sum(p['seconds'] for p in provs) / 60:.1f} min, two run side by side)")


def cost_table() -> str:
    from soar_lite.config import load_config
    from soar_lite.cost import cost_report

    def h(x: float) -> str:
        return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.3f}"

    out = ["| params | student rollouts per run | GPU-hours per outer step | meta-training run | whole pipeline "
           "(probe, every meta-training run, every fresh student) |", "|---|---|---|---|---|"]
    for name in ("paper-math", "paper-math-full", "paper-harp", "paper-harp-full", "colab-small"):
        cfg = load_config(name)
        rows, _ = cost_report(cfg)
        if not rows:
            continue
        lo, hi = rows[0], rows[-1]  # the paper's efficiency at 1,500 and at 1,900 GPU-hours per run
        n_lo, n_hi = lo["student_rollouts_per_run"]
        count = lambda n: f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n:,.0f}"  # noqa: E731
        out.append(f"| {name}.yaml | {count(n_lo)}-{count(n_hi)} | {h(lo['h_per_outer_step'][0])}-"
                   f"{h(hi['h_per_outer_step'][1])} | {h(lo['h_per_meta_run'][0])}-{h(hi['h_per_meta_run'][1])} | "
                   f"{h(lo['h_pipeline'][0])}-{h(hi['h_pipeline'][1])} |")
    return "\n".join(out)


def blocks() -> dict[str, str]:
    out = {"cost-paper": cost_table(), "quicklook-time": run_time(REPO / "results" / "tiny"), "verdicts": verdict_table(
        [REPO / "results" / "tiny-full", REPO / "results" / "tiny-ablations"], REPO / "results" / "tiny-gate")}
    for run in sorted((REPO / "results").glob("*")):
        if (run / "provenance").is_dir():
            out[f"results-{run.name}-summary"] = run_summary(run)
        if (run / "tables" / "pass_at_k.csv").exists():
            out[f"results-{run.name}-pass-at-k"] = pass_at_k_table(run)
            out[f"results-{run.name}-comparisons"] = comparisons_table(run)
            out[f"results-{run.name}-meta"] = meta_lines(run)
            if len(teacher_level_table(run)):
                out[f"results-{run.name}-teacher-level"] = teacher_level_lines(run)
            out[f"results-{run.name}-findings"] = report_findings(run)
        if (run / "tiny_world" / "summary.json").exists():
            out[f"results-{run.name}-world"] = world_table(run)
        if (run / "tables" / "premise_gate.csv").exists():
            out[f"results-{run.name}-gate"] = gate_table(run)
        if (run / "tables" / "teacher_snr.csv").exists():
            out[f"results-{run.name}-snr"] = snr_table(run / "tables" / "teacher_snr.csv")
    if SNR_EARLIER_WORLD.exists():
        out["teacher-snr-earlier-world"] = snr_table(SNR_EARLIER_WORLD)
    return out


def for_document(doc: Path, generated: dict[str, str]) -> dict[str, str]:
    """The blocks with their links relative to `doc` (a page under docs/ links ../results/...)."""
    up = "../" * len(doc.resolve().parent.relative_to(REPO).parts)
    return {k: v.replace("](results/", f"]({up}results/") for k, v in generated.items()} if up else generated


def render(text: str, generated: dict[str, str]) -> tuple[str, list[str]]:
    """The README with every block it holds regenerated, and the names of the blocks whose text changed."""
    changed = []

    def sub(m):
        name = m.group("name")
        if name not in generated:
            return m.group(0)
        body = generated[name].rstrip("\n") + "\n"
        if body != m.group("body"):
            changed.append(name)
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(sub, text), changed


def main(argv) -> int:
    generated, status = blocks(), 0
    for doc in documents():
        name = doc.relative_to(REPO).as_posix()
        new, changed = render(doc.read_text(), for_document(doc, generated))
        if "--write" in argv:
            doc.write_text(new)
            print(f"{name}: {len(changed)} block(s) regenerated: {', '.join(changed) or 'none changed'}")
        elif changed:
            print(f"{name}: generated blocks out of date: {', '.join(changed)} (python scripts/readme_tables.py --write)")
            status = 1
    if status == 0 and "--write" not in argv:
        print("every generated block matches its tables")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
