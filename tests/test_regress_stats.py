"""Statistics of `cosim regress --seeds`: criteria and baseline checks against scipy.stats and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cosim.evaluate.stats import unpaired
from cosim.regress_stats import baseline, criterion

X = [1.0, 2.0, 3.0, 4.0, 5.0]  # mean 3, s = 1.58114, sem 0.707107; t(0.975, 4) = 2.776445 -> CI [1.036757, 4.963243]


def test_criterion_fails_only_when_the_interval_lies_beyond_the_threshold():
    passed, detail, fig = criterion("m", None, 0.9, X, 0.05)
    assert not passed and "significantly beyond" in detail
    assert (fig["ci_low"], fig["ci_high"]) == pytest.approx((1.036757, 4.963243), abs=1e-5)
    assert fig["max_p"] == pytest.approx(stats.ttest_1samp(X, 0.9).pvalue)
    passed, detail, fig = criterion("m", None, 1.1, X, 0.05)  # mean 3 > 1.1, but 1.1 is inside the interval
    assert passed and "beyond, not significantly" in detail
    assert fig["max_p"] == pytest.approx(stats.ttest_1samp(X, 1.1).pvalue) and fig["max_p"] > 0.05
    passed, _, _ = criterion("m", 5.1, None, X, 0.05)  # min: the interval's top 4.963243 is below 5.1
    assert not passed
    passed, _, fig = criterion("m", 4.9, 10.0, X, 0.05)
    assert passed and fig["min_p"] == pytest.approx(stats.ttest_1samp(X, 4.9).pvalue)
    # a wider interval (alpha 0.01: t(0.995, 4) = 4.604095 -> [-0.25563, 6.25563]) no longer excludes 0.9
    passed, _, fig = criterion("m", None, 0.9, X, 0.01)
    assert passed and fig["ci_low"] == pytest.approx(3 - 4.604095 * 0.707107, abs=1e-5)


def test_criterion_on_a_deterministic_metric():
    assert criterion("steps", None, 0.0, [0, 0, 0], 0.05)[0]  # at the bound on every seed: inclusive, passes
    assert not criterion("steps", None, 0.0, [1, 1, 1], 0.05)[0]  # beyond on every seed, no variance: certain


def test_paired_baseline_check_against_scipy():
    old = {s: v for s, v in zip(range(5), X)}
    new = {s: v + 1.0 + 0.1 * (-1) ** s for s, v in old.items()}  # 1.1, 0.9, 1.1, 0.9, 1.1 worse (higher)
    (passed, detail, fig), better = baseline("m", +1, new, old, 0.5, 0.05)
    d = np.array([new[s] - old[s] for s in old])
    assert fig["p"] == pytest.approx(stats.ttest_rel(list(new.values()), list(old.values())).pvalue)
    assert (fig["ci_low"], fig["ci_high"]) == pytest.approx(stats.t.interval(0.95, 4, d.mean(), stats.sem(d)))
    assert not passed and not better and "paired t-test on 5 seeds" in detail
    (passed, detail, _), _ = baseline("m", +1, new, old, 2.0, 0.05)  # significant, but within the tolerance of 2
    assert passed and "within the tolerance" in detail
    (passed, _, _), better = baseline("m", -1, new, old, 0.5, 0.05)  # lower is worse: the same change is better
    assert passed and better


def test_unpaired_baseline_check_is_welch():
    a, b = np.array([10.0, 12.0, 11.0, 13.0, 12.5]), np.array([9.0, 9.5, 10.5, 9.8])
    r = unpaired(a, b)
    # Welch by hand: se^2 = s_a^2/n_a + s_b^2/n_b, Welch-Satterthwaite degrees of freedom
    va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 4
    df = (va + vb) ** 2 / (va ** 2 / 4 + vb ** 2 / 3)
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    assert (r["diff_low"], r["diff_high"]) == pytest.approx((a.mean() - b.mean() - half, a.mean() - b.mean() + half))
    assert r["welch_p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    (passed, detail, fig), _ = baseline("m", +1, dict(enumerate(a)), {10 + i: v for i, v in enumerate(b)}, 0.1, 0.05)
    assert not passed and "Welch" in detail and fig["p"] == pytest.approx(r["welch_p"])


def test_one_stored_value_is_a_one_sample_test():
    (passed, detail, fig), _ = baseline("m", +1, dict(enumerate(X)), 2.5, 0.1, 0.05)
    assert passed and "one-sample" in detail and fig["p"] == pytest.approx(stats.ttest_1samp(X, 2.5).pvalue)
