"""evaluate.py: the stopping rule (App. B.8), window means and the mixed / curriculum batch samplers."""
import math

import numpy as np
import pandas as pd
import pytest

from soar_lite.evaluate import centred_moving_average, make_sampler, stop_step, window_mean
from soar_lite.student import RLItem


def test_centred_moving_average():
    np.testing.assert_allclose(centred_moving_average([0, 0, 3, 0, 0], 3), [0, 1, 1, 1, 0])


def test_stop_rule_on_a_logistic_curve():
    # a logistic rise centred at step 300 with width 30: steepest at 300, slope falls below 15% of it
    # where sech^2((t-300)/60) < 0.15, i.e. t - 300 > 60 * acosh(1/sqrt(0.15)) ~= 96
    t = np.arange(1000)
    r = 1 / (1 + np.exp(-(t - 300) / 30))
    s = stop_step(r, window=25, fraction=0.15)
    assert abs(s - (300 + 60 * math.acosh(1 / math.sqrt(0.15)))) <= 3


@pytest.mark.parametrize("curve,expected", [(np.zeros(50), 49), (np.linspace(1, 0, 50), 49), ([0.5], 0)])
def test_stop_rule_without_a_rise_stops_at_the_end(curve, expected):
    assert stop_step(curve) == expected


def test_window_mean():
    curve = pd.DataFrame({"step": [0, 10, 20, 30, 0, 10, 20, 30], "k": [1] * 4 + [4] * 4,
                          "pass_at_k": [0, 0.1, 0.2, 0.9, 0, 0.2, 0.4, 1.0]})
    m = window_mean(curve, stop=10, window=10)
    assert m[1] == pytest.approx(0.15) and m[4] == pytest.approx(0.3)


def _items(prefix, n):
    return [RLItem(f"{prefix}{i}", "0", f"{prefix}{i}") for i in range(n)]


def test_mixed_batches_draw_from_the_union_in_proportion():
    syn, real = _items("s", 100), _items("r", 300)
    sampler = make_sampler(syn, real, "mixed", 8, 64)
    rng = np.random.default_rng(0)
    picks = [it.key[0] for step in range(500) for it in sampler(step, rng)]
    assert picks.count("s") / len(picks) == pytest.approx(0.25, abs=0.02)


def test_curriculum_batches_are_synthetic_then_real():
    syn, real = _items("s", 10), _items("r", 10)
    sampler = make_sampler(syn, real, "curriculum", 4, 64)
    rng = np.random.default_rng(0)
    assert all(it.key[0] == "s" for step in range(64) for it in sampler(step, rng))
    assert all(it.key[0] == "r" for step in range(64, 100) for it in sampler(step, rng))
    assert all(it.key[0] == "r" for it in make_sampler([], real, "curriculum", 4, 64)(0, rng))  # Hard-Only




@pytest.mark.parametrize("method,mode,group,warmup", [
    ("hard-only", "curriculum", 32, 20),
    ("hard-only-4x-group", "curriculum", 128, 20),   # Table 4's g = 128 row
    ("soar-pq", "curriculum", 32, 0),                # App. B.6: no warm-up for PQ in curriculum mode (REVIEW P2)
    ("soar-pq", "mixed", 32, 20),
    ("grounded-t", "curriculum", 32, 20),
])
def test_method_settings(method, mode, group, warmup):
    from soar_lite.config import EvalConfig
    from soar_lite.stages.evaluate import method_settings

    s = method_settings(EvalConfig(mode=mode), method).student
    assert (s.group_size, s.warmup_steps) == (group, warmup)


