"""`oracle`: the run's own input series at the forecast steps (perfect foresight; with `noise`, an imperfect one).

Past the end of the run it holds the last step's value, as the mpc's own oracle does.
"""

from __future__ import annotations

import numpy as np

from cosim.forecast.base import Forecaster, Series


class Oracle(Forecaster):
    """The truth k+1 .. k+leads steps ahead."""

    def predict(self, series: Series, leads: int) -> np.ndarray:
        n = len(series.values)
        at = np.minimum(np.arange(n)[:, None] + np.arange(1, leads + 1)[None, :], n - 1)
        return series.values[at]


FORECASTER = Oracle
