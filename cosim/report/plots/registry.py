"""The plot registry: adding a plot to the report is one function with the `@plot` decorator.

A plot function takes the `ReportData` of a run and returns a Figure, or None when the run has
nothing for it to show (then the page notes `missing`, if given). Plots appear on the page in
ascending `order`; the anchor is the figure's id in the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from cosim.report.data import ReportData
from cosim.report.plots.figures import figure_to_data_uri

log = logging.getLogger("cosim.report")

PlotFunction = Callable[[ReportData], "Figure | None"]


@dataclass(frozen=True)
class Plot:
    """One registered plot: page anchor, caption, position, the function and why it may be absent."""

    anchor: str
    caption: str
    order: int
    build: PlotFunction
    missing: str | None = None


PLOTS: dict[str, Plot] = {}


def plot(anchor: str, caption: str, order: int, missing: str | None = None) -> Callable[[PlotFunction], PlotFunction]:
    """Register the decorated function as the report plot `anchor` (a second registration replaces the first)."""

    def register(fn: PlotFunction) -> PlotFunction:
        PLOTS[anchor] = Plot(anchor, caption, order, fn, missing)
        return fn

    return register


def registered() -> list[Plot]:
    """The registered plots in page order."""
    return sorted(PLOTS.values(), key=lambda p: p.order)


def render_plots(d: ReportData) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(anchor, caption, PNG data URI) of every plot the run has data for, and notes on the others."""
    figures: list[tuple[str, str, str]] = []
    notes: list[str] = []
    n = len(d.ts)
    for p in registered():
        try:
            fig = p.build(d) if n else None
        except Exception as exc:  # a broken plot must not cost the rest of the report
            log.exception("report plot %r failed", p.caption)
            notes.append(f"{p.caption}: plot failed ({type(exc).__name__}: {exc})")
            continue
        if fig is None:
            if p.missing and n:
                notes.append(f"{p.caption}: not shown ({p.missing}).")
            continue
        figures.append((p.anchor, p.caption, figure_to_data_uri(fig)))
    if not n:
        notes.append("The time series is empty: nothing to plot.")
    return figures, notes
