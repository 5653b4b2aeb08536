"""The page a reader opens first: `results/<run>/index.md` and `index.html` (`soar-lite index RUN_DIR`; `soar-lite run`
writes it after its stages).

It maps each table and figure of the paper (PAPER.md's list) to the report, figure and table that is its analogue in
this run, or says why it is not produced; it gives the run's params, the commit each report was rendered from (and
says so, in words, when the reports of one run directory come from different commits or params), the wall time of
each stage, and every report's findings sentences (read from the rendered notebooks' closing cells). It computes
nothing new: it reads what the stages wrote.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from .rundir import RunLayout, read_json
from .stages import STAGES

# (paper item, what it shows, report stage, figure/table files that are its analogue here, why not produced)
PAPER_ITEMS = [
    ("Fig. 1-2", "schematics of the method", None, [], "diagrams, not results"),
    ("Table 2", "hard-set sizes before and after fail@128", "probe", ["tables/hard_sets.csv"], ""),
    ("Table 3", "hyperparameters", None, ["config.yaml"], ""),
    ("Fig. 3", "Δ pass@k over Hard-Only for PQ, PS, Intrinsic-T", "evaluate", ["figures/eval_delta_over_hard_only.png"], ""),
    ("Fig. 4 / Table 6", "OlympiadBench transfer at step 50", None, [],
     "a run of its own: params/paper-table6-olympiad-from-math.yaml and -from-harp.yaml (another run's teachers, "
     "evaluate.teacher_run, scored at step 50, evaluate.fixed_step); it needs a second benchmark's hard set, "
     "probed in a run of its own"),
    ("Fig. 5", "pass@32 curves: Grounded-T vs Base-T vs Hard-Only; per teacher seed Grounded-T vs Intrinsic-T",
     "evaluate", ["figures/eval_fig5_left.png", "figures/eval_fig5_right.png"], ""),
    ("Fig. 6", "baseline student across promotion stages, questions per stage", "meta_train",
     ["figures/meta_promotion_stages_grounded_run0.png"], ""),
    ("Table 1", "Vendi score of 128-question sets", "analyze", ["tables/vendi.csv"], ""),
    ("Fig. 7-8", "mixed vs curriculum training", "evaluate",
     ["figures/eval_fig7_base-t_modes.png", "figures/eval_fig7_curated_modes.png"],
     "the arms base-t@curriculum/@mixed and curated@curriculum/@mixed: params/paper-fig7-mixed-vs-curriculum.yaml, "
     "paper-fig8-mixed-vs-curriculum.yaml, tiny-ablations.yaml"),
    ("Fig. 9", "pass@k curves with SOAR-PS as a line", "evaluate", ["figures/eval_fig9_pass1.png",
                                                                  "figures/eval_fig9_pass32.png"], ""),
    ("Fig. 10 (v3)", "Hard-Only trained much longer", "evaluate", ["figures/eval_fig10_hard_only_extended.png"],
     "the arm hard-only-extended: params/paper-fig10-hard-only-extended.yaml, tiny-ablations.yaml"),
    ("Tables 4-5", "pass@k of every method (v3: with Inference with Grounded-T, the method grounded-t-inference)",
     "evaluate", ["tables/pass_at_k.csv", "tables/comparisons.csv"], ""),
    ("Tables 4-5 (v3)", "SeRL at steps 50 and 100", "evaluate", ["figures/eval_serl.png"],
     "the arm serl (soar_lite/serl.py): params/paper-table4-serl.yaml, paper-table5-serl.yaml, tiny-ablations.yaml"),
    ("Figs. 10-12 / 11-13", "Grounded-T vs Base-T, Intrinsic-T, no-promotion curves", "evaluate",
     ["tables/curves.csv"], ""),
    ("Fig. 13 / 14 (v3)", "OlympiadBench pass@32 per teacher seed, Grounded-T vs Intrinsic-T", "evaluate",
     ["figures/eval_fig5_right.png"], "report 04's per-teacher-seed figure in the Table 6 runs "
                                      "(params/paper-table6-olympiad-from-math.yaml, -from-harp.yaml)"),
    ("Fig. 15 (v3)", "correct-only vs well-posed questions", "analyze", ["tables/wellposed_ablation.csv"], ""),
    ("Table 7", "judge taxonomy of teacher questions", "analyze", ["tables/question_labels.csv"], ""),
    ("Figs. 14/16, 15/17", "question count \\|X\\| (teacher vs real); tau x n", "evaluate",
     ["figures/eval_fig14_question_count.png"], "the arms grounded-t#n and curated#n: params/paper-fig14-question-count"
                                                ".yaml; tau x n: params/paper-fig15-tau*-n*.yaml, side by side with "
                                                "soar-lite compare"),
    ("Table 8", "multi-turn teacher", None, [], "a run of its own: params/paper-table8-multiturn-n32.yaml and "
                                                "-n64.yaml (meta.teacher_turns: 2); it needs a chat model (a raw "
                                                "completion model reads a second call as the rest of the first)"),
    ("Table 9 / Fig. 18", "8B model", None, [], "GPU only: params/paper-table9-8b.yaml (Llama-3.1-8B-Instruct)"),
    ("Fig. 16/19", "teacher reward with promotion markers", "meta_train",
     ["figures/meta_teacher_reward_grounded_run0.png"], ""),
    ("Fig. 17/20", "Intrinsic-T reward; diversity over training", "meta_train",
     ["figures/meta_teacher_reward_intrinsic_run0.png", "figures/analyze_diversity_over_training.png"], ""),
    ("(ours)", "does the teacher learn: useful share, tau's null, gradient SNR, collapse guard", "meta_train",
     ["figures/meta_useful_share.png", "tables/teacher_snr.csv", "figures/meta_guard.png"], ""),
]


def findings_of(ipynb: Path) -> list[str]:
    """The findings sentences of a rendered report: its last cell's Markdown output, one sentence per '- ' line."""
    try:
        nb = json.loads(ipynb.read_text())
    except (OSError, ValueError):
        return []
    for cell in reversed(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            md = out.get("data", {}).get("text/markdown")
            if md:
                text = "".join(md) if isinstance(md, list) else md
                return [line[2:].strip() for line in text.splitlines() if line.startswith("- ")]
    return []


# each paper claim -> the comparison that decides it (tables/comparisons.csv) and the report that shows it; None: the
# premise gate (tables/premise_gate.csv). The README's results at a glance and every run index read this list.
CLAIMS = [
    ("Premise: direct RL on the hard set has no signal; the world is learnable", None, "tiny_world"),
    ("Finding 1: SOAR-PQ beats Hard-Only", "soar-pq vs hard-only", "evaluate"),
    ("Finding 1 at equal student compute", "soar-pq vs hard-only-matched", "evaluate"),
    ("Finding 1: SOAR-PS beats Hard-Only", "soar-ps vs hard-only", "evaluate"),
    ("Finding 1: Grounded-T beats Base-T", "grounded-t vs base-t", "evaluate"),
    ("Finding 1: Grounded-T beats Hard-Only", "grounded-t vs hard-only", "evaluate"),
    ("Finding 2: grounded beats intrinsic rewards", "grounded-t vs intrinsic-t", "evaluate"),
    ("Promotion matters (App. B.8)", "grounded-t vs grounded-t-no-promotion", "evaluate"),
    ("The teacher learned, not just selection (frozen-teacher control)", "soar-pq vs frozen-pq", "evaluate"),
    # the claims about teachers, tested across teachers on the world's headline question diagnostic (report 03's
    # tables/teacher_level.csv; ours: the paper reports these per run, untested)
    ("The teacher learns: its questions beat the untrained teacher's", "grounded teachers vs the untrained teacher",
     "meta_train"),
    ("The teacher learned, not just selection: grounded vs frozen teachers' questions",
     "grounded vs grounded-frozen teachers", "meta_train"),
    ("Finding 2 at the teacher: grounded vs intrinsic teachers' questions", "grounded vs intrinsic teachers",
     "meta_train"),
]


def verdict_rows(comparisons, gate, link, skipped=None, teachers=None) -> list[str]:
    """A Markdown table: each claim's verdict at the largest k as `comparisons` (tables/comparisons.csv, or None)
    states it, with the unit it rests on and the scale label, and the premise gate's outcome (`gate`:
    tables/premise_gate.csv, or None). `link(stage, run)` -> the Markdown link to that stage's report (`run`: the
    comparisons' `run` column where several runs' tables are read together, the first run holding a claim's
    comparison deciding it; else None). A run rendered before verdicts at the unit of replication says so instead of
    a verdict. A claim whose arm evaluate skipped (`skipped`: arm -> (why, run), from evaluate/summary.json: the
    frozen-teacher control's PQ when no frozen run promoted enough) reads "cannot be tested here" with the reason,
    never a silent gap; claims with nothing to read are left out. The claims about teachers read `teachers`
    (tables/teacher_level.csv, `meta_train.teacher_level`: no k, one row per comparison)."""
    import pandas as pd

    from .stats import p_eq

    skipped = skipped or {}
    out = ["| paper claim | verdict | rests on | scale | report |", "|---|---|---|---|---|"]
    for claim, comparison, stage in CLAIMS:
        if comparison is None:
            if gate is not None and len(gate):
                from .stages.tiny_world import gate_outcome

                out.append(f"| {claim} | gate {gate_outcome(gate)} | the premise gate's checks | toy | "
                           f"{link(stage, None)} |")
            continue
        source = teachers if stage == "meta_train" else comparisons
        rows = source[source.comparison == comparison] if source is not None and len(source) else pd.DataFrame()
        if rows.empty:
            missing = [(arm, *skipped[arm]) for arm in comparison.split(" vs ") if arm in skipped]
            if missing:
                arm, why, run = missing[0]
                out.append(f"| {claim} | cannot be tested here: {arm} not evaluated ({why}) | no units of {arm} | "
                           f"{scale_of(comparisons, run)} | {link(stage, run)} |")
            continue
        run = rows["run"].iloc[0] if "run" in rows else None
        rows = rows[rows["run"] == run] if run is not None else rows
        r = rows[rows.k == rows.k.max()].iloc[0] if "k" in rows else rows.iloc[0]
        what = f"at pass@{int(r.k)}" if "k" in rows else f"of {r.measure} at the end"
        stage_link = link(stage, run)
        p = p_eq(r.p_value) if pd.notna(r.p_value) else "no p"
        if "verdict" not in rows:
            out.append(f"| {claim} | not decided: rendered before verdicts at the unit of replication (students: {p}, "
                       f"n = {r.n_a}/{r.n_b}) | students | toy | {stage_link} |")
            continue
        out.append(f"| {claim} | {r.verdict} ({100 * r.difference:+.1f} points {what}, {p}) | "
                   f"{r.rests_on} | {r.scale} | {stage_link} |")
    return out if len(out) > 2 else []


def scale_of(comparisons, run=None) -> str:
    """The scale label a run's comparisons carry ('toy' where there are none to read it from)."""
    if comparisons is None or "scale" not in comparisons or comparisons.empty:
        return "toy"
    rows = comparisons[comparisons["run"] == run] if run is not None and "run" in comparisons else comparisons
    return str(rows.scale.iloc[0]) if len(rows) else "toy"


def skipped_arms(summary_path: Path, run: str | None = None) -> dict[str, tuple[str, str | None]]:
    """evaluate/summary.json's skipped arms as verdict_rows reads them: arm -> (why, run); {} where not written."""
    return {arm: (why, run) for arm, why in (read_json(summary_path).get("skipped") or {}).items()} \
        if summary_path.exists() else {}


def related_runs(layout: RunLayout) -> list[str]:
    """Lines linking the other runs beside this one (the same results folder), saying which take their teachers from
    this run or give this run its teachers (`evaluate.teacher_run`)."""
    import yaml

    def teacher_run(folder: Path) -> str:
        try:
            return ((yaml.safe_load((folder / "config.yaml").read_text()) or {}).get("evaluate") or {}).get(
                "teacher_run") or ""
        except (OSError, yaml.YAMLError, AttributeError):
            return ""

    me, out = layout.base.name, []
    mine = teacher_run(layout.base) if (layout.base / "config.yaml").exists() else ""
    for other in sorted(p for p in layout.base.parent.iterdir() if p.is_dir() and p.name != me):
        if not (other / "index.html").exists():
            continue
        how = ("its evaluation takes this run's teachers" if teacher_run(other) == me else
               "this run's evaluation takes its teachers" if mine == other.name else "")
        out.append(f"- [{other.name}](../{other.name}/index.html)" + (f": {how}" if how else ""))
    return out


def rendered_in_parts(prov: dict) -> list[str]:
    """How a stage rendered in several sittings ran: each part's commit, start, end and whether it was interrupted,
    the wall time summed and the time paused between parts (rundir.start_part); nothing for one-part stages."""
    from .rundir import parts_summary

    split = {s: p["parts"] for s, p in prov.items() if len(p.get("parts", [])) > 1}
    if not split:
        return []
    lines = ["", "## How it was rendered", "",
             "Stages rendered in parts (`--resume` continues a killed render; an interrupted part ends at its last "
             "heartbeat, within a minute of when it was killed):", "",
             "| report | part | commit | started | ended | wall time | |", "|---|---|---|---|---|---|---|"]
    for s, parts in split.items():
        for i, q in enumerate(parts, 1):
            one = parts_summary([q])["seconds"]
            how = "interrupted" if q.get("interrupted") else ("finished" if q.get("finished") else "running")
            lines.append(f"| {STAGES[s].title} | {i} | {q.get('commit') or '?'}"
                         f"{' + uncommitted changes' if q.get('uncommitted_changes') else ''} | {q['started']} | "
                         f"{q.get('finished') or q['last_seen']} | {one / 60:.1f} min | {how} |")
        total = parts_summary(parts)
        lines.append(f"| {STAGES[s].title} | all | | | | {total['seconds'] / 60:.1f} min | "
                     f"{total['paused_seconds'] / 3600:.1f} h paused between parts |")
    return lines


def build(run_dir) -> str:
    """index.md of a run directory (the HTML page is rendered from it by `write`)."""
    layout = RunLayout(Path(run_dir))
    name = layout.base.name
    prov = {s: read_json(layout.provenance(s)) for s in STAGES if layout.provenance(s).exists()}
    reports = {s: layout.notebook(st.notebook) for s, st in STAGES.items() if layout.notebook(st.notebook).exists()}
    cfg = {}
    if layout.config.exists():
        import yaml

        cfg = yaml.safe_load(layout.config.read_text()) or {}
    lines = [f"# Run `{name}`", ""]
    if cfg.get("description"):
        lines += [" ".join(str(cfg["description"]).split()), ""]
    import pandas as pd

    def table(stem):
        path = layout.table(stem)
        return pd.read_csv(path) if path.exists() else None

    verdicts = verdict_rows(table("comparisons"), table("premise_gate"),
                            lambda st, run=None: f"[{STAGES[st].title}]({reports[st].with_suffix('.html').name})"
                            if st in reports else st, skipped_arms(layout.summary("evaluate")), table("teacher_level"))
    if verdicts:
        lines += ["## Verdicts", "", "Each paper claim as this run's reports decide it (\"reproduced\" / \"contradicted\" "
                  "need >= 3 replicates of the claim's unit and p < 0.05; **toy** marks a tiny-world verdict, never "
                  "the paper's scale):", ""] + verdicts + [""]
    related = related_runs(layout)
    if related:
        lines += ["## Related runs", ""] + related + [""]
    lines += ["## Reports", "", "| report | rendered from | params | sha256 | started | wall time |", "|---|---|---|---|---|---|"]
    for s, path in reports.items():
        p = prov.get(s, {})
        commit = (p.get("commit") or "?") + (" + uncommitted changes" if p.get("uncommitted_changes") else "")
        secs, parts = p.get("seconds"), p.get("all_parts") or {}
        wall = f"{secs / 60:.1f} min" if isinstance(secs, (int, float)) else "?"
        if parts.get("parts", 1) > 1:
            wall = f"{parts['seconds'] / 60:.1f} min in {parts['parts']} parts"
        params = p.get("params", "?") + (" with " + ", ".join(f"`{o}`" for o in p["overrides"]) if p.get("overrides")
                                         else "")
        lines.append(f"| [{STAGES[s].title}]({path.with_suffix('.html').name}) | {commit if p else 'not recorded'} | "
                     f"{params} | {p.get('params_sha256', '?')} | {p.get('started', '?')} | {wall} |")
    commits = {(q.get("commit"), q.get("uncommitted_changes")) for p in prov.values() for q in [p, *p.get("parts", [])]}
    hashes = {q.get("params_sha256") for p in prov.values() for q in [p, *p.get("parts", [])]}
    lines.append("")
    if not prov:
        lines.append("Provenance: not recorded (reports rendered outside `soar-lite run`, or before it recorded it).")
    elif len(commits) == 1 and len(hashes) == 1:
        lines.append("Every report of this run comes from one commit and one params file.")
    else:
        if len(commits) > 1:
            lines.append(f"**The reports of this run come from {len(commits)} different commits** (table above): "
                         f"compare them with that in mind.")
        if len(hashes) > 1:
            lines.append(f"**The reports of this run were rendered with {len(hashes)} different params** (sha256 "
                         f"above; a report's overrides are named beside its params file).")
    lines += rendered_in_parts(prov)
    gate_csv = layout.table("premise_gate")
    if gate_csv.exists():
        gate = pd.read_csv(gate_csv)
        from .stages.tiny_world import gate_outcome, gate_status

        verdict = f"**{gate_outcome(gate)}**"
        lines += ["", f"## The premise gate (report 02): {verdict}", "",
                  "Finding 1 needs hard problems where direct RL has no signal (v3 Fig. 10); a failed check is a "
                  "measurement about this world, not an error.", "", "| check | value | needed | outcome |",
                  "|---|---|---|---|"]
        lines += [f"| {r.check} | {r.value:.3g} | {r.threshold} | {st} |"
                  for r, st in zip(gate.itertuples(), gate_status(gate))]
    lines += ["", "## The paper's tables and figures here", "", "| paper | shows | here |", "|---|---|---|"]
    for item, shows, stage, files, why in PAPER_ITEMS:
        if stage is None and not files:
            here = f"not produced: {why}"
        else:
            present = [f for f in files if (layout.base / f).exists()]
            missing = [f for f in files if f not in present]
            links = ", ".join(f"[{f}]({f})" for f in present)
            report = f"[{STAGES[stage].title}]({reports[stage].with_suffix('.html').name})" if stage in reports else ""
            here = "; ".join(x for x in (report, links) for x in [x] if x) or "not produced in this run"
            if missing:
                here += f" (not in this run: {', '.join(missing)}" + (f"; {why}" if why else "") + ")"
        lines.append(f"| {item} | {shows} | {here} |")
    lines += ["", "## Findings (the reports' closing cells)", ""]
    for s, path in reports.items():
        found = findings_of(path)
        if found:
            lines += [f"**{STAGES[s].title}**", ""] + [f"- {f}" for f in found] + [""]
    if cfg.get("deviations"):
        lines += ["## Deviations from the paper (params)", ""] + [f"- {d}" for d in cfg["deviations"]] + [""]
    return "\n".join(lines) + "\n"


def write(run_dir) -> Path:
    """Write index.md and index.html into the run directory; returns the HTML path."""
    import markdown_it

    from .rundir import atomic_write_text

    run_dir = Path(run_dir)
    text = build(run_dir)
    atomic_write_text(run_dir / "index.md", text)
    body = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(run_dir.name)}: soar_lite run index"
            f"</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}}"
            f"table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 6px;vertical-align:top}}</style>"
            f"</head><body>{body}</body></html>\n")
    return atomic_write_text(run_dir / "index.html", page)
