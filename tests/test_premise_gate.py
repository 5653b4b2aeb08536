"""The premise gate (issue 36): its statistics (pure functions, table-driven), its rows from measured curves, the
compute-matched Hard-Only arm's length, and a meta-training run's student-rollout count."""
import numpy as np
import pandas as pd
import pytest

from soar_lite import stats
from soar_lite.config import load_config


@pytest.mark.parametrize("count,n,expected", [
    (0, 1000, 1 - 0.05 ** (1 / 1000)),   # exact: (1 - p)^n = 0.05
    (0, 409_600, 1 - 0.05 ** (1 / 409_600)),
    (5, 5, 1.0),
    (0, 0, float("nan")),
])
def test_rate_upper_bound(count, n, expected):
    got = stats.rate_upper_bound(count, n)
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected, rel=1e-6)


def test_rate_upper_bound_of_zero_is_about_three_over_n():
    assert stats.rate_upper_bound(0, 300_000) == pytest.approx(3 / 300_000, rel=0.01)
    assert stats.rate_upper_bound(0, 409_600) < 1e-5 < stats.rate_upper_bound(0, 65_536)


@pytest.mark.parametrize("counts,samples,fits,solved", [
    ([0] * 50, 128, None, 0.0),                      # nothing solved: nothing selected on anything (p NaN)
    ([1] * 40 + [0] * 60, 128, True, 0.4),          # under-dispersed: one rate fits
    ([0] * 90 + [40] * 10, 128, False, 0.1),        # a few problems are easy: not one rate
])
def test_common_rate_test(counts, samples, fits, solved):
    got = stats.common_rate_test(counts, samples)
    assert got["solved_share"] == pytest.approx(solved) and got["n"] == len(counts)
    if fits is None:
        assert np.isnan(got["p_value"])
    else:
        assert (got["p_value"] >= 0.05) is fits


def test_common_rate_test_of_poisson_draws_fits():
    rng = np.random.default_rng(0)
    got = stats.common_rate_test(rng.binomial(128, 3.7e-3, size=327), 128)
    assert got["p_value"] > 0.05 and got["dispersion"] == pytest.approx(1.0, abs=0.3)


@pytest.mark.parametrize("p,text", [(0.5, "0.5"), (0.0123, "0.012"), (5e-5, "< 1e-4"), (0.0, "< 1e-4"),
                                    (float("nan"), "nan")])
def test_p_text(p, text):
    assert stats.p_text(p) == text


def _curves(arm, starts, ends, k=32, steps=(0, 40)):
    rows = []
    for seed, (a, b) in enumerate(zip(starts, ends)):
        rows += [{"arm": arm, "seed": seed, "k": k, "step": steps[0], "pass_at_k": a},
                 {"arm": arm, "seed": seed, "k": k, "step": steps[1], "pass_at_k": b}]
    return pd.DataFrame(rows)


def test_premise_gate_rows_pass_and_fail_as_measured():
    from soar_lite.stages.tiny_world import arm_gains, premise_gate

    wc = load_config("tiny").world_check
    curves = pd.concat([_curves("stones", [0.0, 0.02, 0.0], [0.8, 0.9, 0.7]),
                        _curves("hard-only-extended", [0.0, 0.02, 0.0], [0.01, 0.02, 0.1], steps=(0, 160))])
    assert arm_gains(curves, "stones", 32) == pytest.approx([80, 88, 70])
    split = pd.DataFrame({"samples": [4096] * 100, "on_path": [0] * 100})
    fit = {"n": 199, "solved_share": 0.02}
    gate = premise_gate(curves, split, fit, wc).set_index("check")
    assert list(gate.index) == ["hard_only_extended_gain", "stones_gain", "on_path_rate_upper95", "probe_solved_share"]
    assert gate.loc["stones_gain", "value"] == pytest.approx(238 / 3) and gate.loc["stones_gain", "passed"]
    assert gate.loc["hard_only_extended_gain", "value"] == pytest.approx(11 / 3)
    assert gate.loc["hard_only_extended_gain", "passed"]  # +3.7 <= +5
    assert gate.loc["on_path_rate_upper95", "passed"]  # 0 in 409,600: bound 7.3e-6
    # a world where direct RL escapes fails, in the table (the run goes on)
    escaped = pd.concat([curves[curves.arm == "stones"], _curves("hard-only-extended", [0.0] * 3, [0.6, 0.7, 0.65])])
    bad = premise_gate(escaped, split.assign(on_path=[3] * 100), {"n": 10, "solved_share": 0.6}, wc).set_index("check")
    assert not bad.loc["hard_only_extended_gain", "passed"] and not bad.loc["on_path_rate_upper95", "passed"]
    assert not bad.loc["probe_solved_share", "passed"]
    # the quick look: no extended arm, no samples, no probe counts -> only the stones row
    quick = premise_gate(curves[curves.arm == "stones"], pd.DataFrame(), {}, wc)
    assert list(quick.check) == ["stones_gain"]


