"""Mean and 95 % confidence interval over seeds (Student's t), per case (scenario + overrides) and controller."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float, int]:
    """(mean, half-width of the two-sided t interval, n) of the finite values; half-width NaN below 2 values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(x[0]), math.nan, 1
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


def compare(table: pd.DataFrame, case_columns: list[str], metrics: list[str]) -> pd.DataFrame:
    """One row per (case, controller, metric) over the successful runs: mean, half-width, n."""
    ok = table[table["status"] == "ok"]
    rows = []
    for keys, group in ok.groupby(case_columns + ["controller"], sort=False, dropna=False):
        for metric in metrics:
            if metric in group:
                mean, half, n = interval(pd.to_numeric(group[metric], errors="coerce").to_numpy())
                rows.append({**dict(zip(case_columns + ["controller"], keys)), "metric": metric,
                             "mean": mean, "half_width": half, "n": n})
    return pd.DataFrame(rows, columns=case_columns + ["controller", "metric", "mean", "half_width", "n"])
