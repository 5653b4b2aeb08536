"""rloo.py: RLOO advantages (student and teacher) and the learning-rate schedule, table-driven."""
import numpy as np
import pytest

from soar_lite.rloo import cosine_lr, rloo_advantages, teacher_advantages


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


def test_cosine_lr():
    assert cosine_lr(0, 10, 1.0, 0) == pytest.approx(1.0)
    assert cosine_lr(10, 10, 1.0, 0) == pytest.approx(0.0)
    assert cosine_lr(0, 100, 1.0, 20) == pytest.approx(1 / 20)
    assert cosine_lr(20, 100, 1.0, 20) == pytest.approx(1.0)


