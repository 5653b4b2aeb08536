"""The cost model's work counts against PAPER.md §2.8, and its measured side against a run's own profile."""
import json

import pytest

from soar_lite.config import MetaConfig, load_config
from soar_lite.cost import (Lengths, Throughput, Work, inner_steps_schedule, measured, outer_step_work,
                            paper_implied_throughput, run_work)

PAPER = MetaConfig()  # the paper's Table 3 values are the defaults


@pytest.mark.parametrize("inner, student_rollouts", [(10, 40_960), (15, 61_440), (20, 81_920)])
def test_outer_step_counts_match_paper_section_2_8(inner, student_rollouts):
    """g*r = 16 students x inner steps x 8 questions x 32 samples; 16 x 64 + 64 greedy Q_R generations;
    256 accepted teacher samples (inflated by the rejection rate) and one update on them."""
    L = Lengths(reject_rate=0.2)
    w = outer_step_work(PAPER, inner, L)
    assert w.train_rows == student_rollouts + 256
    assert w.gen_rows == pytest.approx(student_rollouts + 17 * 64 + 256 / 0.8)
    assert w.score_tokens == 0


def test_a_run_is_8_2m_student_rollouts_without_promotions():
    low, high = run_work(PAPER, Lengths())
    assert low.train_rows - 200 * 256 == 8_192_000  # PAPER.md §2.8: ≈ 8.2M student rollouts, ≈ 51k teacher samples
    assert high.train_rows > low.train_rows


@pytest.mark.parametrize("promote, head", [(False, [10, 10, 10, 10, 10]), (True, [10, 15, 20, 20, 20])])
def test_inner_steps_schedule(promote, head):
    assert inner_steps_schedule(PAPER, promote)[:5] == head
    assert max(inner_steps_schedule(PAPER, promote)) == (20 if promote else 10)


def test_logprob_reward_scores_instead_of_generating():
    meta = load_config("params/tiny.yaml").meta
    w = outer_step_work(meta, 4, Lengths(student_prompt=8, student_greedy=6))
    assert w.score_tokens == (meta.g * meta.r + 1) * meta.M * 14


def test_paper_efficiency_prices_the_papers_run_at_its_reported_hours():
    tok_s = paper_implied_throughput(1500.0)
    low, high = run_work(PAPER, Lengths())
    thr = Throughput(tok_s, tok_s, tok_s)
    assert (thr.seconds(low) + thr.seconds(high)) / 2 / 3600 == pytest.approx(1500.0)


def test_measured_throughput_and_lengths_from_profiles(tmp_path):
    rows = [{"step": s, "seconds": 10.0, "profile": {"gen_rows": 100, "gen_prompt_tokens": 800, "gen_tokens": 600,
                                                     "gen_s": 2.0, "train_rows": 50, "train_tokens": 4000, "train_s": 8.0,
                                                     "score_tokens": 0, "score_s": 0.0}} for s in range(2)]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    thr, L, seconds = measured(path)
    assert (thr.gen, thr.train, L.student_completion, L.student_prompt, seconds) == (300.0, 500.0, 6.0, 8.0, 10.0)
    assert thr.seconds(Work(gen_tokens=600, train_tokens=4000)) == pytest.approx(10.0)


def test_cli_cost_prints_the_estimate_and_names_bad_input():
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "soar_lite.cli", "cost", "paper-math", "--throughput", "20000,8000"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "given throughput" in ok.stdout and "paper's efficiency" in ok.stdout and "8,192,000" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "soar_lite.cli", "cost", "paper-math", "--throughput", "1,2,3"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--throughput wants GEN,TRAIN" in bad.stderr


@pytest.mark.parametrize("concurrent, waves", [(1, 16), (2, 8), (16, 1), (32, 1), (5, 4)])
def test_concurrent_students_shorten_the_critical_path_of_an_outer_step(concurrent, waves):
    """The paper's step has g*r = 16 students: with c at a time, ceil(16 / c) students lie on the critical path."""
    L = Lengths()
    serial, wall = outer_step_work(PAPER, 10, L), outer_step_work(PAPER, 10, L, concurrent=concurrent)
    one_student = (serial.train_rows - PAPER.g * PAPER.n) / 16
    assert wall.train_rows - PAPER.g * PAPER.n == pytest.approx(one_student * waves)
    assert wall.gen_tokens <= serial.gen_tokens


@pytest.mark.parametrize("kind, workers", [("local", 1), ("local", 2), ("ray", 4), ("ray", 16)])
def test_pipeline_wall_time_falls_with_workers_and_never_exceeds_the_total(kind, workers):
    from soar_lite.cost import estimate_table

    cfg = load_config("params/paper-math.yaml", [f"executor.kind={kind}", f"executor.workers={workers}"])
    est = estimate_table(cfg, Throughput(1000.0, 1000.0, 3000.0), Lengths(), n_test=360, pool_size=5000)
    for total, wall in zip(est["pipeline_h"], est["pipeline_wall_h"]):
        assert wall <= total * (1 + 1e-9)
        if workers == 1:
            assert wall == pytest.approx(total)
        else:
            assert wall < total
