"""What every `cosim` command shares: the Typer app, the consoles, bad-input exits and the KPI table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cosim.scenario.errors import ScenarioError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Co-simulation testbed for distribution grids: run YAML scenarios, read KPIs.")
out = Console()
err = Console(stderr=True)

KPI_ORDER = ["loss_energy_kwh", "loss_kw_mean", "loss_kw_max", "vm_min_pu", "vm_max_pu",
             "voltage_violation_bus_minutes", "line_loading_max_pct", "load_energy_kwh", "renewable_energy_kwh",
             "curtailed_energy_kwh", "reactive_energy_kvarh", "efficiency", "efficiency_incl_curtailment",
             "stability_index", "renewable_share", "local_supply_share", "nonconverged_steps", "converged_share"]


def load(path: Path):
    """Load a scenario or leave with its error paragraph and exit status 2."""
    from cosim.scenario.loader import load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        bad_input(exc)


def validated(path: Path):
    """Load a scenario and assemble its run (the controller tried once), or leave with exit status 2."""
    from cosim.validation import validate

    loaded = load(path)
    try:
        return loaded, validate(loaded)
    except ScenarioError as exc:
        bad_input(exc)


def bad_input(exc: ScenarioError) -> NoReturn:
    """Leave with the scenario error's paragraph and exit status 2."""
    fail(str(exc))


def kpi_table(metrics: dict[str, float], title: str = "KPIs") -> Table:
    """The KPIs of a run as a two-column table, most-read first; a metric that cannot be computed shows null."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in KPI_ORDER + sorted(set(metrics) - set(KPI_ORDER)):
        if key in metrics:
            v = metrics[key]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                table.add_row(key, "[dim]null[/] (cannot be computed)")
            else:
                table.add_row(key, f"{v:,.4f}" if isinstance(v, float) else str(v))
    return table


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error paragraph and leave with `code` (2: bad input, 1: failed run)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None


def step_progress(description: str, total: int, quiet: bool, unit: str = "steps", refresh: float = 8) -> tuple[Progress, object]:
    """A progress bar on stderr counting `total` items, and its task id."""
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                        disable=quiet, refresh_per_second=refresh)
    return progress, progress.add_task(description, total=total)
