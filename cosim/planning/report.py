"""The plan's report page (voltage profile before and after, Pareto front) and the hosting-capacity bar plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cosim.planning.problem import Plan, Problem  # noqa: E402
from cosim.report.html import esc, fmt_number  # noqa: E402
from cosim.report.plots.figures import figure_to_data_uri  # noqa: E402

STYLE = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
         "th{background:#f3f3f3}img{max-width:100%}")


def voltage_profile(problem: Problem, plan: Plan) -> str:
    """Bus voltages without and with the planned DGs (heaviest snapshot), limits shaded, DG buses marked."""
    grid = problem.grid
    before = problem.baseline().evaluation.vm_pu
    positions = grid.label_positions([d["bus"] for d in plan.dgs])
    after = problem.score(positions, [d["p_mw"] for d in plan.dgs]).evaluation.vm_pu
    labels = grid.feeder.bus_labels
    fig, ax = plt.subplots(figsize=(9, 3.6))
    lo, hi = problem.objective.voltage_limits
    ax.axhspan(lo, hi, color="#e8f4e8", zorder=0, label=f"limits {lo}-{hi} pu")
    ax.plot(labels, before, "o-", ms=3, color="#888", label="without DG")
    ax.plot(labels, after, "o-", ms=3, color="#1f77b4", label=f"with the plan ({plan.method})")
    for d in plan.dgs:
        ax.axvline(d["bus"], color="#d62728", lw=0.8, ls="--")
    ax.set_xlabel("bus (DG buses dashed)")
    ax.set_ylabel("voltage (pu)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    uri = figure_to_data_uri(fig)
    plt.close(fig)
    return uri


def pareto_plot(plan: Plan) -> str | None:
    """The front's losses against DG cost, coloured by voltage deviation; the chosen plan circled."""
    if len(plan.pareto) < 2:
        return None
    front = pd.DataFrame(plan.pareto)
    fig, ax = plt.subplots(figsize=(7, 4))
    sc = ax.scatter(front.cost_usd / 1000, front.loss_kw, c=front.vdev_pu, cmap="viridis", s=18)
    fig.colorbar(sc, ax=ax, label="voltage deviation (pu)")
    ax.scatter([plan.terms["cost_usd"] / 1000], [plan.loss_kw], s=120, facecolors="none", edgecolors="r",
               label="lowest F")
    ax.set_xlabel("DG cost (kUSD; emissions are proportional)")
    ax.set_ylabel("losses (kW)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    uri = figure_to_data_uri(fig)
    plt.close(fig)
    return uri


def _table(rows: list[tuple[str, object]]) -> str:
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(fmt_number(v))}</td></tr>" for k, v in rows) + "</table>"


def write_report(path: Path, problem: Problem, plan: Plan, command: str) -> None:
    """One self-contained HTML page for the plan."""
    base = problem.baseline()
    dgs = "".join(f"<tr><td>{d['bus']}</td><td>{d['p_mw']:.4f}</td></tr>" for d in plan.dgs)
    summary = _table([("method", plan.method), ("objective", plan.objective), ("F", plan.value),
                      ("losses (kW)", plan.loss_kw), ("losses without DG (kW)", base.terms["loss_kw"]),
                      ("DG cost (USD)", plan.terms["cost_usd"]), ("voltage deviation (pu)", plan.terms["vdev_pu"]),
                      ("emissions (kg)", plan.terms["emission_kg"]), ("V min / max (pu)", f"{plan.vm_min_pu:.4f} / {plan.vm_max_pu:.4f}"),
                      ("within limits", plan.feasible), ("time (s)", plan.time_s), ("power flows", plan.solves),
                      ("engine", plan.engine), ("snapshots", problem.grid.snapshots.label)])
    front = pareto_plot(plan)
    parts = [f"<h1>DG plan: {esc(plan.feeder)}, {len(plan.dgs)} DGs</h1>", f"<p><code>{esc(command)}</code></p>",
             "<h2>Plan</h2><table><tr><th>bus</th><th>P (MW)</th></tr>" + dgs + "</table>", summary,
             f"<h2>Voltage profile</h2><img alt='voltage profile' src='{voltage_profile(problem, plan)}'>"]
    if front:
        parts.append(f"<h2>Pareto front ({len(plan.pareto)} plans)</h2><img alt='Pareto front' src='{front}'>")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>DG plan {esc(plan.feeder)}</title>"
                    f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>", encoding="utf-8")


def hosting_plot(table: pd.DataFrame, path: Path, feeder: str) -> None:
    """Bar plot of the hosting capacity per bus, coloured by the limit that binds."""
    colours = {"voltage": "#1f77b4", "loading": "#ff7f0e"}
    fig, ax = plt.subplots(figsize=(max(6, len(table) * 0.18), 3.6))
    ax.bar(table.bus.astype(str), table.hosting_mw, color=[colours.get(lim, "#999") for lim in table.limit])
    ax.set_xlabel("bus")
    ax.set_ylabel("hosting capacity (MW)")
    ax.set_title(f"{feeder}: largest PV per bus (blue: voltage, orange: loading, grey: none / cap)", fontsize=9)
    ax.tick_params(axis="x", labelsize=6, rotation=90)
    if len(table) and np.nanmax(table.hosting_mw) > 10 * np.nanmedian(table.hosting_mw):
        ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
