"""`cosim` command line: run and validate scenarios (exit 2 on bad input, 1 on a failed run)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cosim.scenario.errors import ScenarioError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Co-simulation testbed for distribution grids: run YAML scenarios, read KPIs.")
out = Console()
err = Console(stderr=True)

KPI_ORDER = ["loss_energy_kwh", "loss_kw_mean", "loss_kw_max", "vm_min_pu", "vm_max_pu",
             "voltage_violation_bus_minutes", "line_loading_max_pct", "load_energy_kwh", "renewable_energy_kwh",
             "curtailed_energy_kwh", "efficiency", "stability_index", "renewable_share", "nonconverged_steps"]


def _load(path: Path):
    """Load a scenario or leave with its error paragraph and exit status 2."""
    from cosim.scenario.loader import load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def kpi_table(metrics: dict[str, float], title: str = "KPIs") -> Table:
    """The KPIs of a run as a two-column table, most-read first."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in KPI_ORDER + sorted(set(metrics) - set(KPI_ORDER)):
        if key in metrics:
            v = metrics[key]
            table.add_row(key, f"{v:,.4f}" if isinstance(v, float) else str(v))
    return table


@app.command()
def validate(scenario: Path = typer.Argument(..., help="scenario YAML file")) -> None:
    """Check a scenario file without running it."""
    loaded = _load(scenario)
    s = loaded.scenario
    out.print(f"[green]ok[/]: {scenario} — scenario {s.name!r}, feeder {s.grid.feeder}, "
              f"{s.clock.n_steps} steps of {int(s.clock.step)} s, {len(s.generators)} generators")


@app.command()
def run(scenario: Path = typer.Argument(..., help="scenario YAML file"),
        out_dir: Optional[Path] = typer.Option(None, "--out", help="results folder (default runs/<name>-<timestamp>)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Run a scenario and write run.json, timeseries.parquet, events.csv, metrics.json, report.html."""
    from cosim.runner import default_out_dir, run_scenario

    loaded = _load(scenario)
    target = out_dir or default_out_dir(loaded.scenario.name)
    n = loaded.scenario.clock.n_steps
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("steps"), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                        disable=quiet, refresh_per_second=8)
    with progress:
        task = progress.add_task(loaded.scenario.name, total=n)
        every = max(1, n // 200)

        def on_step(k: int) -> None:
            if k % every == 0 or k == n:
                progress.update(task, completed=k)

        outcome = run_scenario(loaded, target, on_step)
    if outcome.metrics:
        out.print(kpi_table(outcome.metrics, f"{loaded.scenario.name} — KPIs"))
    if outcome.status != "ok":
        err.print(f"[bold red]run failed:[/] {outcome.message}\nresults recorded up to the failure are in {target}",
                  highlight=False)
        raise typer.Exit(1)
    out.print(f"results: {target}")


def main() -> None:
    """Console entry point."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sys.exit(app())
