"""Pure metric functions, table-driven: pass@k, RLOO advantages, moving average, promotion, stopping rule."""
import math

import numpy as np
import pytest

from soar_lite.evaluate import centred_moving_average, make_sampler, stop_step, window_mean
from soar_lite.probe import pass_at_k, split_train_test
from soar_lite.rloo import cosine_lr, rloo_advantages, teacher_advantages
from soar_lite.soar import inner_steps_for, learnability, median_student, moving_average, should_promote
from soar_lite.student import RLItem


@pytest.mark.parametrize("n,c,k,expected", [
    (1, 0, 1, 0.0),
    (1, 1, 1, 1.0),
    (4, 0, 4, 0.0),          # n = k, c = 0
    (4, 1, 4, 1.0),          # n = k, any success -> 1
    (4, 4, 1, 1.0),          # c = n
    (10, 3, 1, 0.3),         # pass@1 = c / n
    (5, 2, 2, 1 - 3 / 10),   # 1 - C(3,2)/C(5,2)
    (32, 1, 8, 8 / 32),      # one success: k / n
    (128, 0, 32, 0.0),
])
def test_pass_at_k_table(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_large_n_is_stable():
    # C(10000, 5000) overflows floats; the product form does not
    v = pass_at_k(10_000, 3, 5_000)
    assert v == pytest.approx(1 - (5000 * 4999 * 4998) / (10000 * 9999 * 9998), rel=1e-9)
    assert 0 < pass_at_k(100_000, 1, 1) == pytest.approx(1e-5)


@pytest.mark.parametrize("n,c,k", [(4, 5, 1), (4, 1, 5), (4, 1, 0)])
def test_pass_at_k_rejects_bad_input(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize("rewards,expected", [
    ([1, 0], [1, -1]),
    ([1, 0, 0, 0], [1, -1 / 3, -1 / 3, -1 / 3]),
    ([0.5, 0.5, 0.5], [0, 0, 0]),
    ([3, 1, 2], [3 - 1.5, 1 - 2.5, 2 - 2]),
])
def test_rloo_advantages_hand_computed(rewards, expected):
    np.testing.assert_allclose(rloo_advantages(np.array(rewards, float)), expected)


def test_rloo_advantages_sum_to_zero_per_group():
    r = np.random.default_rng(0).random((5, 8))
    np.testing.assert_allclose(rloo_advantages(r).sum(axis=1), 0, atol=1e-12)


def test_teacher_advantages_broadcast_per_dataset():
    # R = (0.1, 0.0, 0.05, -0.05): A_1 = 0.1 - (0 + 0.05 - 0.05)/3 = 0.1
    adv = teacher_advantages([0.1, 0.0, 0.05, -0.05], [2, 2, 2, 2])
    np.testing.assert_allclose(adv, [0.1, 0.1, -1 / 30, -1 / 30, 0.05 - 0.05 / 3, 0.05 - 0.05 / 3,
                                     -0.05 - 0.15 / 3, -0.05 - 0.15 / 3])


def test_promotion_fires_when_moving_average_crosses_tau_and_not_before():
    tau, window = 0.01, 3
    rewards = [0.0, 0.02, 0.0, 0.005, 0.02, 0.03]
    # MA:     0.0, 0.01, 0.00667, 0.00833, 0.00833, 0.01833
    history, fired = [], []
    for r in rewards:
        history.append(r)
        fired.append(should_promote(moving_average(history, window), tau))
    assert fired == [False, False, False, False, False, True]
    assert not should_promote(0.01, 0.01)  # strictly greater


@pytest.mark.parametrize("rewards,expected", [([0.3, 0.1, 0.2], 2), ([0.4, 0.1, 0.3, 0.2], 3), ([0.0], 0)])
def test_median_student(rewards, expected):
    assert median_student(rewards) == expected


@pytest.mark.parametrize("rates,expected", [([0.0, 0.25, 1.0, 0.5], [0.0, 0.75, 0.0, 0.5])])
def test_learnability_reward(rates, expected):
    np.testing.assert_allclose(learnability(rates), expected)


def test_inner_steps_grow_by_five_per_promotion_with_cap():
    class M:  # noqa: D401 - a stand-in for MetaConfig
        inner_steps, inner_steps_per_promotion, max_inner_steps = 10, 5, 20
    assert [inner_steps_for(M, p) for p in range(4)] == [10, 15, 20, 20]


def test_cosine_lr():
    assert cosine_lr(0, 10, 1.0, 0) == pytest.approx(1.0)
    assert cosine_lr(10, 10, 1.0, 0) == pytest.approx(0.0)
    assert cosine_lr(0, 100, 1.0, 20) == pytest.approx(1 / 20)
    assert cosine_lr(20, 100, 1.0, 20) == pytest.approx(1.0)


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
    import pandas as pd
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


def test_split_is_seeded_and_disjoint():
    from soar_lite.tasks.base import Problem
    probs = [Problem(str(i), f"q{i}", "a") for i in range(11)]
    tr, te = split_train_test(probs, 0.5, seed=3)
    tr2, te2 = split_train_test(probs, 0.5, seed=3)
    assert [p.id for p in te] == [p.id for p in te2] and len(te) == 6 and len(tr) == 5
    assert not {p.id for p in tr} & {p.id for p in te}