@pytest.mark.parametrize("method, run_mode, mode, steps, warmup", [
    ("base-t@curriculum", "mixed", "curriculum", 1500, 20),    # Figs. 7/8: the other mode of one method
    ("base-t@mixed", "curriculum", "mixed", 1500, 20),
    ("soar-pq@curriculum", "mixed", "curriculum", 1500, 0),    # PQ in curriculum mode keeps App. B.6's zero warm-up
    ("curated@mixed", "mixed", "mixed", 1500, 20),
    ("hard-only-extended", "curriculum", "curriculum", 6000, 20),  # v3 Fig. 10: 4x the steps
])
def test_mode_and_extended_arms(method, run_mode, mode, steps, warmup):
    from soar_lite.config import EvalConfig
    from soar_lite.stages.evaluate import base_method, method_settings

    s = method_settings(EvalConfig(mode=run_mode), method)
    assert (s.mode, s.steps, s.student.warmup_steps) == (mode, steps, warmup)
    assert base_method(method) in ("base-t", "soar-pq", "curated", "hard-only-extended")


@pytest.mark.parametrize("method, steps, serl_step, trained, fixed, mode", [
    ("serl", 1500, 100, 1500, 100, "mixed"),     # v3 Tables 4/5: SeRL at step 100, no curriculum
    ("serl", 120, 200, 200, 200, "mixed"),       # a step past the evaluation's steps trains that long
    ("serl@curriculum", 1500, 100, 1500, 100, "curriculum"),  # unless named with a mode
])
def test_serl_is_reported_at_its_fixed_step(method, steps, serl_step, trained, fixed, mode):
    from soar_lite.config import EvalConfig
    from soar_lite.stages.evaluate import method_settings

    s = method_settings(EvalConfig(steps=steps, eval_every=10, serl_step=serl_step, mode="curriculum"), method)
    assert (s.steps, s.fixed_step, s.mode) == (trained, fixed, mode)


@pytest.mark.parametrize("difference, p_value, expected", [
    (0.05, 0.01, "v3 Tables 4/5: SeRL beats Hard-Only in the paper: here difference established (the first arm higher)"),
    (-0.05, 0.01, "v3 Tables 4/5: SeRL beats Hard-Only in the paper: here difference established (the first arm lower)"),
    (0.01, 0.40, "v3 Tables 4/5: SeRL beats Hard-Only in the paper: here difference not established"),
])
def test_serl_finding_sentence_reads_the_comparison(difference, p_value, expected):
    import pandas as pd

    from soar_lite.stages.evaluate import EvaluateResult

    comps = pd.DataFrame([{"comparison": "serl vs hard-only", "k": 32, "difference": difference, "ci_low": -0.1,
                           "ci_high": 0.1, "p_value": p_value, "n_a": 3, "n_b": 3, "power": float("nan"),
                           "test": "paired t", "paper_ratio": 1.29, "note": ""}])
    res = EvaluateResult(table=pd.DataFrame(), curves=pd.DataFrame(), stops=pd.DataFrame(), comparisons=comps,
                         skipped={}, timings={}, n_questions={}, pq_runs=[], ps_stages={})
    sentences = [s for s in res.paper_findings(32) if s.startswith("v3 Tables 4/5")]
    assert len(sentences) == 1 and sentences[0].startswith(expected)  # SOAR-PQ vs SeRL not evaluated: no sentence


