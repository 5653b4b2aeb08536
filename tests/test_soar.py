"""soar.py: the pure pieces of Algorithm 1 (promotion, median, learnability, inner-step schedule) on constructed
numbers, and the MetaTrainer: a run killed with SIGKILL mid-step and resumed ends exactly like an uninterrupted run."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from soar_lite.config import load_config
from soar_lite.soar import (inner_steps_for, learnability, median_student, moving_average, moving_average_paths,
                            null_runs, null_step_sd, null_threshold, promotion_window, should_promote)
from soar_lite.stages import probe

from conftest import REPO
pytestmark = pytest.mark.xdist_group("test_soar")  # probed: the run the sigkill test finishes is read by the next tests (tests/conftest.py)


OVERRIDES = ["meta.outer_steps=4", "meta.g=2", "meta.n=6", "meta.r=2", "meta.inner_steps=2", "meta.tau=-1.0",
             "meta.teacher_snapshots=[2]"]

RUNNER = """
import sys
from soar_lite.config import load_config
from soar_lite.stages import meta_train
cfg = load_config(sys.argv[1], sys.argv[3:] + ["meta.teachers=[grounded]"])
meta_train.run(cfg, resume=sys.argv[2] == "resume", log=lambda m: print(m, flush=True))
"""


def _promotions(rewards, tau, window=3, reset=True):
    buffer, out = [], []
    for r in rewards:
        buffer, ma, fired = promotion_window(buffer, r, window=window, tau=tau, reset=reset)
        out.append((round(ma, 6), fired))
    return out


def test_no_promotion_on_a_partial_window_at_step_0():
    """Algorithm 1: R̄ <- 0, so one large reward at step 0 counts as 1/3 of a window (the old code promoted on it)."""
    assert _promotions([0.02], tau=0.01) == [(0.006667, False)]
    assert _promotions([0.02, 0.02], tau=0.01) == [(0.006667, False), (0.013333, True)]


@pytest.mark.parametrize("reset,expected", [
    # reset: after the promotion at step 1 the window restarts from 0, so step 2 measures the new stage only
    (True, [(0.01, False), (0.02, True), (0.01, False), (0.006667, False), (0.003333, False), (0.003333, False)]),
    # not reset: the old stage's rewards keep the average above tau, and steps 2 and 3 promote on them
    (False, [(0.01, False), (0.02, True), (0.03, True), (0.016667, True), (0.003333, False), (0.003333, False)]),
])
def test_window_after_a_promotion(reset, expected):
    rewards = [0.03, 0.03, 0.03, -0.01, -0.01, 0.03]
    got = _promotions(rewards, tau=0.015, reset=reset)
    assert got == expected


def test_promotion_is_strictly_above_tau():
    assert not should_promote(0.01, 0.01)
    assert _promotions([0.03, 0.0, 0.0], tau=0.01) == [(0.01, False), (0.01, False), (0.01, False)]


@pytest.mark.parametrize("rewards,expected", [([0.3, 0.1, 0.2], 2), ([0.2, 0.3, 0.1], 0), ([0.1, 0.2, 0.3], 1),
                                              ([0.4, 0.1, 0.3, 0.2], 3), ([0.0], 0)])
def test_median_student(rewards, expected):
    """r = 3 (odd): the true median; r = 4: the lower of the two middle students (a named choice)."""
    assert median_student(rewards) == expected


def test_moving_average_paths_equal_the_loop():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(3, 7))
    loop = [[moving_average(list(row[: t + 1]), 3) for t in range(7)] for row in r]
    np.testing.assert_allclose(moving_average_paths(r, 3), loop)


@pytest.mark.parametrize("null,expected", [([[0.0, 2.0], [1.0, 3.0]], 0.0),  # step means 1, 2: var 0.5 < within 2 / 2
                                           ([[0.0, 0.0], [10.0, 10.0]], np.sqrt(50.0)),  # no within spread
                                           ([[0.0, 1.0, 2.0]], 0.0)])  # one step: no step effect
def test_null_step_sd(null, expected):
    assert null_step_sd(null) == pytest.approx(expected)


def _false_promotion_rate(thr_tau, mu, sd_dataset, g, steps, window, runs, seed, sd_step=0.0):
    """Fresh null runs from the true distribution: how often R̄ exceeds tau at least once."""
    rng = np.random.default_rng(seed)
    r_hat = rng.normal(mu, sd_dataset / np.sqrt(g), size=(runs, steps)) + rng.normal(0, sd_step, size=(runs, steps))
    return float((moving_average_paths(r_hat, window).max(axis=1) > thr_tau).mean())


@pytest.mark.parametrize("g,null_steps,steps", [(64, 1, 20), (64, 6, 20), (4, 8, 20), (16, 8, 60)])
def test_calibrated_tau_keeps_the_family_wise_rate(g, null_steps, steps):
    """An untrained teacher promotes at least once in a run with probability <= 5% over the run's whole length, each
    run calibrated on its own null steps (the rate over calibrations: 40 of them), and a per-step z (the old
    threshold, mean + 2 SD / sqrt(window)) promotes far more often over a run. With several null steps the step
    effect's variance is drawn from its sampling distribution, which costs some rate (conservative)."""
    rng = np.random.default_rng(g * 100 + null_steps)
    rates, old = [], []
    for c in range(40):
        null = rng.normal(0.002, 0.004, size=(null_steps, g)).tolist()
        thr = null_threshold(null, g=g, window=3, steps=steps, fwer=0.05, sims=4000, seed=c)
        rates.append(_false_promotion_rate(thr.tau, 0.002, 0.004, g, steps, 3, runs=2000, seed=1000 + c))
        flat = np.ravel(null)
        per_step = flat.mean() + 2 * flat.std(ddof=1) / np.sqrt(g) / np.sqrt(3)
        old.append(_false_promotion_rate(per_step, 0.002, 0.004, g, steps, 3, runs=2000, seed=1000 + c))
    assert 0.01 <= np.mean(rates) <= 0.065, np.mean(rates)
    assert np.mean(old) > 2 * np.mean(rates)


