"""`cosim regress`: run a suite of scenarios with a controller, check criteria and a baseline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich import box
from rich.table import Table

from cosim.commands._common import app, err, fail, out

if TYPE_CHECKING:
    from cosim.regress import SuiteResult


@app.command()
def regress(scenarios: list[Path] = typer.Argument(..., help="scenario files, or folders of *.yaml files"),
            controller: str = typer.Option(..., "--controller", "-c", metavar="SPEC",
                                           help="none | droop | volt_watt | opf | python:FILE.py:CLASS | drl:POLICY "
                                                "| '{kind: ..., params: {...}}'"),
            baseline: Optional[Path] = typer.Option(None, "--baseline", help="JSON file of stored metrics to compare with"),
            junit: Optional[Path] = typer.Option(None, "--junit", help="write a JUnit XML report here"),
            update_baseline: bool = typer.Option(False, "--update-baseline",
                                                 help="store this run's metrics in --baseline instead of comparing"),
            jobs: int = typer.Option(0, "--jobs", "-j", help="parallel runs (default: one per core; 1 = in-process)"),
            backend: str = typer.Option("local", "--backend", help="local (process pool on this machine) | ray"),
            address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT",
                                                  help="Ray head to join (default: start a local Ray instance)"),
            out_dir: Optional[Path] = typer.Option(None, "--out", help="results root (default runs/regress-<timestamp>)"),
            seeds: Optional[int] = typer.Option(None, "--seeds", metavar="N",
                                                help="run every scenario on N >= 2 seeds and judge with statistics"),
            alpha: float = typer.Option(0.05, "--alpha", help="significance level of the checks with --seeds"),
            seed_offset: int = typer.Option(0, "--seed-offset", metavar="K",
                                            help="with --seeds: seeds are the scenario's seed + K, + K + 1, ...")) -> None:
    """Run scenarios with a controller; check criteria and baseline (exit 0 pass, 1 fail, 2 bad input)."""
    from cosim.regress import RegressInputError, regress as run_regress, write_junit
    from cosim.runner import default_out_dir

    root = out_dir or default_out_dir("regress")
    try:
        suite = run_regress(scenarios, controller, baseline, update_baseline, jobs, root,
                            on_done=lambda c: err.print(f"  {c.scenario}: run {c.status} ({c.wall_s:.1f} s)",
                                                        highlight=False),
                            backend=backend, address=address, seeds=seeds, alpha=alpha, seed_offset=seed_offset)
    except RegressInputError as exc:
        fail(str(exc))
    out.print(regress_table(suite))
    for case in suite.cases:
        checks = case.criteria + case.baseline if suite.seeds else case.failures  # over seeds: every interval
        for line in ([f"run {case.status}: {case.message}"] if case.status != "ok" else []) + \
                [("FAIL " if suite.seeds and not c.passed else "") + c.detail for c in checks] + case.notes:
            out.print(f"  {case.scenario}: {line}", highlight=False)
    if junit is not None:
        write_junit(junit, suite)
        out.print(f"JUnit report: {junit}")
    if update_baseline:
        out.print(f"baseline updated: {baseline} ({controller!r}, {len(suite.cases)} scenarios)")
    out.print(f"results: {root}")
    if suite.failed:
        err.print(f"[bold red]FAIL[/]: {len(suite.failed)} of {len(suite.cases)} scenarios ({', '.join(suite.failed)})",
                  highlight=False)
        raise typer.Exit(1)
    out.print(f"[bold green]PASS[/]: {len(suite.cases)} scenarios")


def regress_table(suite: SuiteResult) -> Table:
    """One row per scenario: verdict, criteria and baseline checks passed, headline metrics."""
    over = f", mean of {suite.seeds} seeds, alpha {suite.alpha:g}" if suite.seeds else ""
    table = Table(title=f"cosim regress — controller {suite.spec}{over}", header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("scenario", no_wrap=True)
    for col in ("result", "criteria", "baseline", "violation\nbus-min", "losses\nkWh"):
        table.add_column(col, justify="left" if col == "result" else "right", no_wrap=True)
    for c in suite.cases:
        verdict = "[green]PASS[/]" if c.passed else ("[red]ERROR[/]" if not c.completed else "[red]FAIL[/]")
        crit = f"{sum(k.passed for k in c.criteria)}/{len(c.criteria)}" if c.criteria else "-"
        base = f"{sum(k.passed for k in c.baseline)}/{len(c.baseline)}" if c.baseline else "-"
        m = c.metrics
        table.add_row(c.scenario, verdict, crit, base, _value(m.get("voltage_violation_bus_minutes"), ",.0f"),
                      _value(m.get("loss_energy_kwh"), ",.1f"))
    return table


def _value(v: float | None, spec: str) -> str:
    """A metric for the table: formatted, or null when it could not be computed (or is missing)."""
    return "null" if v is None or math.isnan(v) else format(v, spec)
