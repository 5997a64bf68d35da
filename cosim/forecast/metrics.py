"""Forecast error KPIs: the forecasts issued at the full horizon against what the run recorded at that step.

`forecast_mae_mw` is the mean absolute error over every forecast signal and issue step whose target step was
recorded; the `nmae` keys divide the summed absolute error by the summed recorded value (all signals, the
DERs' available P, the feeder load). A target whose recorded value is not finite (a non-converged step) is
left out. The recorded values include what events did (a cloud transient, a load step), which no forecast
kind but a noisy oracle of those events could know.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cosim.forecast.build import LOAD_SIGNAL, Forecasts


def _nmae(err: np.ndarray, actual: np.ndarray) -> float | None:
    total = float(np.abs(actual).sum())
    return float(np.abs(err).sum()) / total if total > 0 else None


def forecast_metrics(forecasts: Forecasts | None, ts: pd.DataFrame) -> dict[str, float | None]:
    """The forecast KPIs of a run's recorded series `ts` (nothing without forecasts)."""
    if forecasts is None:
        return {}
    lead = forecasts.leads
    n = min(len(ts), len(forecasts.values))
    if n <= lead:
        return {"forecast_mae_mw": None, "forecast_nmae": None, "forecast_der_nmae": None, "forecast_load_nmae": None}
    actual = ts[list(forecasts.signals)].to_numpy(float)[lead:n]
    issued = forecasts.values[: n - lead, lead - 1, :]
    ok = np.isfinite(actual)
    err = np.where(ok, issued - np.where(ok, actual, 0.0), 0.0)
    actual = np.where(ok, actual, 0.0)
    load = np.array([s == LOAD_SIGNAL for s in forecasts.signals])
    return {
        "forecast_mae_mw": float(np.abs(err).sum() / ok.sum()) if ok.any() else None,
        "forecast_nmae": _nmae(err, actual),
        "forecast_der_nmae": _nmae(err[:, ~load], actual[:, ~load]) if (~load).any() else None,
        "forecast_load_nmae": _nmae(err[:, load], actual[:, load]),
    }
