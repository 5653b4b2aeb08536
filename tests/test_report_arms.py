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

pytestmark = pytest.mark.xdist_group("test_report_arms")  # every_arm: one run of every arm, read by each test (tests/conftest.py)


BASE = ["meta.teachers=[grounded, intrinsic, grounded-no-promotion, grounded-frozen]", "evaluate.seeds=1", "evaluate.other_seeds=1",
        "evaluate.serl_step=2", "evaluate.serl_min_agreement=0", "evaluate.serl_max_agreement=1",
        "evaluate.extended_steps_factor=2"]
SINGLES = [(m,) for m in METHODS]
PAIRS = [("hard-only", m) for m in METHODS if m != "hard-only"] + [
    ("grounded-t", "base-t"), ("soar-pq", "soar-ps"), ("soar-pq", "frozen-pq"), ("soar-ps", "frozen-ps"), ("base-model", "soar-ps"), ("grounded-t", "intrinsic-t"),
    ("base-t@curriculum", "base-t@mixed")]


def assert_distinct_colours(ax):
    """The labelled lines of one panel have one colour each (reference lines included)."""
    from matplotlib.colors import to_hex

    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    colours = [to_hex(line.get_color()) for line in lines]
    assert len(set(colours)) == len(colours), [(line.get_label(), c) for line, c in zip(lines, colours)]


def test_many_lines_get_distinct_colours_and_twins_stay_apart():
    """Report 03's per-run figures with 12 runs (8 grounded seeds and controls) and 06's overlay: a colour per line, no
    palette wrap-around at matplotlib's 10; twin runs (identical values) differ in dash pattern; a reward overlay puts
    the grounded and the learnability rewards in separate panels."""
    import numpy as np
    import pandas as pd

    from soar_lite import plots
    from soar_lite.config import TeacherGuardConfig

    steps = np.arange(5)
    runs = {f"grounded run {i}": pd.DataFrame({"step": steps, "useful_share": 0.1 + 0.01 * steps, "kl_prev": 0.01,
                                               "guard_retries": 0, "kl_initial": 0.02, "reject_rate": 0.05})
            for i in range(12)}
    for fig in (plots.question_diagnostics(runs, "useful_share", untrained=0.1),
                plots.guard_over_steps(runs, TeacherGuardConfig(max_kl_initial=0.25, max_reject=0.3))):
        for ax in fig.axes:
            assert_distinct_colours(ax)
        plt.close(fig)
    frame = pd.concat([pd.DataFrame({"run": r, "folder": f, "step": steps, "reward_mean": v})
                       for r in ("a", "b") for f, v in (("meta", 0.003), ("meta_intrinsic", 0.2))])
    fig = plots.compare_curves(frame, "reward_mean")
    assert len(fig.axes) == 2 and all(len(ax.get_lines()) == 2 for ax in fig.axes)
    for ax in fig.axes:
        assert_distinct_colours(ax)
    plt.close(fig)
    q = plots.question_diagnostics({"grounded": runs["grounded run 0"], "grounded-no-promotion": runs["grounded run 0"]},
                                   "useful_share")
    assert len({line.get_linestyle() for line in q.axes[0].get_lines()}) == 2  # identical twins, visibly two
    plt.close(q)


def test_the_fig6_analogue_points_up_and_has_no_empty_panel():
    import pandas as pd

    from soar_lite import plots

    flat = pd.DataFrame({"stage": [0, 1, 2], "hard_train_greedy_acc": [0.0, 0.0, 0.0],
                         "hard_train_score": [-2.0, -1.5, -1.2]})
    fig = plots.promotion_stages(flat, "log-likelihood")
    assert len(fig.axes) == 1
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([0.0, 0.5, 0.8])  # gains over stage 0: improvement points up
    plt.close(fig)
    both = flat.assign(hard_train_greedy_acc=[0.0, 0.1, 0.2])
    assert len(plots.promotion_stages(both, "log-likelihood").axes) == 2
    plt.close("all")


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
        for num in plt.get_fignums():  # no two lines of one panel share a colour (issue 37, item 4)
            for ax in plt.figure(num).axes:
                assert_distinct_colours(ax)
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
