"""`cosim validate` and `cosim run`: check a scenario, run it and write its results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cosim.commands._common import app, err, fail, kpi_table, out, step_progress, validated
from cosim.scenario.units import format_duration

INTERRUPTED_EXIT = 130  # a run stopped by SIGINT or SIGTERM (as a shell reports a Ctrl-C)


@app.command()
def validate(scenario: Path = typer.Argument(..., help="scenario YAML file")) -> None:
    """Check a scenario file without running it."""
    loaded, _ = validated(scenario)
    s = loaded.scenario
    out.print(f"[green]ok[/]: {scenario} — scenario {s.name!r}, feeder {s.grid.feeder}, "
              f"{s.clock.n_steps} steps of {format_duration(s.clock.step)}, {len(s.generators)} generators")


@app.command()
def run(scenario: Path = typer.Argument(..., help="scenario YAML file"),
        out_dir: Optional[Path] = typer.Option(None, "--out", help="results folder (default runs/<name>-<timestamp>)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
        realtime: Optional[float] = typer.Option(None, "--realtime", min=1e-6, metavar="FACTOR",
                                                 help="pace to the wall clock: FACTOR wall seconds per simulated second"),
        read_only: bool = typer.Option(False, "--read-only", help="devices and grid server: block every write"),
        degraded: bool = typer.Option(False, "--degraded",
                                      help="start even when devices do not answer (they are marked stale)"),
        sign: Optional[Path] = typer.Option(None, "--sign", metavar="KEYFILE",
                                            help="sign the audit chain's head with this Ed25519 PEM private key"),
        live: bool = typer.Option(False, "--live", help="serve a live view of the run on 127.0.0.1 (URL printed)"),
        live_port: int = typer.Option(0, "--live-port", min=0, max=65535, metavar="PORT",
                                      help="port of the live view (default: a free one); implies --live"),
        capture_modbus: bool = typer.Option(False, "--capture-modbus",
                                            help="write modbus_capture.parquet: the devices' Modbus traffic, "
                                                 "one row per request / response, with attack labels")) -> None:
    """Run a scenario and write run.json, timeseries.parquet, events.csv, metrics.json, report.html, audit.jsonl."""
    from cosim.assembly import RunOptions
    from cosim.audit import AuditKeyError, signing_key
    from cosim.runner import default_out_dir, run_scenario

    try:
        key = signing_key(sign) if sign is not None else None
    except AuditKeyError as exc:
        fail(f"--sign: {exc}")
    loaded, asm = validated(scenario)
    if capture_modbus:
        from hil.capture import capture_problem

        if (why := capture_problem(loaded.scenario)) is not None:
            fail(f"{scenario}: {why}")
    target = out_dir or default_out_dir(loaded.scenario.name)
    view = _live_view(asm, live_port) if live or live_port else None
    n = loaded.scenario.clock.n_steps
    progress, task = step_progress(loaded.scenario.name, n, quiet)
    outcome = None
    try:
        with progress:
            every = max(1, n // 200)

            def on_step(k: int) -> None:
                if k % every == 0 or k == n:
                    progress.update(task, completed=k)

            options = RunOptions(realtime, read_only, degraded, view.feed.on_row if view else None, capture_modbus)
            outcome = run_scenario(loaded, target, on_step, options, asm, key)
    finally:
        if view is not None:  # the server stops with the run, however it ends
            view.close(outcome.status if outcome is not None else "stopped")
    if outcome.metrics:
        out.print(kpi_table(outcome.metrics, f"{loaded.scenario.name} — KPIs"))
    if outcome.status == "interrupted":
        err.print(f"[bold yellow]run {outcome.message}[/]; metrics, events and report of the recorded steps are in "
                  f"{target}", highlight=False, soft_wrap=True)
        raise typer.Exit(INTERRUPTED_EXIT)
    if outcome.status == "degraded":
        err.print(f"[bold yellow]run degraded:[/] {outcome.message}; results in {target}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if outcome.status != "ok":
        err.print(f"[bold red]run failed:[/] {outcome.message}\nresults recorded up to the failure are in {target}",
                  highlight=False)
        raise typer.Exit(1)
    out.print(f"results: {target}")


def _live_view(asm, port: int):
    """Start the live view's server (its URL printed), or leave with exit status 2 if the port is taken."""
    from cosim.live import LiveFeed, LiveView

    try:
        view = LiveView(LiveFeed(asm), port)
    except OSError as exc:
        fail(f"--live-port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); "
             "expected a free port, or 0 for any free one")
    out.print(f"live view: [link={view.url}]{view.url}[/link]", highlight=False, soft_wrap=True)
    return view
