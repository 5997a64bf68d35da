"""Forecasts of the run's uncontrolled inputs (DER available power, feeder load) that controllers observe.

One module per kind under `cosim.forecast.kinds`; a module's file name is its `forecast: {kind: ...}`
and it registers its class as `FORECASTER`. The kinds are found by file name without importing the
modules, so the scenario schema lists them without importing torch; modules whose name starts with `_`
are helpers. Adding a kind is adding one module there. No mosaik here: the controller simulator,
the evaluation rollout and the KPIs all read the same `cosim.forecast.build.Forecasts`.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

KINDS: tuple[str, ...] = tuple(sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent / "kinds")])
                                      if not m.name.startswith("_")))


def forecaster_class(kind: str) -> type:
    """The forecaster class of a kind."""
    return importlib.import_module(f"{__name__}.kinds.{kind}").FORECASTER
