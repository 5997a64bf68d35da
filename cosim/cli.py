"""`cosim` command line: run and validate scenarios (exit 2 on bad input, 1 on a failed run)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Optional

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cosim.scenario.errors import ScenarioError

if TYPE_CHECKING:
    from cosim.regress import SuiteResult

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Co-simulation testbed for distribution grids: run YAML scenarios, read KPIs.")
out = Console()
err = Console(stderr=True)

KPI_ORDER = ["loss_energy_kwh", "loss_kw_mean", "loss_kw_max", "vm_min_pu", "vm_max_pu",
             "voltage_violation_bus_minutes", "line_loading_max_pct", "load_energy_kwh", "renewable_energy_kwh",
             "curtailed_energy_kwh", "reactive_energy_kvarh", "efficiency", "efficiency_incl_curtailment",
             "stability_index", "renewable_share", "local_supply_share", "nonconverged_steps"]


def _load(path: Path):
    """Load a scenario or leave with its error paragraph and exit status 2."""
    from cosim.scenario.loader import load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        _bad_input(exc)


def _validated(path: Path):
    """Load a scenario and assemble its run (the controller tried once), or leave with exit status 2."""
    from cosim.validation import validate

    loaded = _load(path)
    try:
        return loaded, validate(loaded)
    except ScenarioError as exc:
        _bad_input(exc)


def _bad_input(exc: ScenarioError) -> NoReturn:
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
    loaded, _ = _validated(scenario)
    s = loaded.scenario
    out.print(f"[green]ok[/]: {scenario} — scenario {s.name!r}, feeder {s.grid.feeder}, "
              f"{s.clock.n_steps} steps of {int(s.clock.step)} s, {len(s.generators)} generators")


@app.command()
def run(scenario: Path = typer.Argument(..., help="scenario YAML file"),
        out_dir: Optional[Path] = typer.Option(None, "--out", help="results folder (default runs/<name>-<timestamp>)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
        realtime: Optional[float] = typer.Option(None, "--realtime", min=1e-6, metavar="FACTOR",
                                                 help="pace to the wall clock: FACTOR wall seconds per simulated second"),
        read_only: bool = typer.Option(False, "--read-only", help="devices and grid server: block every write"),
        degraded: bool = typer.Option(False, "--degraded",
                                      help="start even when devices do not answer (they are marked stale)")) -> None:
    """Run a scenario and write run.json, timeseries.parquet, events.csv, metrics.json, report.html."""
    from cosim.assembly import RunOptions
    from cosim.runner import default_out_dir, run_scenario

    loaded, asm = _validated(scenario)
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

        outcome = run_scenario(loaded, target, on_step, RunOptions(realtime, read_only, degraded), asm)
    if outcome.metrics:
        out.print(kpi_table(outcome.metrics, f"{loaded.scenario.name} — KPIs"))
    if outcome.status != "ok":
        err.print(f"[bold red]run failed:[/] {outcome.message}\nresults recorded up to the failure are in {target}",
                  highlight=False)
        raise typer.Exit(1)
    out.print(f"results: {target}")


@app.command()
def train(scenario: Path = typer.Argument(..., help="scenario YAML file; episodes are random days of it"),
          algo: str = typer.Option("sac", "--algo", help="sac or td3 (continuous setpoints), dqn (discretised)"),
          steps: int = typer.Option(60_000, "--steps", help="environment steps (one per scenario step)"),
          seed: int = typer.Option(0, "--seed", help="seed of the training days and the learner"),
          out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default runs/<name>-<algo>-<timestamp>)"),
          curtail: bool = typer.Option(False, "--curtail", help="also learn active-power limits, not only reactive power"),
          events: float = typer.Option(0.0, "--events", help="random disruptions per training day (DER trips, load steps, clouds)"),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Train a deep-RL policy; writes policy.pt + policy.json and learning_curve.csv/.png."""
    import shlex

    from controllers.drl.train import TrainConfig, TrainError
    from controllers.drl.train import train as train_policy
    from cosim.runner import default_out_dir

    loaded = _load(scenario)
    target = out_dir or default_out_dir(f"{loaded.scenario.name}-{algo}")
    cfg = TrainConfig(algo=algo, steps=steps, seed=seed, curtail=curtail, events_per_day=events)
    command = shlex.join(["cosim", *sys.argv[1:]])
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("steps"), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                        disable=quiet, refresh_per_second=4)
    with progress:
        task = progress.add_task(f"{algo} on {loaded.scenario.name}", total=steps)

        def on_progress(k: int) -> None:
            if k % 100 == 0 or k == steps:
                progress.update(task, completed=k)

        try:
            result = train_policy(loaded, cfg, target, command, on_progress)
        except TrainError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    out.print(f"trained {algo} for {steps} steps ({result.episodes} days) in {result.wall_s:.0f} s\n"
              f"policy: {result.policy} + {result.metadata.name}\nlearning curve: {result.curve_csv}, {result.curve_png}")


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
            out_dir: Optional[Path] = typer.Option(None, "--out", help="results root (default runs/regress-<timestamp>)")) -> None:
    """Run scenarios with a controller; check criteria and baseline (exit 0 pass, 1 fail, 2 bad input)."""
    from cosim.regress import RegressInputError, regress as run_regress, write_junit
    from cosim.runner import default_out_dir

    root = out_dir or default_out_dir("regress")
    try:
        suite = run_regress(scenarios, controller, baseline, update_baseline, jobs, root,
                            on_done=lambda c: err.print(f"  {c.scenario}: run {c.status} ({c.wall_s:.1f} s)",
                                                        highlight=False))
    except RegressInputError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    out.print(regress_table(suite))
    for case in suite.cases:
        for line in ([f"run {case.status}: {case.message}"] if case.status != "ok" else []) + \
                [c.detail for c in case.failures] + case.notes:
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
    table = Table(title=f"cosim regress — controller {suite.spec}", header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("scenario", no_wrap=True)
    for col in ("result", "criteria", "baseline", "violation\nbus-min", "losses\nkWh"):
        table.add_column(col, justify="left" if col == "result" else "right", no_wrap=True)
    for c in suite.cases:
        verdict = "[green]PASS[/]" if c.passed else ("[red]ERROR[/]" if c.status != "ok" else "[red]FAIL[/]")
        crit = f"{sum(k.passed for k in c.criteria)}/{len(c.criteria)}" if c.criteria else "-"
        base = f"{sum(k.passed for k in c.baseline)}/{len(c.baseline)}" if c.baseline else "-"
        m = c.metrics
        table.add_row(c.scenario, verdict, crit, base, f"{m.get('voltage_violation_bus_minutes', float('nan')):,.0f}",
                      f"{m.get('loss_energy_kwh', float('nan')):,.1f}")
    return table


devices_app = typer.Typer(no_args_is_help=True, help="Start and stop the firmware stubs of a scenario's emulated devices.")
app.add_typer(devices_app, name="devices")


def _stub_table(rows, title: str) -> Table:
    table = Table(title=title, header_style="bold")
    for col in ("device", "kind", "address", "pid", "state", "log"):
        table.add_column(col)
    for info, state in rows:
        table.add_row(info.device, info.kind, f"{info.host}:{info.port}", str(info.pid), state, info.log)
    return table


@devices_app.command("up")
def devices_up(scenario: Path = typer.Argument(..., help="scenario YAML file")) -> None:
    """Start the stubs of every `emulate: true` device (kept running; pid files in .cosim/devices/<name>/)."""
    from hil.stubs import DeviceUnavailable, devices_up as up

    loaded = _load(scenario)
    try:
        rows = up(loaded)
    except DeviceUnavailable as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if not rows:
        out.print(f"{scenario}: no device has emulate: true; nothing to start")
        return
    out.print(_stub_table(rows, f"{loaded.scenario.name} — devices up"))


@devices_app.command("down")
def devices_down(scenario: Path = typer.Argument(..., help="scenario YAML file")) -> None:
    """Stop the stubs `cosim devices up` started for this scenario."""
    from hil.stubs import devices_down as down

    loaded = _load(scenario)
    rows = down(loaded)
    if not rows:
        out.print(f"{loaded.scenario.name}: no stubs were started with cosim devices up")
        return
    out.print(_stub_table(rows, f"{loaded.scenario.name} — devices down"))


@app.command()
def probe(host: str = typer.Option("127.0.0.1", "--host", help="device address"),
          port: int = typer.Option(..., "--port", min=1, max=65535, help="Modbus-TCP port"),
          unit: int = typer.Option(1, "--unit", min=0, max=247, help="Modbus unit id"),
          map_file: Optional[Path] = typer.Option(None, "--map", help="register map YAML to read and decode"),
          sunspec: bool = typer.Option(False, "--sunspec", help="discover SunSpec models (the default without --map)"),
          timeout: float = typer.Option(1.0, "--timeout", min=0.01, help="seconds to wait for each answer")) -> None:
    """Read a device's registers and print them decoded (exit 2 with the reason when it cannot)."""
    from hil.probe import ProbeError, probe as run_probe
    from hil.registers import RegisterMapError, load_map

    if map_file is not None and sunspec:
        err.print("[bold red]error:[/] give --map FILE or --sunspec, not both", highlight=False)
        raise typer.Exit(2)
    try:
        regmap = load_map(map_file) if map_file is not None else None
        readings = run_probe(host, port, unit, regmap, timeout)
    except (ProbeError, RegisterMapError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    table = Table(title=f"{host}:{port} unit {unit}" + (f" — {map_file}" if map_file else " — SunSpec"),
                  header_style="bold")
    for col in ("group", "point", "address", "value", "unit", "access"):
        table.add_column(col, justify="right" if col in ("address", "value") else "left")
    for r in readings:
        value = "n/a" if r.value is None else (f"{r.value:.6g}" if isinstance(r.value, float) else str(r.value))
        table.add_row(r.group, r.name, str(r.address), value, r.unit, r.access)
    out.print(table)


def main() -> None:
    """Console entry point."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sys.exit(app())
