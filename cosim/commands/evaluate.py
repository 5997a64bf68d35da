"""`cosim evaluate`: controllers on held-out days x seeds, with intervals and a paired significance test."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from cosim.commands._common import app, fail, out, step_progress


@app.command()
def evaluate(source: Path = typer.Argument(..., help="scenario YAML file, or distribution YAML file (top-level feeders:)"),
             controllers: List[str] = typer.Option(..., "--controller", help="controller SPEC (droop, opf, "
                                                   "drl:policies/x.pt, ...); repeat for several"),
             against: Optional[str] = typer.Option(None, "--against", help="reference SPEC for the paired comparison"),
             seeds: int = typer.Option(5, "--seeds", help="held-out seeds (a distribution draws one layout per seed)"),
             days: int = typer.Option(1, "--days", help="held-out days per seed"),
             out_dir: Path = typer.Option(..., "--out", help="output folder"),
             metrics: Optional[str] = typer.Option(None, "--metrics", help="comma-separated KPIs (default: violations, "
                                                   "losses, curtailment, reactive energy, vm max/min)"),
             level: float = typer.Option(0.95, "--level", help="confidence level of the intervals"),
             jobs: int = typer.Option(0, "--jobs", help="parallel runs (0: one per core, 1: in this process)"),
             backend: str = typer.Option("local", "--backend", help="local (process pool) or ray"),
             address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address"),
             no_oracle: bool = typer.Option(False, "--no-oracle", help="leave out the OPF oracle and the gap to it"),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Run every controller (and the OPF oracle) on the same held-out days; write evaluation.json, tables, report.html."""
    from rich.table import Table

    from controllers.drl.sources import open_source
    from cosim.evaluate.report import (METRICS, comparison_table, gap_table, runs_table, summary_table, units,
                                       with_gap, write_outputs)
    from cosim.evaluate.runner import EvaluateInputError, controller_blocks, oracle
    from cosim.evaluate.runner import evaluate as run_evaluation
    from cosim.scenario.errors import ScenarioError

    if not 0 < level < 1:
        fail(f"--level must be between 0 and 1, got {level}")
    chosen = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else list(METRICS)
    try:
        src = open_source(source)
    except ScenarioError as exc:
        fail(str(exc))
    add, oracle_label, oracle_note = False, None, "OPF oracle left out (--no-oracle)"
    if not no_oracle:
        try:
            add, oracle_label, oracle_note = oracle(list(controllers) + ([against] if against else []), source,
                                                    seeds, days)
        except EvaluateInputError as exc:
            fail(str(exc))
    specs = list(controllers) + (["opf"] if add else []) + ([against] if against else [])
    total = len(specs) * max(seeds, 0) * max(days, 0)
    progress, task = step_progress(f"evaluate {source.name}", total, quiet, unit="runs")
    try:
        with progress:
            runs = list(run_evaluation(source, specs, seeds, days, jobs, backend, address,
                                       on_done=lambda _: progress.advance(task)))
    except EvaluateInputError as exc:
        fail(str(exc))
    known = set().union(*(r.kpis for r in runs))
    unknown = [m for m in chosen if m not in known and any(r.status == "ok" for r in runs)]
    if unknown:
        fail(f"--metrics: unknown KPI {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})")
    table = runs_table(runs, chosen)
    by_seed = src.varies_layout and seeds >= 2
    unit = units(table, chosen, by_seed)
    labels = list(controller_blocks(specs))  # in the order given (runs finish in any order)
    reference = labels[-1] if against else None
    summary = summary_table(unit, chosen, level)
    comparison = comparison_table(unit, chosen, reference, level) if reference else summary.iloc[0:0]
    gap = gap_table(unit, chosen, oracle_label, level) if oracle_label else gap_table(unit.iloc[0:0], [], "", level)
    summary = with_gap(summary, gap)
    meta = {"source": str(source), "kind": "distribution" if src.varies_layout else "scenario", "seeds": seeds,
            "days": days, "unit": "seed (mean over its days)" if by_seed else "held-out day", "level": level,
            "controllers": labels, "against": reference, "metrics": chosen, "oracle": oracle_label,
            "oracle_note": oracle_note,
            "failed_runs": int((table["status"] != "ok").sum())}
    write_outputs(out_dir, meta, table, summary, comparison, gap)
    view = Table(title=f"{seeds} seeds x {days} days, unit: {meta['unit']}, {100 * level:.0f} % t interval")
    for col in ("controller", "metric", "mean", "interval", "median"):
        view.add_column(col, justify="left" if col in ("controller", "metric") else "right")
    for _, r in summary.iterrows():
        view.add_row(r["controller"], r["metric"], f"{r['mean']:,.2f}", f"[{r['t_low']:,.2f}, {r['t_high']:,.2f}]",
                     f"{r['median']:,.2f}")
    out.print(view)
    for _, r in comparison.iterrows():
        out.print(f"{r['controller']} - {r['against']}, {r['metric']}: {r['mean_diff']:+,.2f} "
                  f"[{r['diff_low']:+,.2f}, {r['diff_high']:+,.2f}], Wilcoxon p = {r['wilcoxon_p']:.3g} "
                  f"(adjusted {r['wilcoxon_p_adjusted']:.3g})")
    out.print(oracle_note, highlight=False)
    for _, r in gap.iterrows():
        rel = "" if math.isnan(r["gap_rel"]) else f" ({100 * r['gap_rel']:+.1f} %)"
        out.print(f"gap {r['controller']} - {r['oracle']}, {r['metric']}: {r['gap']:+,.2f}{rel} "
                  f"[{r['gap_low']:+,.2f}, {r['gap_high']:+,.2f}]", highlight=False)
    out.print(f"results: {out_dir}")
    if meta["failed_runs"]:
        failed = table[table["status"] != "ok"].iloc[0]
        fail(f"{meta['failed_runs']} runs failed (first: {failed['controller']} seed {failed['seed']} day "
             f"{failed['day']}: {failed['message']}); see {out_dir / 'runs.csv'}", 1)