def test_tau_accounts_for_what_a_step_shares():
    """A step effect (all datasets of a step move together) widens the null of R̂; the rate still holds."""
    rng = np.random.default_rng(4)
    rates = []
    for c in range(30):
        null = (rng.normal(0.002, 0.004, size=(12, 64)) + rng.normal(0, 0.001, size=(12, 1))).tolist()
        thr = null_threshold(null, g=64, window=3, steps=20, fwer=0.05, sims=4000, seed=c)
        rates.append(_false_promotion_rate(thr.tau, 0.002, 0.004, 64, 20, 3, runs=2000, seed=500 + c, sd_step=0.001))
    assert thr.step_sd == pytest.approx(0.001, rel=0.6)
    assert np.mean(rates) <= 0.08, np.mean(rates)


def test_a_learning_teacher_promotes():
    """Rewards 3 null SDs of R̂ above the null mean cross the calibrated tau within a few steps."""
    rng = np.random.default_rng(7)
    null = rng.normal(0.002, 0.004, size=(4, 64)).tolist()
    thr = null_threshold(null, g=64, window=3, steps=20, fwer=0.05, sims=20000, seed=8)
    buffer, fired = [], []
    for t in range(6):
        buffer, _, f = promotion_window(buffer, 0.002 + 3 * 0.0005, window=3, tau=thr.tau, reset=True)
        fired.append(f)
    assert any(fired)


def test_null_runs_resample_g_datasets():
    rng = np.random.default_rng(0)
    null = rng.normal(0.5, 1.0, size=(1, 400)).tolist()
    runs = null_runs(null, 4, 10, 20000, rng)
    assert runs.shape == (20000, 10)
    # the mean of 4 datasets: SD ~ 1/2 (a little more: the run's SD and mean are drawn, not fixed)
    assert runs.mean() == pytest.approx(np.mean(null), abs=0.02) and 0.5 <= runs.std() <= 0.56
    with pytest.raises(ValueError, match="at least 2 datasets"):
        null_runs([[0.1]], 4, 10, 10, rng)
@pytest.mark.parametrize("rates,expected", [([0.0, 0.25, 1.0, 0.5], [0.0, 0.75, 0.0, 0.5])])
def test_learnability_reward(rates, expected):
    np.testing.assert_allclose(learnability(rates), expected)


def test_inner_steps_grow_by_five_per_promotion_with_cap():
    class M:  # noqa: D401 - a stand-in for MetaConfig
        inner_steps, inner_steps_per_promotion, max_inner_steps = 10, 5, 20
    assert [inner_steps_for(M, p) for p in range(4)] == [10, 15, 20, 20]



