"""The plot registry: adding a plot to the report is one function with the `@plot` decorator.

A plot function takes the `ReportData` of a run and returns a Figure, or None when the run has
nothing for it to show (then the page notes `missing`, if given). Plots appear on the page in
ascending `order`, in their `section` of the page ("plots", or "detection" beside the confusion
table); the anchor is the figure's id in the page.
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
    """One registered plot: page anchor, caption, position, the function, why it may be absent, page section."""

    anchor: str
    caption: str
    order: int
    build: PlotFunction
    missing: str | None = None
    section: str = "plots"


@dataclass(frozen=True)
class RenderedPlot:
    """One plot as the page embeds it: anchor, caption, PNG data URI and page section."""

    anchor: str
    caption: str
    uri: str
    section: str


PLOTS: dict[str, Plot] = {}


def plot(anchor: str, caption: str, order: int, missing: str | None = None,
         section: str = "plots") -> Callable[[PlotFunction], PlotFunction]:
    """Register the decorated function as the report plot `anchor` (a second registration replaces the first)."""

    def register(fn: PlotFunction) -> PlotFunction:
        PLOTS[anchor] = Plot(anchor, caption, order, fn, missing, section)
        return fn

    return register


def registered() -> list[Plot]:
    """The registered plots in page order."""
    return sorted(PLOTS.values(), key=lambda p: p.order)


def render_plots(d: ReportData) -> tuple[list[RenderedPlot], list[str]]:
    """Every plot the run has data for, rendered, and notes on the others."""
    figures: list[RenderedPlot] = []
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
        figures.append(RenderedPlot(p.anchor, p.caption, figure_to_data_uri(fig), p.section))
    if not n:
        notes.append("The time series is empty: nothing to plot.")
    return figures, notes
