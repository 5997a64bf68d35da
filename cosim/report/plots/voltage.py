"""Voltage plots: the min / mean / max envelope and the bus x time heat map."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from cosim.report.data import ReportData, downsample_extreme
from cosim.report.plots.figures import at_text, extreme, format_time_axis, legend, legend_entries, nan_stats, new_figure, shade
from cosim.report.plots.registry import plot

MAX_HEATMAP_BUSES = 400
MAX_HEATMAP_STEPS = 2000


@plot("voltage-envelope", "Voltage envelope", order=10, missing="no bus.*.vm_pu columns")
def plot_voltage_envelope(d: ReportData) -> Figure | None:
    """Min / mean / max bus voltage over time, with the voltage limits dashed."""
    axis, vm, bus_ids, limits, spans = d.axis, d.vm, d.bus_ids, d.limits, d.spans
    if vm.shape[1] == 0 or vm.shape[0] == 0:
        return None
    vmin, vmean, vmax = nan_stats(vm)
    fig, (ax,) = new_figure(3.8)
    shade(ax, spans)
    low, high = extreme(vm, True), extreme(vm, False)
    lo_txt = f" (lowest {low[2]:.3f} pu, bus {at_text(axis, bus_ids, low)})" if low else ""
    hi_txt = f" (highest {high[2]:.3f} pu, bus {at_text(axis, bus_ids, high)})" if high else ""
    ax.fill_between(axis.x, vmin, vmax, color="tab:blue", alpha=0.12, lw=0, label="_band")
    ax.plot(axis.x, vmax, color="tab:red", lw=1.4, label="max over buses" + hi_txt)
    ax.plot(axis.x, vmean, color="tab:blue", lw=1.2, label="mean over buses")
    ax.plot(axis.x, vmin, color="navy", lw=1.4, label="min over buses" + lo_txt)
    if limits:
        for v in limits:
            ax.axhline(v, color="black", ls="--", lw=1.0, label=f"limits {limits[0]:g} / {limits[1]:g} pu")
    ax.set_title(f"Bus voltage envelope ({vm.shape[1]} buses)")
    ax.set_ylabel("Voltage magnitude (pu)")
    ax.grid(True, alpha=0.3)
    format_time_axis(ax, axis)
    legend(ax)
    return fig


@plot("voltage-heatmap", "Voltage heat map", order=20, missing="no bus.*.vm_pu columns")
def plot_voltage_heatmap(d: ReportData) -> Figure | None:
    """Bus x time heat map of the voltage, diverging colours centred on 1.0 pu."""
    axis, vm, bus_ids, limits, spans = d.axis, d.vm, d.bus_ids, d.limits, d.spans
    if vm.shape[1] == 0 or vm.shape[0] == 0:
        return None
    bus_factor = max(1, -(-vm.shape[1] // MAX_HEATMAP_BUSES))
    step_factor = max(1, -(-vm.shape[0] // MAX_HEATMAP_STEPS))
    img = downsample_extreme(downsample_extreme(vm, step_factor, 0), bus_factor, 1).T
    limit_dev = max((abs(v - 1.0) for v in limits), default=0.05) if limits else 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        data_dev = float(np.nanmax(np.abs(img - 1.0))) if np.isfinite(img).any() else 0.0
    half = min(max(data_dev, limit_dev, 1e-3), 3 * max(limit_dev, 1e-3))
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.75")
    fig, (ax,) = new_figure(4.6 if img.shape[0] > 40 else 4.0)
    im = ax.imshow(img, aspect="auto", origin="lower", interpolation="nearest", cmap=cmap,
                   norm=Normalize(1.0 - half, 1.0 + half),
                   extent=(axis.lo, axis.hi, -0.5, img.shape[0] - 0.5))
    nrows = img.shape[0]
    ax.yaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, _pos: bus_ids[int(round(v)) * bus_factor] if 0 <= round(v) < nrows else ""))
    shade(ax, spans, strip=True)
    cbar = fig.colorbar(im, ax=ax, extend="both" if data_dev > half else "neither", pad=0.01)
    cbar.set_label("Voltage magnitude (pu)")
    if limits:
        for v in limits:
            cbar.ax.axhline(v, color="black", lw=1.5)
    parts = []
    if bus_factor > 1:
        parts.append(f"blocks of {bus_factor} buses")
    if step_factor > 1:
        parts.append(f"blocks of {step_factor} steps")
    note = f"; {', '.join(parts)}, most extreme value shown" if parts else ""
    ax.set_title(f"Bus voltage heat map ({vm.shape[1]} buses{note}; grey = no value)")
    ax.set_ylabel("Bus" + (f" (first of each block of {bus_factor})" if bus_factor > 1 else ""))
    format_time_axis(ax, axis)
    handles, labels = legend_entries(ax)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
                   fontsize="small", frameon=False)
    return fig