def _run(params, results, resume, wait=True):
    args = [sys.executable, "-c", RUNNER, str(params), "resume" if resume else "fresh", f"results_dir={results}",
            *OVERRIDES]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if wait:
        return subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def _metrics(run_dir):
    rows = [json.loads(l) for l in (run_dir / "meta" / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds")
        r.pop("profile")  # wall-clock seconds inside
    return rows


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    base = tmp_path_factory.mktemp("meta")
    cfg = load_config(REPO / "params" / "ci.yaml", [f"results_dir={base / 'a'}"])
    probe.run(cfg, log=lambda m: None)
    shutil.copytree(base / "a" / "ci" / "probe", base / "b" / "ci" / "probe")
    return base


@pytest.mark.whole_run(seconds=72)
def test_sigkill_mid_step_then_resume_matches_uninterrupted_run(probed):
    params = REPO / "params" / "ci.yaml"
    full = _run(params, probed / "a", resume=False)
    assert full.returncode == 0, full.stderr[-2000:]
    # every step logs the world's question diagnostics and the collapse guard's record; the run ends with the
    # diagnostics of the trained and the untrained teacher on the same fresh samples
    rows = [json.loads(l) for l in (probed / "a" / "ci" / "meta" / "metrics.jsonl").read_text().splitlines()]
    assert all("useful_share" in r["diagnostics"] and r["diagnostics"]["n"] == 12 for r in rows)
    assert all({"retries", "kl_prev", "reject_after", "kept_previous"} <= set(r["guard"]) for r in rows)
    end = json.loads((probed / "a" / "ci" / "meta" / "diagnostics.json").read_text())
    assert end["step"] == 4 and {"useful_share", "reject_rate"} <= set(end["trained"]) & set(end["untrained"])
    run_b = probed / "b" / "ci"
    proc = _run(params, probed / "b", resume=False, wait=False)
    metrics = run_b / "meta" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    time.sleep(0.3)  # inside the third outer step
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(metrics.read_text().splitlines())
    assert done_before < 4
    resumed = _run(params, probed / "b", resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed at outer step" in resumed.stdout
    a, b = _metrics(probed / "a" / "ci"), _metrics(run_b)
    assert [r["step"] for r in b] == [0, 1, 2, 3]
    assert a == b
    pq_a = json.loads((probed / "a" / "ci" / "meta" / "pq.json").read_text())
    pq_b = json.loads((run_b / "meta" / "pq.json").read_text())
    assert pq_a == pq_b and len(pq_a) == 4 * 6  # tau < 0: a promotion at every step
    # the teacher kept after outer step 2 (meta.teacher_snapshots) is the same in both runs
    import torch

    kept_a, kept_b = (torch.load(d / "ci" / "meta" / "checkpoints" / "teacher_step00002.pt") for d in (probed / "a", probed / "b"))
    assert kept_a.keys() == kept_b.keys() and all(torch.equal(kept_a[k], kept_b[k]) for k in kept_a)


def test_fresh_run_refuses_to_overwrite_a_checkpointed_run(probed):
    params = REPO / "params" / "ci.yaml"
    again = _run(params, probed / "a", resume=False)
    assert again.returncode != 0 and "resume" in again.stderr


def test_pq_questions_takes_the_best_datasets_up_to_that_many(probed):
    """meta.pq_questions = 8 with datasets of n = 4: each promotion adds the 2 best datasets (best first); the
    promoted student is still the median student of the best one (Algorithm 1)."""
    from soar_lite.stages import meta_train

    cfg = load_config(REPO / "params" / "ci.yaml", [f"results_dir={probed / 'pq'}", "meta.teachers=[grounded]",
                                                    "meta.g=3", "meta.n=4", "meta.pq_questions=8"])
    shutil.copytree(probed / "a" / "ci" / "probe", probed / "pq" / "ci" / "probe")
    run = meta_train.run(cfg, log=lambda m: None).runs[("grounded", 0)]
    rows = run.metrics
    assert len(run.promotions) == len(rows) == 2  # tau = -1: every step promotes
    for p, (_, r) in zip(run.promotions, rows.iterrows()):
        order = sorted(range(3), key=lambda k: -r.rewards[k])
        assert p["pq_datasets"] == order[:2] and p["dataset"] == order[0]
    assert len(run.pq) == 2 * 8


@pytest.mark.parametrize("min_window,expected", [
    (0, [(0.016667, True), (0.016667, True), (0.016667, True), (0.016667, True)]),  # the paper's rule: one step promotes
    (3, [(0.016667, False), (0.033333, False), (0.05, True), (0.016667, False)]),  # a full window since the reset
])
def test_a_window_not_yet_full_does_not_promote(min_window, expected):
    buffer, out = [], []
    for r in [0.05, 0.05, 0.05, 0.05]:
        buffer, ma, fired = promotion_window(buffer, r, window=3, tau=0.01, reset=True, min_window=min_window)
        out.append((round(ma, 6), fired))
    assert out == expected


def test_promotion_confirms_with_fresh_students_and_promotes_the_median(probed):
    """meta.promotion_students = 3 with r = 1: each promotion trains 3 fresh students on the best dataset, scores them
    on a fresh Q_R and promotes the median; metrics.jsonl and promotions.json record the candidates' scores."""
    from soar_lite.stages import meta_train
    from soar_lite.soar import median_student

    cfg = load_config(REPO / "params" / "ci.yaml", [f"results_dir={probed / 'confirm'}", "meta.teachers=[grounded]",
                                                    "meta.promotion_students=3", "meta.min_window=1"])
    shutil.copytree(probed / "a" / "ci" / "probe", probed / "confirm" / "ci" / "probe")
    run = meta_train.run(cfg, log=lambda m: None).runs[("grounded", 0)]
    assert len(run.promotions) == len(run.metrics) == 2  # tau = -1: every step promotes
    for p, (_, row) in zip(run.promotions, run.metrics.iterrows()):
        c = p["confirm"]
        assert len(c["rewards"]) == 3 and c["median"] == median_student(c["rewards"]) == p["student"]
        assert c["dataset"] == p["dataset"] == int(np.argmax(row.rewards)) and row.confirm == c
        assert p["reward"] == c["rewards"][c["median"]]
        assert p["tau"] == row.tau and p["inner_steps"] == row.inner_steps and p["moving_average"] == row.reward_ma


def test_tau_is_measured_at_every_stage_the_run_reaches(probed):
    """meta.tau_per_stage: after a promotion grows the inner loops, the null is measured again at the new count (the
    untrained teacher's datasets against the new baseline, own seeds); each promotion names the tau of the stage it
    was made in; the teacher sampled for the null is the untrained one and the trained teacher is put back."""
    from soar_lite.stages import meta_train

    cfg = load_config(REPO / "params" / "ci.yaml", [f"results_dir={probed / 'staged'}", "meta.teachers=[grounded]",
                                                    "meta.outer_steps=3", "meta.tau_null_steps=1", "meta.tau_fwer=0.99",
                                                    "meta.tau_null_sims=200", "meta.inner_steps_per_promotion=1",
                                                    "meta.max_inner_steps=2", "meta.reward_decoding=logprob",
                                                    "meta.student.group_size=8", "meta.student.batch_questions=4"])
    shutil.copytree(probed / "a" / "ci" / "probe", probed / "staged" / "ci" / "probe")
    run = meta_train.run(cfg, log=lambda m: None).runs[("grounded", 0)]
    stages = run.tau_stages
    assert run.promotions, "tau_fwer 0.99 puts tau at the bottom of the null: the run promotes"
    assert [t["inner_steps"] for t in stages] == [1, 2]  # stage 0, then the one the first promotion opened
    assert stages[0]["promotions"] == 0 and stages[1]["promotions"] == 1
    assert stages[0]["tau"] == run.tau_null_summary["tau"] and stages[0]["null"] == run.tau_null
    assert stages[1]["null"] != stages[0]["null"]  # measured again, on its own seeds
    by_inner = {t["inner_steps"]: t["tau"] for t in stages}
    for p in run.promotions:
        assert p["tau"] == by_inner[p["inner_steps"]]
    for _, row in run.metrics.iterrows():  # the tau in force at each step is its stage's
        assert row.tau == by_inner[row.inner_steps]
    # the rollouts the compute-matched Hard-Only matches count both calibrations
    per = cfg.meta.student.batch_questions * cfg.meta.student.group_size
    null = sum(len(s) * t["inner_steps"] for t in stages for s in t["null"]) * cfg.meta.r * per
    steps = sum(len(kj) * cfg.meta.r * i for kj, i in zip(run.metrics.rewards_kj, run.metrics.inner_steps)) * per
    assert run.student_rollouts(cfg.meta) == null + steps


def test_stage_tau_samples_the_untrained_teacher_and_restores_the_trained_one(probed):
    """A later stage's null comes from the untrained teacher; the teacher as trained is back afterwards; a stage
    already measured is not measured again; without meta.tau_per_stage stage 0's tau stays in force."""
    import torch

    from soar_lite.models import restore, snapshot
    from soar_lite.rundir import MetaLayout
    from soar_lite.soar import MetaTrainer
    from soar_lite.stages.common import hard_sets
    from soar_lite.tasks import make_task

    cfg = load_config(REPO / "params" / "ci.yaml", [f"results_dir={probed / 'a'}", "meta.tau_null_steps=1",
                                                    "meta.tau_null_sims=200", "meta.inner_steps_per_promotion=1",
                                                    "meta.max_inner_steps=3"])
    hard_train, _ = hard_sets(cfg)
    trainer = MetaTrainer(cfg, make_task(cfg.task), hard_train, MetaLayout(probed / "x"), log=lambda m: None)
    trainer.calibrate_tau()
    nudged = {k: v + 0.01 for k, v in snapshot(trainer.teacher).items()}  # a "trained" teacher
    restore(trainer.teacher, nudged)
    trainer.state.promotions.append({"step": 0})
    trainer.stage_tau()
    assert [t["inner_steps"] for t in trainer.state.tau_stages] == [1, 2]
    assert trainer.state.tau == trainer.state.tau_stages[1]["tau"]
    after = snapshot(trainer.teacher)
    assert all(torch.equal(after[k], nudged[k]) for k in nudged)
    trainer.stage_tau()  # nothing new to measure
    assert len(trainer.state.tau_stages) == 2
    # a checkpoint written before tau_stages existed: its stage 0 is taken from tau_null, not measured again
    trainer.state.tau_stages, trainer.state.promotions = [], []
    trainer.stage_tau()
    assert [t["inner_steps"] for t in trainer.state.tau_stages] == [1]
    assert trainer.state.tau_stages[0]["null"] == trainer.state.tau_null
    trainer.state.promotions.append({"step": 0})
    off = load_config(REPO / "params" / "ci.yaml", [f"results_dir={probed / 'a'}", "meta.tau_null_steps=1",
                                                    "meta.tau_per_stage=false"])
    trainer.cfg, trainer.meta = off, off.meta
    trainer.state.promotions.append({"step": 1})
    before = len(trainer.state.tau_stages)
    trainer.stage_tau()
    assert len(trainer.state.tau_stages) == before


def test_the_staged_design_keeps_the_family_wise_rate():
    """The family-wise false-promotion rate of the staged design, by simulation: null rewards throughout, tau
    calibrated per stage on that stage's own null steps (a later stage's R̂ twice as variable: longer inner loops),
    a full window after every reset (meta.min_window), promotions resetting the window. An untrained teacher's
    first false promotion is made under stage 0's tau, so the run's rate stays at meta.tau_fwer."""
    rng = np.random.default_rng(11)
    g, steps, window, runs = 64, 20, 3, 1500
    sds = [0.004, 0.008, 0.016]  # R̂'s spread per dataset at stage 0, 1, 2
    taus = [null_threshold(rng.normal(0.002, sd, size=(6, g)).tolist(), g=g, window=window, steps=steps, fwer=0.05,
                           sims=4000, seed=i).tau for i, sd in enumerate(sds)]
    any_promotion = 0
    for _ in range(runs):
        buffer, stage, fired_any = [], 0, False
        for t in range(steps):
            r_hat = rng.normal(0.002, sds[stage] / np.sqrt(g))
            buffer, _, fired = promotion_window(buffer, r_hat, window=window, tau=taus[stage], reset=True,
                                                min_window=window)
            if fired:
                fired_any, stage = True, min(stage + 1, len(sds) - 1)
        any_promotion += fired_any
    rate = any_promotion / runs
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / runs), rate


def test_the_frozen_teacher_control_promotes_but_never_moves(probed):
    """meta.teachers grounded-frozen: the same reward and promotion rule as SOAR, no teacher update -- its teacher
    at the end is the untrained one; it still promotes and fills PQ; its step-0 sample and rewards are the grounded
    run's (common random numbers: the kind is left out of the seeds)."""
    import torch

    from soar_lite.models import load_snapshot
    from soar_lite.stages import meta_train

    cfg = load_config(REPO / "params" / "ci.yaml", [f"results_dir={probed / 'frozen'}",
                                                    "meta.teachers=[grounded, grounded-frozen]"])
    shutil.copytree(probed / "a" / "ci" / "probe", probed / "frozen" / "ci" / "probe")
    res = meta_train.run(cfg, log=lambda m: None)
    grounded, frozen = res.runs[("grounded", 0)], res.runs[("grounded-frozen", 0)]
    assert frozen.dir.name == "meta_frozen" and len(frozen.promotions) == 2 and len(frozen.pq) == 2 * cfg.meta.n
    assert (frozen.metrics.teacher_kl == 0).all() and not frozen.guard_events
    assert frozen.metrics.questions[0] == grounded.metrics.questions[0]
    assert frozen.metrics.rewards[0] == grounded.metrics.rewards[0]
    end = load_snapshot(meta_train.trained_teacher_path(cfg, "grounded-frozen", 0))
    from soar_lite.models import load_policy, snapshot
    from soar_lite.seeds import derive

    start = snapshot(load_policy(cfg.model, seed=derive(cfg.seed, "model", "lora_init")))
    assert all(torch.equal(end[k], start[k]) for k in start)
