"""The report's plots: a registry (`plot`, `registered`, `render_plots`) and one module per family of plots.

Importing this package registers every shipped plot. A new plot is one function decorated with
`@plot(anchor, caption, order, missing, section)` in a module imported here.
"""

from __future__ import annotations

from cosim.report.plots import branch, detection, power, security, voltage  # noqa: F401  (registers the plots)
from cosim.report.plots.registry import PLOTS, Plot, RenderedPlot, plot, registered, render_plots

__all__ = ["PLOTS", "Plot", "RenderedPlot", "plot", "registered", "render_plots"]
