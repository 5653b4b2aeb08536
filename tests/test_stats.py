"""stats.py: differences with intervals and tests (paired / Welch), and the simulated power, table-driven."""
import numpy as np
import pytest
from scipy import stats as st

from soar_lite.stats import compare, mean_sd, power


@pytest.mark.parametrize("a,b", [([0.1, 0.2, 0.3, 0.25], [0.05, 0.1, 0.2, 0.1]), ([0.5, 0.4, 0.45], [0.5, 0.6, 0.4])])
def test_paired_matches_scipy(a, b):
    r = compare(a, b, paired=True)
    d = np.subtract(a, b)
    assert r["difference"] == pytest.approx(d.mean())
    assert r["p_value"] == pytest.approx(st.ttest_rel(a, b).pvalue)
    lo, hi = st.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=st.sem(d))
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi))
    assert r["test"] == "paired t" and r["n_a"] == r["n_b"] == len(a)


@pytest.mark.parametrize("a,b", [([0.1, 0.2, 0.3], [0.05, 0.1, 0.2, 0.1, 0.0]), ([1.0, 2.0], [3.0, 5.0, 4.0])])
def test_welch_matches_scipy(a, b):
    r = compare(a, b, paired=False)
    assert r["p_value"] == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue)
    assert r["ci_low"] < r["difference"] < r["ci_high"]
    assert r["test"] == "Welch t"


@pytest.mark.parametrize("a,b,paired,p", [
    ([0.2, 0.2], [0.2, 0.2], True, np.nan),  # no difference and no variance: untestable, not p = 1 (issue 35)
    ([0.3], [0.1], True, np.nan),          # one pair: no test
    ([0.3], [0.1, 0.2], False, np.nan),
])
def test_degenerate_inputs(a, b, paired, p):
    r = compare(a, b, paired)
    assert (np.isnan(r["p_value"]) and np.isnan(p)) or r["p_value"] == p


def test_paired_needs_equal_n():
    with pytest.raises(ValueError, match="equal n"):
        compare([1, 2], [1, 2, 3], paired=True)


@pytest.mark.parametrize("gap,paired,low,high", [(0.0, True, 0.02, 0.09), (0.0, False, 0.02, 0.09),
                                                 (1.0, True, 0.95, 1.0), (1.0, False, 0.9, 1.0)])
def test_power_is_alpha_without_a_gap_and_near_one_with_a_large_one(gap, paired, low, high):
    pw = power(gap, 8, 8, paired, sd_a=0.5, sd_b=0.5, sd_diff=0.5, sims=4000, seed=1)
    assert low <= pw <= high


def test_mean_sd_is_in_percent():
    assert mean_sd([0.1, 0.3]) == "20.0 ± 14.1 (n=2)"


@pytest.mark.parametrize("pa,na,pb,nb", [(0.158, 2000, 0.048, 2000), (0.5, 100, 0.5, 100), (0.1, 50, 0.3, 80)])
def test_two_proportions_matches_the_z_test(pa, na, pb, nb):
    from soar_lite.stats import two_proportions

    r = two_proportions(pa, na, pb, nb)
    pooled = (pa * na + pb * nb) / (na + nb)
    z = (pa - pb) / np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    assert r["difference"] == pytest.approx(pa - pb)
    assert r["p_value"] == pytest.approx(2 * st.norm.sf(abs(z)))
    half = 1.959964 * np.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((pa - pb - half, pa - pb + half), rel=1e-5)


@pytest.mark.parametrize("pa,na,pb,nb", [(0.0, 10, 0.0, 10), (0.2, 0, 0.1, 10)])
def test_two_proportions_undefined(pa, na, pb, nb):
    from soar_lite.stats import two_proportions

    assert np.isnan(two_proportions(pa, na, pb, nb)["p_value"])
