"""Statistics of an evaluation, all from scipy.stats: summaries with 95 % intervals and paired tests.

`summarize` gives mean, median, quantiles, Student-t and bootstrap (percentile, seeded) intervals
of the mean. `paired` compares two controllers on the same units (days, or seeds): the mean
difference with its t interval, the Wilcoxon signed-rank test, the paired t-test and Cohen's d_z.
`adjust` corrects p-values of several comparisons (Benjamini-Hochberg false discovery rate).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

LEVEL = 0.95
QUANTILES = (0.05, 0.25, 0.75, 0.95)
RESAMPLES = 2_000


def t_interval(x: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean (NaN below two values; a point when all values agree)."""
    n = len(x)
    if n < 2:
        return math.nan, math.nan
    sem = stats.sem(x)
    if sem == 0:
        return float(x[0]), float(x[0])
    low, high = stats.t.interval(level, n - 1, loc=float(np.mean(x)), scale=sem)
    return float(low), float(high)


def bootstrap_interval(x: np.ndarray, level: float = LEVEL, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (scipy.stats.bootstrap, `RESAMPLES` resamples, seeded)."""
    if len(x) < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap((x,), np.mean, confidence_level=level, n_resamples=RESAMPLES, method="percentile",
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(values: np.ndarray, level: float = LEVEL, seed: int = 0) -> dict[str, float]:
    """n, mean, std, median, quantiles and both intervals of the finite values."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    out: dict[str, float] = {"n": len(x)}
    if len(x) == 0:
        return out | {k: math.nan for k in ("mean", "std", "median", "t_low", "t_high", "boot_low", "boot_high")}
    out |= {"mean": float(np.mean(x)), "std": float(np.std(x, ddof=1)) if len(x) > 1 else math.nan,
            "median": float(np.median(x))}
    out |= {f"q{round(100 * q):02d}": float(np.quantile(x, q)) for q in QUANTILES}
    out["t_low"], out["t_high"] = t_interval(x, level)
    out["boot_low"], out["boot_high"] = bootstrap_interval(x, level, seed)
    return out


def paired(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """Compare a with b on the same units: mean difference a - b, its t interval, Wilcoxon and t-test p-values.

    Identical pairs (every difference 0) give p = 1: there is no evidence of a difference.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    out: dict[str, float] = {"n_pairs": len(d), "mean_diff": float(np.mean(d)) if len(d) else math.nan,
                             "median_diff": float(np.median(d)) if len(d) else math.nan}
    out["diff_low"], out["diff_high"] = t_interval(d, level)
    if len(d) < 2 or np.all(d == 0):
        same = len(d) >= 2
        return out | {"wilcoxon_p": 1.0 if same else math.nan, "ttest_p": 1.0 if same else math.nan,
                      "effect_dz": 0.0 if same else math.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on ties and zero differences; the p-value handles them
        out["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
        out["ttest_p"] = float(stats.ttest_rel(a[ok], b[ok]).pvalue) if np.std(d) > 0 else 0.0
    sd = float(np.std(d, ddof=1))
    out["effect_dz"] = float(np.mean(d) / sd) if sd > 0 else math.copysign(math.inf, float(np.mean(d)))
    return out


def unpaired(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """Compare a with b on different units: mean difference a - b, Welch's t interval and test, Mann-Whitney U.

    Two constant samples give a point interval and p = 1 when they agree, 0 when they differ.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out: dict[str, float] = {"n_a": len(a), "n_b": len(b),
                             "mean_diff": float(np.mean(a) - np.mean(b)) if len(a) and len(b) else math.nan}
    if len(a) < 2 or len(b) < 2:
        return out | {"diff_low": math.nan, "diff_high": math.nan, "welch_p": math.nan, "mannwhitney_p": math.nan}
    if np.all(a == a[0]) and np.all(b == b[0]):
        p = 1.0 if out["mean_diff"] == 0 else 0.0
        return out | {"diff_low": out["mean_diff"], "diff_high": out["mean_diff"], "welch_p": p, "mannwhitney_p": p}
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(level)
    out |= {"diff_low": float(ci.low), "diff_high": float(ci.high), "welch_p": float(res.pvalue),
            "mannwhitney_p": float(stats.mannwhitneyu(a, b).pvalue)}
    return out


def adjust(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, float)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out.tolist()