@pytest.mark.parametrize("stones_end,steps,on_path,samples,expected", [
    (0.9, 40, 0, 8192, {"stones_gain": "passed", "on_path_rate_upper95": "passed"}),  # decided at any size when met
    (0.0, 40, 0, 256, {"stones_gain": "underpowered", "on_path_rate_upper95": "underpowered"}),  # the quick look
    (0.0, 480, 0, 256, {"stones_gain": "failed", "on_path_rate_upper95": "underpowered"}),  # long enough: a failure
    (0.9, 480, 2, 256, {"stones_gain": "passed", "on_path_rate_upper95": "failed"}),  # successes are seen: a failure
])
def test_a_check_this_size_cannot_decide_is_underpowered_not_failed(stones_end, steps, on_path, samples, expected):
    import dataclasses

    from soar_lite.stages.tiny_world import gate_outcome, premise_gate

    wc = load_config("tiny").world_check
    wc = dataclasses.replace(wc, arms=dataclasses.replace(wc.arms, steps=steps))
    curves = _curves("stones", [0.0, 0.0], [stones_end, stones_end])
    split = pd.DataFrame({"samples": [samples] * 53, "on_path": [on_path] + [0] * 52})
    gate = premise_gate(curves, split, {}, wc)
    assert dict(zip(gate.check, gate.status)) == expected
    word = gate_outcome(gate)
    if "failed" in expected.values():
        assert word.startswith("FAILED")
    elif "underpowered" in expected.values():
        assert word.startswith("not decided at this size")
    else:
        assert word == "passed (2 of 2 checks)"


@pytest.mark.parametrize("rollout_steps, extra", [(10, 1), (10, 0), (1, 0), (2_000, 3), (9_371, 0)])
def test_hard_only_matched_trains_the_rollouts_of_its_run(rollout_steps, extra):
    """The matched arm trains the run's rollouts (the last step rounded up), is read at its last step, and is
    evaluated at as many points as the section's own students, on multiples of eval_every, and at its last step."""
    from soar_lite.evaluate import evaluation_points
    from soar_lite.stages.evaluate import method_settings

    ecfg = load_config("ci", ["evaluate.methods=[hard-only, hard-only-matched, serl]", "evaluate.serl_step=2",
                              "evaluate.eval_every=2"]).evaluate  # SeRL's step on the section's grid, not the arm's
    per_step = ecfg.student.batch_questions * ecfg.student.group_size
    got = method_settings(ecfg, "hard-only-matched", {"student_rollouts": rollout_steps * per_step + extra})
    assert got.steps == rollout_steps + (1 if extra else 0)  # every rollout, less than one step more
    assert got.fixed_step == got.steps
    assert got.eval_every % ecfg.eval_every == 0  # on the other arms' grid
    own = -(-ecfg.steps // ecfg.eval_every)
    assert got.steps // got.eval_every <= own  # no more evaluations than the section's students
    if got.steps >= ecfg.eval_every * own:  # a long student: at least half as many on the grid, and its last step
        assert got.steps // got.eval_every >= own // 2
        assert evaluation_points(got.steps, got.eval_every) == got.steps // got.eval_every + 1 + (
            got.steps % got.eval_every > 0)
    with pytest.raises(ValueError, match="student rollouts"):
        method_settings(ecfg, "hard-only-matched", {})


@pytest.mark.parametrize("steps, every, points", [(240, 20, 13), (241, 20, 14), (5, 20, 2), (20, 20, 2), (0, 5, 1)])
def test_evaluation_points_are_step_0_every_multiple_and_the_last_step(steps, every, points):
    from soar_lite.evaluate import evaluation_points

    assert evaluation_points(steps, every) == points


def test_student_rollouts_of_a_run_counts_inner_loops_and_null_steps(tmp_path):
    from soar_lite.stages.meta_train import MetaRun

    meta = load_config("tiny").meta  # B 16 x G 8 = 128 rollouts per student step; r = 1
    metrics = pd.DataFrame({"rewards_kj": [[[0.1]] * 64, [[0.2]] * 64], "inner_steps": [4, 6]})
    run = MetaRun(teacher="grounded", run=0, metrics=metrics, pq=[], promotions=[], initial_hard_train_acc=None,
                  initial_hard_train_score=None, tau=None, tau_null=[[0.0] * 64] * 4, tau_null_summary={},
                  end_diagnostics={}, dir=tmp_path)
    assert run.student_rollouts(meta) == 128 * (64 * 4 + 64 * 6 + 4 * 64 * meta.inner_steps)


@pytest.mark.parametrize("p,text", [(0.5, "p = 0.5"), (3e-6, "p < 1e-4"), (float("nan"), "p = nan")])
def test_p_eq(p, text):
    assert stats.p_eq(p) == text
