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
from soar_lite.soar import inner_steps_for, learnability, median_student, null_threshold, promotion_window, should_promote
from soar_lite.stages import probe

from conftest import REPO
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


@pytest.mark.parametrize("null,window,z,expected", [([0.0, 0.02], 4, 2.0, 0.01 + 2 * 0.0141421356 / 2),
                                                    ([0.01, 0.01, 0.01], 3, 2.0, 0.01)])
def test_null_threshold(null, window, z, expected):
    assert null_threshold(null, window, z) == pytest.approx(expected)


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


def test_sigkill_mid_step_then_resume_matches_uninterrupted_run(probed):
    params = REPO / "params" / "ci.yaml"
    full = _run(params, probed / "a", resume=False)
    assert full.returncode == 0, full.stderr[-2000:]
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
