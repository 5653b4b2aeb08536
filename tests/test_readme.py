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
