"""Report 04 renders for every subset of arms a params file may name (issue 32, item 11: `evaluate.methods:
[grounded-t]` stopped in a log-scaled figure with no Hard-Only to draw against). One ci-size run evaluates every
arm once; each subset is then evaluated again from the saved students (nothing is trained twice) and the report's
code cells -- everything after its set-up cell, notebooks/04_evaluate.py as papermill runs it -- are executed
against it. A figure without its data says so in words."""

import matplotlib.pyplot as plt
import pytest

from soar_lite.config import METHODS, load_config
from soar_lite.stages import evaluate, meta_train, probe

from conftest import REPO

BASE = ["meta.teachers=[grounded, intrinsic, grounded-no-promotion, grounded-frozen]", "evaluate.seeds=1", "evaluate.other_seeds=1",
        "evaluate.serl_step=2", "evaluate.serl_min_agreement=0", "evaluate.serl_max_agreement=1",
        "evaluate.extended_steps_factor=2"]
SINGLES = [(m,) for m in METHODS]
PAIRS = [("hard-only", m) for m in METHODS if m != "hard-only"] + [
    ("grounded-t", "base-t"), ("soar-pq", "soar-ps"), ("soar-pq", "frozen-pq"), ("soar-ps", "frozen-ps"), ("base-model", "soar-ps"), ("grounded-t", "intrinsic-t"),
    ("base-t@curriculum", "base-t@mixed")]


def _cfg(results, methods):
    return load_config("ci", [f"results_dir={results}", *BASE, f"evaluate.methods=[{', '.join(methods)}]"])


def report_cells() -> list[str]:
    """The code cells of report 04 after its parameters and set-up cells (jupytext percent format)."""
    cells, current = [], None
    for line in (REPO / "notebooks" / "04_evaluate.py").read_text().splitlines():
        if line.startswith("# %%"):
            current = None if "[markdown]" in line or "parameters" in line else []
            if current is not None:
                cells.append(current)
            continue
        if current is not None:
            current.append(line)
    code = ["\n".join(c) for c in cells]
    return [c for c in code if "notebook_setup" not in c]


@pytest.fixture(scope="module")
def every_arm(tmp_path_factory):
    base = tmp_path_factory.mktemp("arms")
    every = list(METHODS) + ["base-t@curriculum", "base-t@mixed"]
    cfg = _cfg(base, every)
    quiet = lambda *a: None  # noqa: E731
    probe.run(cfg, log=quiet)
    meta_train.run(cfg, log=quiet)
    res = evaluate.run(cfg, log=quiet)
    assert not res.skipped, res.skipped  # every arm ran once: each subset below reads its students
    return base


@pytest.mark.parametrize("methods", SINGLES + PAIRS, ids=lambda m: "+".join(m))
def test_report_04_renders_for_a_subset_of_arms(every_arm, methods):
    from soar_lite import plots
    from soar_lite.stages.common import findings_markdown

    cfg = _cfg(every_arm, methods)
    said = []
    ns = {"cfg": cfg, "run_dir": cfg.layout, "display": lambda *a, **k: None, "plots": plots,
          "findings_markdown": findings_markdown, "print": lambda *a, **k: said.append(a)}
    evaluate.run(cfg, log=said.append)
    assert not any("students found finished" not in str(s) and "trained again" in str(s) for s in said)
    try:
        for cell in report_cells():
            exec(compile(cell.replace("evaluate.run(cfg)", "evaluate.run(cfg, log=lambda m: None)"), "04_evaluate",
                      "exec"), ns)
    finally:
        plt.close("all")
    assert set(ns["res"].table.method) == set(methods)


def test_a_figure_without_its_data_says_so():
    import pandas as pd

    from soar_lite import plots

    table = pd.DataFrame({"method": ["grounded-t"] * 2, "seed": [0, 0], "k": [1, 4], "pass_at_k": [0.1, 0.2]})
    for fig in (plots.delta_over(table), plots.by_question_count(table, 4),
                plots.curves(pd.DataFrame(columns=["method", "seed", "k", "step", "pass_at_k"]), 4)[0]):
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert any(t.startswith("no ") for t in texts), texts
        fig.canvas.draw()  # draws: no log axis without data
        plt.close(fig)
