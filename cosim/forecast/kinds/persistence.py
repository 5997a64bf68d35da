"""`persistence`: the value of step k held over the whole horizon (the deployable reference)."""

from __future__ import annotations

import numpy as np

from cosim.forecast.base import Forecaster, Series


class Persistence(Forecaster):
    """Holds the last observed value over the horizon."""

    def predict(self, series: Series, leads: int) -> np.ndarray:
        return np.repeat(series.values[:, None, :], leads, axis=1)


FORECASTER = Persistence
