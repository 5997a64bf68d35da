"""Self-contained HTML report of one co-simulation run: plots as embedded PNGs, events, KPIs.

`write_report` is the only public entry point. The package follows the report's seams:
`data` (what the report reads from the series: time axis, entity columns, events, shaded
spans), `plots` (a registry of plot functions, one per figure; add a plot with `@plot`) and
`html` (page assembly; the page loads nothing from outside).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cosim.files import write_atomic
from cosim.report.data import prepare
from cosim.report.html import render_page
from cosim.report.plots import render_plots

__all__ = ["write_report"]


def write_report(path: Path, timeseries: pd.DataFrame, events: pd.DataFrame,
                 metrics: dict[str, float], meta: dict) -> None:
    """Write one self-contained HTML report (plots, events, KPIs) of a run to ``path``, atomically."""
    d = prepare(timeseries, events, meta)
    figures, notes = render_plots(d)
    write_atomic(Path(path), render_page(d, figures, notes, metrics or {}))
