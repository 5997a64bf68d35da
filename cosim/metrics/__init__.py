"""KPIs of a run and their metadata: one module for the co-simulation, the RL environment and regression tests.

`compute_metrics` scores a recorded time series (a results folder can always be re-scored),
`metrics_from_array` the same KPIs from a (steps x signals) array, fast enough to call at the
end of every RL episode. `METRICS` / `metric_info` give every metrics.json key's unit, which
direction is worse and a description (used by `cosim.regress` and the HTML report);
`reliability_indices` gives a run's SAIFI, SAIDI, CAIDI and ENS.
"""

from __future__ import annotations

from cosim.metrics.catalog import CORE_METRICS, METRICS, RATIO, MetricInfo, metric_info, tolerances, worse_directions
from cosim.metrics.kpis import ColumnPlan, column_plan, compute_metrics, metrics_from_array
from cosim.metrics.reliability import RELIABILITY_KEYS, customers_of, reliability_indices

__all__ = ["CORE_METRICS", "METRICS", "RATIO", "RELIABILITY_KEYS", "ColumnPlan", "MetricInfo", "column_plan",
           "compute_metrics", "customers_of", "metric_info", "metrics_from_array", "reliability_indices", "tolerances",
           "worse_directions"]
