"""What every forecast kind works on: the run's input series as named signals, and the forecaster interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from cosim.scenario.forecast import Forecast

LOAD = "load"  # the kind of the feeder-load signal (DERs have their generator kind: pv, wind)


@dataclass(frozen=True)
class Series:
    """Signals of one run or one generated day: values (steps x signals) in MW, each signal's kind and scale
    (a DER's rating, the feeder's nominal load: what a learned model divides by)."""

    times: np.ndarray
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    scale: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Context:
    """What a forecaster may use besides the run's series: the block, the step, the scenario seed and folder, and
    generated days of the same scenario's profiles (`day(i)`: other dates and seeds than the run)."""

    spec: Forecast
    step_s: float
    seed: int
    base_dir: Path
    day: Callable[[int], Series]


class Forecaster(ABC):
    """Subclass and implement `predict`; the constructor gets the `Context` (a learned kind trains there)."""

    def __init__(self, context: Context):
        self.context = context

    @abstractmethod
    def predict(self, series: Series, leads: int) -> np.ndarray:
        """Forecasts issued at every step k for steps k+1 .. k+leads: (steps x leads x signals) in MW, using
        only values up to step k (except the oracle, whose point is to read the future)."""
