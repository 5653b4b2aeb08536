"""Verdicts at the unit of replication (issue 35, item 1): a claim about a teacher method is tested across teachers,
SOAR-PQ across PQ runs, SOAR-PS across promoted checkpoints; 'reproduced' / 'contradicted' only with >= 3 units per
arm; zero variance or fewer than 2 units is 'untestable', never p = 0; index-matched students stay paired on the
indices both arms hold. Constructed tables, table-driven."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from soar_lite import stats
from soar_lite.config import load_config
from soar_lite.stages import evaluate


def _cfg(tmp_path, runs):
    return load_config("ci", [f"results_dir={tmp_path}", f"meta.runs={runs}", "meta.teachers=[grounded]"])


def _table(arms: dict[str, list[float]], k: int = 4) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "seed": s, "k": k, "pass_at_k": v} for m, xs in arms.items()
                         for s, v in enumerate(xs)])


def _row(cmp, name, k=4):
    return cmp[(cmp.comparison == name) & (cmp.k == k)].iloc[0]


def test_eight_teachers_are_a_teacher_level_paired_t_with_df_7(tmp_path):
    rng = np.random.default_rng(0)
    hard = rng.uniform(0.1, 0.2, 16)
    teacher_effect = np.repeat(rng.normal(0.2, 0.05, 8), 1)  # teacher i: students i and i + 8 (s mod 8)
    grounded = hard + teacher_effect[np.arange(16) % 8] + rng.normal(0, 0.01, 16)
    cmp = evaluate.compare_methods(_cfg(tmp_path, 8), _table({"grounded-t": grounded, "hard-only": hard}))
    r = _row(cmp, "grounded-t vs hard-only")
    assert (r.unit, r.k_a, r.k_b, r.n_a, r.n_b) == ("teacher", 8, 8, 16, 16)
    d = np.array([grounded[[i, i + 8]].mean() - hard[[i, i + 8]].mean() for i in range(8)])
    half = sps.t.ppf(0.975, 7) * d.std(ddof=1) / np.sqrt(8)
    assert r.ci_high - r.ci_low == pytest.approx(2 * half)
    assert r.p_value == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
    assert r.verdict == "reproduced" and r.test == "paired t on teachers" and r.scale == "toy"
    assert r.rests_on == "8 / 8 teachers, 2 / 2 students each"


def test_two_teachers_are_suggestive_at_most_and_identical_students_untestable(tmp_path):
    cfg = _cfg(tmp_path, 2)
    hard = [0.1, 0.12, 0.11, 0.13, 0.1, 0.12]
    strong = [0.5, 0.7, 0.52, 0.71, 0.49, 0.69]  # teacher 0 ~0.5, teacher 1 ~0.7: a large, consistent gain
    r = _row(evaluate.compare_methods(cfg, _table({"grounded-t": strong, "hard-only": hard})), "grounded-t vs hard-only")
    assert (r.k_a, r.k_b) == (2, 2)
    assert r.verdict in ("suggestive (2 teachers)", "not established")  # never "reproduced" on 2 teachers
    same = _row(evaluate.compare_methods(cfg, _table({"grounded-t": hard, "base-t": hard})), "grounded-t vs base-t")
    assert same.verdict == "untestable" and np.isnan(same.p_value)
    # its words in report 04 give the reason: 2 teachers per arm, every difference the same (tiny-full at 4c53f9a said
    # "fewer than 2 units per arm" here: the test column names the unit, "untestable on teachers")
    assert same.test == "untestable on teachers"
    assert "(no variance between units; 2 / 2 teachers" in evaluate.row_verdict(same, 4)[1]
    one_teacher = _cfg(tmp_path / "one", 1)
    one = _row(evaluate.compare_methods(one_teacher, _table({"grounded-t": strong[:2], "hard-only": hard[:2]})),
               "grounded-t vs hard-only")
    assert one.k_a == 1 and "(fewer than 2 units per arm; 1 / 1 teachers" in evaluate.row_verdict(one, 4)[1]


def test_a_zero_variance_difference_is_untestable_never_p_zero():
    out = stats.compare([0.3, 0.4, 0.5], [0.2, 0.3, 0.4], paired=True)  # every pair differs by exactly 0.1
    assert out["test"] == "untestable" and np.isnan(out["p_value"])
    assert stats.verdict(out["difference"], out["p_value"], 3, out["test"]) == "untestable"
    welch = stats.compare([0.3, 0.3], [0.2, 0.2], paired=False)
    assert welch["test"] == "untestable" and np.isnan(welch["p_value"])


@pytest.mark.parametrize("difference, p, k, word", [
    (0.1, 0.01, 8, "reproduced"), (-0.1, 0.01, 8, "contradicted"), (0.1, 0.01, 2, "suggestive"),
    (0.1, 0.2, 8, "not established"), (0.1, float("nan"), 8, "untestable"), (0.1, 0.01, 1, "untestable"),
])
def test_verdict_words(difference, p, k, word):
    assert stats.verdict(difference, p, k) == word


def test_students_of_unequal_counts_stay_paired_on_their_shared_indices(tmp_path):
    """Grounded-T with 6 students vs no-promotion with 3 (index-matched on 0..2): paired on the shared units, not
    Welch over everything."""
    cfg = _cfg(tmp_path, 6)
    a = [0.30, 0.50, 0.41, 0.9, 0.9, 0.9]
    b = [0.28, 0.47, 0.40]
    r = _row(evaluate.compare_methods(cfg, _table({"grounded-t": a, "grounded-t-no-promotion": b})),
             "grounded-t vs grounded-t-no-promotion")
    assert r.test == "paired t on teachers" and (r.k_a, r.k_b) == (6, 3)
    d = np.array(a[:3]) - np.array(b)
    assert r.p_value == pytest.approx(sps.ttest_1samp(d, 0).pvalue)


def test_soar_ps_is_one_checkpoint_however_many_inference_seeds(tmp_path):
    cfg = _cfg(tmp_path, 2)
    r = _row(evaluate.compare_methods(cfg, _table({"soar-ps": [0.2, 0.21, 0.19, 0.2, 0.22, 0.18],
                                                   "hard-only": [0.1, 0.11, 0.09, 0.1, 0.12, 0.08]})),
             "soar-ps vs hard-only")
    assert r.unit == "checkpoint" and r.k_a == 1 and r.verdict == "untestable"
    assert r.rests_on.startswith("1 / 1 promoted checkpoints, 6 / 6 students each")


def test_kinds_with_fewer_teacher_seeds_are_keyed_by_their_own_count(tmp_path):
    """meta.kind_runs: 8 grounded teachers beside 4 intrinsic ones; Grounded-T's 16 students are 8 teachers, Intrinsic-T's
    8 students 4 teachers (student s reads seed s mod 4), compared paired on the 4 seeds both have."""
    cfg = load_config("ci", [f"results_dir={tmp_path}", "meta.runs=8", "meta.teachers=[grounded, intrinsic]",
                             "meta.kind_runs={intrinsic: 4}"])
    assert cfg.meta.runs_for("intrinsic") == 4 and cfg.meta.runs_for("grounded") == 8
    assert evaluate.teacher_seed(cfg, "intrinsic", 6) == 2 and evaluate.teacher_seed(cfg, "grounded", 14) == 6
    rng = np.random.default_rng(3)
    g, i = rng.uniform(0.4, 0.6, 16), rng.uniform(0.2, 0.3, 8)
    r = _row(evaluate.compare_methods(cfg, _table({"grounded-t": g, "intrinsic-t": i})), "grounded-t vs intrinsic-t")
    assert (r.k_a, r.k_b, r.test) == (8, 4, "paired t on teachers")
    d = [g[[t, t + 8]].mean() - i[[t, t + 4]].mean() for t in range(4)]
    assert r.p_value == pytest.approx(sps.ttest_1samp(d, 0).pvalue)


@pytest.mark.parametrize("value,why", [("{frozen: 2}", "is not in meta.teachers"),
                                       ("{intrinsic: 0}", "is not a count of teacher seeds")])
def test_kind_runs_is_checked(tmp_path, value, why):
    with pytest.raises(Exception, match=why):
        load_config("ci", [f"results_dir={tmp_path}", "meta.teachers=[grounded, intrinsic]", f"meta.kind_runs={value}"])


def _end(trained: float, untrained: float, samples: int = 2048) -> dict:
    """A run's diagnostics.json: the teacher's rejection rate first (teacher.py writes it before the world's keys)."""
    return {"samples": samples, "trained": {"reject_rate": 0.01, "n": samples, "useful_share": trained},
            "untrained": {"reject_rate": 0.0, "n": samples, "useful_share": untrained}}


# (teacher kind -> [(trained, untrained) per teacher seed], comparison, verdict)
TEACHER_LEVEL_CASES = [
    ({"grounded": [(0.07, 0.03), (0.08, 0.03), (0.06, 0.03)]}, "grounded teachers vs the untrained teacher",
     "reproduced"),
    ({"grounded": [(0.02, 0.03), (0.019, 0.03), (0.021, 0.03)]}, "grounded teachers vs the untrained teacher",
     "contradicted"),
    ({"grounded": [(0.07, 0.03), (0.02, 0.03), (0.03, 0.03)]}, "grounded teachers vs the untrained teacher",
     "not established"),
    ({"grounded": [(0.07, 0.03), (0.071, 0.03)]}, "grounded teachers vs the untrained teacher",
     "suggestive (2 teachers)"),  # p < 0.05 on 2 teachers (t = 81, 1 df): never 'reproduced'
    ({"grounded": [(0.07, 0.03), (0.08, 0.03)]}, "grounded teachers vs the untrained teacher",
     "not established"),  # t = 9 on 1 df: p = 0.07
    ({"grounded-frozen": [(0.03, 0.03), (0.025, 0.025)]}, "grounded-frozen teachers vs the untrained teacher",
     "untestable"),  # never updated: its samples are the untrained teacher's, no variance
    ({"grounded": [(0.07, 0.03), (0.08, 0.03), (0.075, 0.03)], "grounded-frozen": [(0.03, 0.03), (0.02, 0.02)]},
     "grounded vs grounded-frozen teachers", "suggestive (2 teachers)"),  # 2 frozen seeds: never 'reproduced'
    ({"grounded": [(0.07, 0.03), (0.08, 0.03), (0.075, 0.03)], "intrinsic": [(0.07, 0.03), (0.08, 0.03),
                                                                              (0.074, 0.03)]},
     "grounded vs intrinsic teachers", "not established"),
]


@pytest.mark.parametrize("kinds, comparison, word", TEACHER_LEVEL_CASES)
def test_claims_about_teachers_are_tested_across_teachers(kinds, comparison, word):
    """Does the teacher learn, and more than the frozen control or the intrinsic teacher? One unit per teacher seed
    (its end share against the untrained teacher's on the same samples), never the samples of one teacher; the
    world's headline diagnostic is read, not the teacher's rejection rate."""
    from soar_lite.stages.meta_train import teacher_level

    end = {(kind, i): _end(t, u) for kind, pairs in kinds.items() for i, (t, u) in enumerate(pairs)}
    table = teacher_level(end)
    row = table.set_index("comparison").loc[comparison]
    assert row.verdict == word
    assert (row.measure, row.unit, row.scale) == ("useful_share", "teacher", "toy")
    assert row.k_a == len(kinds[comparison.split(" ")[0]])
    assert "2,048 fresh samples each" in row.rests_on
    if comparison.startswith("grounded-frozen"):
        assert "never moves" in row.note


def test_teacher_level_reads_a_rendered_runs_meta_folders_and_is_empty_without_diagnostics(tmp_path):
    """A run rendered before tables/teacher_level.csv existed: its meta folders' diagnostics.json (every kind and
    seed, by rundir.META_DIRS) give the same table; a world without question diagnostics gives an empty one."""
    import json

    from soar_lite.stages.meta_train import TEACHER_LEVEL_COLUMNS, run_end_diagnostics, teacher_level

    for name, (t, u) in {"meta": (0.07, 0.03), "meta_run1": (0.08, 0.03), "meta_run12": (0.06, 0.03),
                         "meta_frozen": (0.03, 0.03), "meta_intrinsic_run2": (0.05, 0.03)}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "diagnostics.json").write_text(json.dumps(_end(t, u)))
    (tmp_path / "meta_paper_grouping").mkdir()  # a run without its end diagnostics is left out
    end = run_end_diagnostics(tmp_path)
    assert sorted(end) == [("grounded", 0), ("grounded", 1), ("grounded", 12), ("grounded-frozen", 0),
                           ("intrinsic", 2)]
    assert end[("grounded", 12)]["trained"]["useful_share"] == 0.06
    table = teacher_level(end)
    assert set(table.comparison) == {"grounded teachers vs the untrained teacher",
                                     "grounded-frozen teachers vs the untrained teacher",
                                     "intrinsic teachers vs the untrained teacher", "grounded vs grounded-frozen teachers",
                                     "grounded vs intrinsic teachers"}
    none = {("grounded", 0): {"samples": 8, "trained": {"reject_rate": 0.0, "n": 8},
                              "untrained": {"reject_rate": 0.0, "n": 8}}}
    assert teacher_level(none).empty and list(teacher_level(none).columns) == TEACHER_LEVEL_COLUMNS
