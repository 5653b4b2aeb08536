"""The README's generated blocks (result tables, cost table) match what the tables and the cost model give today:
a number typed by hand, or one left behind by a re-render, fails here (scripts/readme_tables.py --write mends it)."""

from conftest import REPO, load_script


def _tool():
    return load_script("readme_tables")


def test_generated_readme_blocks_match_their_sources():
    tool = _tool()
    generated, present = tool.blocks(), set()
    for doc in tool.documents():
        text = doc.read_text()
        present |= {m.group("name") for m in tool.BLOCK.finditer(text)}
        _, changed = tool.render(text, tool.for_document(doc, generated))
        assert changed == [], f"{doc.name}: blocks out of date: {changed} (python scripts/readme_tables.py --write)"
    assert {"cost-paper", "verdicts", "results-tiny-gate-gate"} <= present
    # every block has a source: a block whose table is no longer rendered (a re-render without it) fails here
    # instead of keeping its old text unregenerated
    assert present <= set(generated), f"blocks without a source: {sorted(present - set(generated))}"


def test_the_readme_is_a_front_page():
    """A newcomer's two minutes: at most ~250 lines, the verdict table near the top, every docs page linked, and every
    relative link of the README and docs/ pointing at a file that exists."""
    import re

    tool = _tool()
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert readme[:readme.index("generated: verdicts")].count("\n") < 60  # results at a glance near the top
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, page.name
    for doc in tool.documents():
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_a_drifted_number_is_caught():
    tool = _tool()
    text = "a\n<!-- generated: cost-paper -->\n| typed by hand |\n<!-- end generated: cost-paper -->\n"
    _, changed = tool.render(text, {"cost-paper": "| the model's |"})
    assert changed == ["cost-paper"]


def test_verdicts_read_from_several_runs_link_each_claim_to_the_run_that_decides_it():
    """The README's verdict table reads the powered run and the runs that take its teachers: a claim decided only in
    tiny-ablations (the compute-matched Hard-Only) links there; one in both is decided by the first run."""
    import pandas as pd

    from soar_lite.report_index import verdict_rows

    def row(comparison, run, verdict):
        return {"comparison": comparison, "k": 32, "difference": 0.1, "p_value": 0.01, "n_a": 8, "n_b": 8,
                "verdict": verdict, "rests_on": "8 / 8 teachers", "scale": "toy", "run": run}

    table = pd.DataFrame([row("soar-pq vs hard-only", "full", "reproduced"),
                          row("soar-pq vs hard-only", "ablations", "not established"),
                          row("soar-pq vs hard-only-matched", "ablations", "contradicted")])
    gate = pd.DataFrame({"check": ["probe_solved_share"], "value": [0.0], "threshold": ["<= 0.1"], "passed": [True]})
    lines = verdict_rows(table, gate, lambda stage, run: f"{run}/{stage}")
    by_claim = {l.split(" | ")[0].lstrip("| "): l for l in lines[2:]}
    assert "reproduced" in by_claim["Finding 1: SOAR-PQ beats Hard-Only"]
    assert by_claim["Finding 1: SOAR-PQ beats Hard-Only"].endswith("| full/evaluate |")
    assert by_claim["Finding 1 at equal student compute"].endswith("| ablations/evaluate |")
    assert "contradicted" in by_claim["Finding 1 at equal student compute"]
    assert by_claim["Premise: direct RL on the hard set has no signal; the world is learnable"].endswith("| None/tiny_world |")


def test_a_claim_whose_arm_was_skipped_reads_cannot_be_tested_with_the_reason(tmp_path):
    """The frozen-teacher control made no promotion, so evaluate skipped its PQ arm: the claim that needs it is a row
    saying so (with evaluate's reason and the run that skipped it), not a silent gap in the verdict table; a claim with
    neither a comparison nor a skipped arm is still left out."""
    import json

    import pandas as pd

    from soar_lite.report_index import skipped_arms, verdict_rows

    table = pd.DataFrame([{"comparison": "soar-pq vs hard-only", "k": 32, "difference": 0.0, "p_value": 0.5,
                           "n_a": 8, "n_b": 8, "verdict": "not established", "rests_on": "4 / 4 PQ runs",
                           "scale": "toy", "run": "full"}])
    why = "no meta-training run made >= 2 promotions (promotions per grounded-frozen run: {0: 0, 1: 0})"
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"skipped": {"frozen-pq": why}}))
    skipped = skipped_arms(summary, "full")
    assert skipped == {"frozen-pq": (why, "full")}
    assert skipped_arms(tmp_path / "absent.json") == {}
    lines = verdict_rows(table, None, lambda stage, run: f"{run}/{stage}", skipped)
    by_claim = {l.split(" | ")[0].lstrip("| "): l for l in lines[2:]}
    frozen = by_claim["The teacher learned, not just selection (frozen-teacher control)"]
    assert f"cannot be tested here: frozen-pq not evaluated ({why})" in frozen
    assert frozen.endswith("| no units of frozen-pq | toy | full/evaluate |")
    assert "Finding 2: grounded beats intrinsic rewards" not in by_claim


def test_claims_about_teachers_read_the_teacher_level_table():
    """The teacher-level claims (report 03's tables/teacher_level.csv: no k) are rows of the verdict table, linked to
    report 03, with the diagnostic they measure; a pass@k comparison of the same name would not be read for them."""
    import pandas as pd

    from soar_lite.report_index import verdict_rows

    teachers = pd.DataFrame([{"comparison": "grounded teachers vs the untrained teacher", "measure": "useful_share",
                              "difference": 0.043, "p_value": 3e-5, "verdict": "reproduced",
                              "rests_on": "8 teachers, paired", "scale": "toy", "run": "full"}])
    lines = verdict_rows(None, None, lambda stage, run: f"{run}/{stage}", teachers=teachers)
    assert lines[2] == ("| The teacher learns: its questions beat the untrained teacher's | reproduced (+4.3 points of "
                        "useful_share at the end, p < 1e-4) | 8 teachers, paired | toy | full/meta_train |")
    assert len(lines) == 3