@pytest.mark.parametrize("note, sentence, verdict", [
    # every student at 0 in both arms (tiny-ablations at cd6ffb4): untestable, its numbers kept, the note appended
    ("no power: the paper's Table 4 has no hard-only-extended row",
     "hard-only-extended vs hard-only at pass@32: untestable -- +0.0 points of pass@32 (no variance between units",
     "untestable"),
    # two arms identical by construction: the note is the reason, and the verdict cannot be tested
    ("untestable: the two teachers are identical (no grounded run promoted, so the arms never diverged)",
     "hard-only-extended vs hard-only: untestable: the two teachers are identical", "cannot be tested here"),
])
def test_a_no_power_note_never_replaces_an_untestable_verdict(note, sentence, verdict):
    import pandas as pd

    from soar_lite.stages.evaluate import EvaluateResult

    comps = pd.DataFrame([{"comparison": "hard-only-extended vs hard-only", "k": 32, "difference": 0.0,
                           "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan"), "n_a": 3,
                           "n_b": 3, "power": float("nan"), "test": "untestable", "paper_ratio": float("nan"), "note": note}])
    res = EvaluateResult(table=pd.DataFrame(), curves=pd.DataFrame(), stops=pd.DataFrame(), comparisons=comps,
                         skipped={}, timings={}, n_questions={}, pq_runs=[], ps_stages={})
    lines = [s for s in res.findings(32) if s.startswith("hard-only-extended vs hard-only")]
    assert len(lines) == 1 and lines[0].startswith(sentence)
    assert res.verdict("hard-only-extended vs hard-only", 32)[0] == verdict
    fig10 = [s for s in res.paper_findings(32) if s.startswith("v3 Fig. 10")]
    assert len(fig10) == (1 if verdict == "untestable" else 0)  # a comparison that cannot be tested gets no sentence
    assert all("here untestable -- hard-only-extended vs hard-only +0.0 points" in f for f in fig10)
    if verdict == "untestable":  # the no-power note still follows the verdict
        assert "no power: the paper's Table 4" in lines[0]


def test_pass_at_steps_reads_the_curve_at_the_papers_steps():
    import pandas as pd

    from soar_lite.stages.evaluate import EvaluateResult

    curves = pd.DataFrame({"step": [50, 50, 100, 100, 60], "k": [1, 1, 1, 1, 1], "pass_at_k": [0.1, 0.3, 0.2, 0.2, 0.9],
                           "method": ["serl"] * 4 + ["serl"], "seed": [0, 1, 0, 1, 0]})
    res = EvaluateResult(table=pd.DataFrame(), curves=curves, stops=pd.DataFrame(), comparisons=pd.DataFrame(),
                         skipped={}, timings={}, n_questions={}, pq_runs=[], ps_stages={})
    t = res.pass_at_steps("serl", [50, 100, 150])  # step 150 was never evaluated: left out
    assert list(t.index) == [50, 100] and t.loc[50, 1] == "20.0 ± 14.1 (n=2)" and t.loc[100, 1] == "20.0 ± 0.0 (n=2)"
    assert res.pass_at_steps("hard-only", [50]).empty



def test_a_fresh_student_is_evaluated_at_step_0_every_multiple_and_its_last_step(policy, tiny_task):
    """A student whose steps are not a multiple of eval_every (the compute-matched Hard-Only) is still evaluated at
    its last step -- the step it is read at -- and the count is `evaluation_points`."""
    import dataclasses

    from soar_lite.config import load_config
    from soar_lite.evaluate import evaluation_points, train_fresh_student
    from soar_lite.models import restore, snapshot
    from soar_lite.seeds import derive, stream_key

    tiny_task.bind_tokenizer(policy.tokenizer)
    ecfg = dataclasses.replace(load_config("ci").evaluate, steps=5, eval_every=2, samples=2, ks=[1])
    probs = tiny_task.problems("hard-candidates")[:4]
    items = [RLItem(p.question, p.answer, stream_key("problem", p.id)) for p in probs]
    start = snapshot(policy)
    try:
        curve, rewards = train_fresh_student(policy, tiny_task, start, synthetic=[], hard_train=items,
                                             test_problems=probs[:2], ecfg=ecfg,
                                             seed_of=lambda *a: derive(0, "evaluate", *a), batch_size=64)
    finally:
        restore(policy, start)
    assert sorted(set(curve.step)) == [0, 2, 4, 5] and len(rewards) == 5
    assert len(set(curve.step)) == evaluation_points(5, 2)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("killed_after", [1, 2, 3])  # saves: inside a chunk, at a chunk's end, inside the next
