"""Comparisons between methods: a difference, its 95% interval, a test, and the power of the design.

- `compare(a, b, paired)`: paired t (students matched by index: same training streams, test-sampling seeds and
  question-draw index, the evaluation's common random numbers) or Welch's t (unpaired) on per-student scores.
- `verdict(...)`: the word a comparison earns at its unit of replication (reproduced / contradicted only with at least
  MIN_REPLICATES units per arm; suggestive below; untestable without variance).
- `power(...)`: the probability that the same test rejects at alpha = 0.05 when the true gap is the paper's
  relative gap, by simulation calibrated on this world's own noise (the observed SD of the paired differences,
  or of each arm for Welch).
The paper reports mean ± SD over seeds and no tests (§2.9); these are ours.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

ALPHA = 0.05
TIE = 1e-12  # a standard error this small (relative to the difference) is float rounding of a tie: no variance


def compare(a, b, paired: bool) -> dict:
    """mean(a) - mean(b) with a 95% t interval and a two-sided p-value; NaN where n is too small."""
    with warnings.catch_warnings():  # near-identical samples (common random numbers) make scipy warn; the result stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return _compare(a, b, paired)


def _compare(a, b, paired: bool) -> dict:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = {"difference": float(a.mean() - b.mean()) if len(a) and len(b) else np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "p_value": np.nan, "n_a": len(a), "n_b": len(b), "test": "paired t" if paired else "Welch t"}
    if paired:
        if len(a) != len(b):
            raise ValueError(f"a paired comparison needs equal n, got {len(a)} and {len(b)}")
        d = a - b
        if len(d) < 2:
            return out
        se, dof = d.std(ddof=1) / np.sqrt(len(d)), len(d) - 1
        if se <= TIE * max(1.0, abs(d.mean())):  # every pair differs by the same amount (to rounding): no noise to
            # test against -- untestable, never p = 0
            return dict(out, test="untestable")
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
    else:
        if len(a) < 2 or len(b) < 2:
            return out
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = np.sqrt(va + vb)
        if se <= TIE * max(1.0, abs(out["difference"])):
            return dict(out, test="untestable")
        dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    half = float(stats.t.ppf(1 - ALPHA / 2, dof) * se)
    out.update(ci_low=out["difference"] - half, ci_high=out["difference"] + half, p_value=p)
    return out


MIN_REPLICATES = 3  # units per arm below which a significant difference is only "suggestive"


def verdict(difference: float, p_value: float, k: int, test: str = "") -> str:
    """The word a comparison earns at the unit its claim is about (`k`: replicates of that unit in the smaller arm):
    "untestable" (fewer than 2, or no variance), "not established" (p >= alpha), "suggestive (k <unit>)" (p < alpha
    on fewer than MIN_REPLICATES), else "reproduced" (the first arm higher) or "contradicted"."""
    if test == "untestable" or k < 2 or p_value is None or np.isnan(p_value):
        return "untestable"
    if p_value >= ALPHA:
        return "not established"
    if k < MIN_REPLICATES:
        return "suggestive"
    return "reproduced" if difference > 0 else "contradicted"


def power(gap: float, n_a: int, n_b: int, paired: bool, sd_a: float, sd_b: float = 0.0, sd_diff: float = 0.0,
          sims: int = 4000, seed: int = 0) -> float:
    """P(p < alpha) for a true difference `gap` with normal noise: paired (n_a pairs, SD of the differences
    `sd_diff`) or Welch (SDs sd_a, sd_b). `seed` is the caller's derived seed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _power(gap, n_a, n_b, paired, sd_a, sd_b, sd_diff, sims, seed)


def _power(gap, n_a, n_b, paired, sd_a, sd_b, sd_diff, sims, seed) -> float:
    rng = np.random.default_rng(seed)
    if paired:
        if n_a < 2 or not sd_diff > 0:
            return np.nan
        d = rng.normal(gap, sd_diff, size=(sims, n_a))
        p = stats.ttest_1samp(d, 0.0, axis=1).pvalue
    else:
        if n_a < 2 or n_b < 2 or not (sd_a > 0 or sd_b > 0):
            return np.nan
        a = rng.normal(gap, sd_a, size=(sims, n_a))
        b = rng.normal(0.0, sd_b, size=(sims, n_b))
        p = stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue
    return float(np.mean(p < ALPHA))


def mean_sd(x) -> str:
    """'mean ± SD (n)' in percent, the paper's tables' statistic."""
    x = 100 * np.asarray(x, dtype=np.float64)
    return f"{x.mean():.1f} ± {x.std(ddof=1) if len(x) > 1 else 0.0:.1f} (n={len(x)})"


def two_proportions(p_a: float, n_a: int, p_b: float, n_b: int) -> dict:
    """p_a - p_b for two shares of n_a and n_b items: a 95% Wald interval and a two-sided pooled z test (NaN when a
    side is empty or both shares are 0 or 1)."""
    out = {"difference": p_a - p_b, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    if n_a < 1 or n_b < 1:
        return out
    se = np.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    pooled = (p_a * n_a + p_b * n_b) / (n_a + n_b)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    half = float(stats.norm.ppf(1 - ALPHA / 2) * se)
    out.update(ci_low=out["difference"] - half, ci_high=out["difference"] + half)
    if se0 > 0:
        out["p_value"] = float(2 * stats.norm.sf(abs(out["difference"]) / se0))
    return out


def rate_upper_bound(count: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact (Clopper-Pearson) upper bound of a per-trial rate from `count` successes in `n` trials: what
    "0 successes in n" still allows (about 3/n at 95%). NaN for n < 1."""
    if n < 1:
        return float("nan")
    if count >= n:
        return 1.0
    return float(stats.beta.ppf(confidence, count + 1, n - count))


def common_rate_test(counts, samples: int) -> dict:
    """Whether per-problem success counts (each out of `samples`) fit one common rate: the binomial index-of-dispersion
    test, D = sum (c_i - c_mean)^2 / (c_mean (1 - c_mean / samples)) ~ chi2(N - 1) under one rate. A probe whose
    counts fit one rate keeps problems by the luck of the draw, not by a property of the problem.
    Returns rate, dispersion (D / (N - 1): ~1 under one rate, > 1 when problems differ), p_value (of "one rate";
    NaN when no problem or no success: nothing was selected on anything) and solved_share (problems with >= 1)."""
    c = np.asarray(counts, dtype=np.float64)
    out = {"n": int(len(c)), "rate": float("nan"), "dispersion": float("nan"), "p_value": float("nan"),
           "solved_share": float("nan")}
    if len(c) == 0 or samples < 1:
        return out
    mean = float(c.mean())
    out.update(rate=mean / samples, solved_share=float((c > 0).mean()))
    var0 = mean * (1 - mean / samples)
    if len(c) < 2 or var0 <= 0:
        return out
    d = float(((c - mean) ** 2).sum() / var0)
    out.update(dispersion=d / (len(c) - 1), p_value=float(stats.chi2.sf(d, len(c) - 1)))
    return out


def p_text(p: float) -> str:
    """A p-value as reports print it: two significant digits, '< 1e-4' below that (no false precision), 'nan' kept."""
    if p != p:
        return "nan"
    return "< 1e-4" if p < 1e-4 else f"{p:.2g}"


def p_eq(p: float) -> str:
    """'p = 0.012', or 'p < 1e-4' (`p_text` in a sentence)."""
    text = p_text(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"
