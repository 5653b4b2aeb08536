"""probe.py: the unbiased pass@k estimator and the seeded split, table-driven."""
import pytest

from soar_lite.probe import pass_at_k, split_train_test
from soar_lite.tasks.base import Problem


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


def test_split_is_seeded_and_disjoint():
    probs = [Problem(str(i), f"q{i}", "a") for i in range(11)]
    tr, te = split_train_test(probs, 0.5, seed=3)
    tr2, te2 = split_train_test(probs, 0.5, seed=3)
    assert [p.id for p in te] == [p.id for p in te2] and len(te) == 6 and len(tr) == 5
    assert not {p.id for p in tr} & {p.id for p in te}