def test_a_killed_student_resumes_from_its_saved_state_to_the_uninterrupted_result(policy, tiny_task, tmp_path,
                                                                                    monkeypatch, killed_after):
    """The compute-matched Hard-Only trains for hours, longer than a sitting: a student with a partial file saves its
    state as it trains (adapter, AdamW, the chunk's generator, curve, rewards), and a student killed after a save and
    started again from that file ends with the curve, the rewards and the adapter of one never killed -- whether it
    was killed inside a chunk or at a chunk's end. A state made with another key, or a damaged file, is not resumed
    from (the damaged one is named)."""
    import dataclasses

    import torch

    from soar_lite import evaluate as ev
    from soar_lite.config import load_config
    from soar_lite.models import restore, snapshot
    from soar_lite.seeds import derive, stream_key

    tiny_task.bind_tokenizer(policy.tokenizer)
    ecfg = dataclasses.replace(load_config("ci").evaluate, steps=9, eval_every=4, samples=2, ks=[1, 2], mode="mixed")
    probs = tiny_task.problems("hard-candidates")[:4]
    items = [RLItem(p.question, p.answer, stream_key("problem", p.id)) for p in probs]
    synthetic = [RLItem(f"f^1({i:03d})", "000", stream_key("synthetic", i)) for i in range(3)]
    start = snapshot(policy)

    def train(**kw):
        try:
            curve, rewards = ev.train_fresh_student(policy, tiny_task, start, synthetic=synthetic, hard_train=items,
                                                    test_problems=probs[:2], ecfg=ecfg, batch_size=64,
                                                    seed_of=lambda *a: derive(0, "evaluate", *a), **kw)
            return curve, rewards, snapshot(policy)
        finally:
            restore(policy, start)

    whole_curve, whole_rewards, whole_adapter = train()
    monkeypatch.setattr(ev, "PARTIAL_EVERY_S", 0.0)
    monkeypatch.setattr(ev, "PARTIAL_PIECE_STEPS", 2)
    real_save, saves = ev.save_partial, []

    def save_then_kill(*a, **kw):
        real_save(*a, **kw)
        saves.append(a[6])  # done
        if len(saves) == killed_after:
            raise _Killed

    monkeypatch.setattr(ev, "save_partial", save_then_kill)
    partial = tmp_path / "hard-only-s0.partial.pt"
    with pytest.raises(_Killed):
        train(partial=partial, partial_key="k")
    assert saves[-1] == [2, 4, 6][killed_after - 1] and partial.exists()
    killed_s = ev.partial_seconds(torch.load(partial, weights_only=True))
    assert killed_s > 0  # its training time so far travels with it
    monkeypatch.setattr(ev, "save_partial", real_save)
    lines = []
    curve, rewards, adapter = train(partial=partial, partial_key="k", log=lines.append)
    assert any(f"resumed at step {saves[-1]} of 9" in line for line in lines)
    pd.testing.assert_frame_equal(curve, whole_curve)
    assert rewards == whole_rewards and len(rewards) == 9
    assert all(torch.equal(adapter[n], whole_adapter[n]) for n in whole_adapter)
    assert ev.partial_seconds(torch.load(partial, weights_only=True)) > killed_s  # saved again: the sittings summed
    # another key: not resumed from (the student trains from step 0, to the same result)
    assert ev.load_partial(partial, "another key") is None
    partial.write_bytes(b"not a checkpoint")
    lines = []
    assert ev.load_partial(partial, "k", lines.append) is None
    assert len(lines) == 1 and lines[0].startswith("hard-only-s0.partial.pt: damaged (") and \
        lines[0].endswith("): the student starts over"), lines


@pytest.mark.parametrize("state, seconds", [({"seconds": 12.5}, 12.5), ({"seconds": 0}, 0.0),
                                            ({"done": 40}, 0.0)])  # saved before seconds were recorded: unknown, 0
def test_partial_seconds(state, seconds):
    from soar_lite.evaluate import partial_seconds

    assert partial_seconds(state) == seconds
