"""Statistical checks of `cosim regress --seeds N`: a criterion or a baseline metric judged over seeds.

Both use the (1 - alpha) two-sided Student-t interval and t-test of cosim.evaluate.stats:
- a criterion `max: T` fails only when the interval of the mean over seeds lies wholly above T
  (`min: T`: wholly below), i.e. the two-sided one-sample t-test of mean = T rejects at alpha
  with the mean beyond T;
- a baseline metric fails only when the difference to the baseline is significantly worse (its
  interval lies wholly on the worse side of 0: paired t-test on the seeds both have, else Welch's
  t-test, else a one-sample t-test against a single stored value) AND the mean difference is worse
  than the tolerance max(abs, rel * |baseline mean|).
"""

from __future__ import annotations

import numpy as np

from cosim.evaluate.stats import paired, t_interval, unpaired

Verdict = tuple[bool, str, dict[str, float | str]]


def criterion(metric: str, low: float | None, high: float | None, values: list[float], alpha: float,
              unit: str = "") -> Verdict:
    """Judge `low <= mean <= high` over seeds; fails only when the mean is significantly beyond a bound."""
    x = np.asarray(values, float)
    level = 1 - alpha
    mean = float(np.mean(x))
    ci = t_interval(x, level)
    passed, parts, figures = True, [], {}
    for name, bound, worse in (("min", low, -1), ("max", high, +1)):
        if bound is None:
            continue
        r = paired(x, np.full(len(x), bound), level)  # mean - bound, its interval and the t-test of mean = bound
        beyond = r["diff_low"] > 0 if worse > 0 else r["diff_high"] < 0
        passed &= not beyond
        word = "significantly beyond" if beyond else ("beyond, not significantly" if (mean - bound) * worse > 0
                                                      else "within")
        parts.append(f"{'<=' if worse > 0 else '>='} {bound:g}: {word} (t-test p = {r['ttest_p']:.3g})")
        figures |= {name: bound, f"{name}_p": r["ttest_p"]}
    detail = (f"{metric} = {mean:.6g}{unit} (mean of {len(x)} seeds, {100 * level:g} % CI [{ci[0]:.6g}, {ci[1]:.6g}]),"
              f" required {' and '.join(parts)}")
    return passed, detail, dict(mean=mean, n=len(x), ci_low=ci[0], ci_high=ci[1], alpha=alpha, **figures)


def baseline(metric: str, sign: int, new: dict[int, float], stored: dict[int, float] | float, tolerance: float,
             alpha: float, unit: str = "") -> tuple[Verdict, bool]:
    """Judge new per-seed values against the baseline's; (verdict, significantly better beyond the tolerance).

    `stored` is the baseline's per-seed values, or one value when the baseline was made without --seeds.
    Differences are new - baseline; `sign` +1 means higher is worse.
    """
    level = 1 - alpha
    a = np.asarray(list(new.values()), float)
    if isinstance(stored, dict):
        common = [s for s in new if s in stored]
        if len(common) >= 2:
            test = f"paired t-test on {len(common)} seeds"
            r = paired(np.array([new[s] for s in common]), np.array([stored[s] for s in common]), level)
        else:
            test = "Welch t-test (the baseline has other seeds)"
            r = unpaired(a, np.asarray(list(stored.values()), float), level)
            r["ttest_p"] = r["welch_p"]
        old = float(np.mean(list(stored.values())))
    else:
        old = float(stored)
        test = "one-sample t-test (the baseline has one value)"
        r = paired(a, np.full(len(a), old), level)
    diff, low, high = r["mean_diff"], r["diff_low"], r["diff_high"]
    worse_low, worse_high = (low, high) if sign > 0 else (-high, -low)  # the interval of how much worse
    allowed = tolerance
    significant_worse, significant_better = worse_low > 0, worse_high < 0
    passed = not (significant_worse and diff * sign > allowed)
    verdict = ("significantly worse beyond the tolerance" if not passed else
               "significantly worse, within the tolerance" if significant_worse else
               "significantly better" if significant_better else "no significant difference")
    detail = (f"{metric} = {float(np.mean(a)):.6g}{unit} (mean of {len(a)} seeds), baseline {old:.6g}{unit}: "
              f"difference {diff:+.4g}{unit}, {100 * level:g} % CI [{low:+.4g}, {high:+.4g}], {test} "
              f"p = {r['ttest_p']:.3g}, tolerance {allowed:.3g}{unit}: {verdict}")
    figures = dict(mean=float(np.mean(a)), n=len(a), baseline=old, diff=diff, ci_low=low, ci_high=high,
                       p=r["ttest_p"], alpha=alpha, tolerance=allowed, test=test)
    return (passed, detail, figures), significant_better and -diff * sign > allowed
