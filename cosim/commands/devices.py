"""`cosim devices up|down`: start and stop the firmware stubs of a scenario's emulated devices."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cosim.commands._common import app, fail, load, out

devices_app = typer.Typer(no_args_is_help=True, help="Start and stop the firmware stubs of a scenario's emulated devices.")
app.add_typer(devices_app, name="devices")


def _stub_table(rows, title: str) -> Table:
    """One row per firmware stub: device, kind, address, pid, state, log file."""
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

    loaded = load(scenario)
    try:
        rows = up(loaded)
    except DeviceUnavailable as exc:
        fail(str(exc), 1)
    if not rows:
        out.print(f"{scenario}: no device has emulate: true; nothing to start")
        return
    out.print(_stub_table(rows, f"{loaded.scenario.name} — devices up"))


@devices_app.command("down")
def devices_down(scenario: Path = typer.Argument(..., help="scenario YAML file")) -> None:
    """Stop the stubs `cosim devices up` started for this scenario."""
    from hil.stubs import devices_down as down

    loaded = load(scenario)
    rows = down(loaded)
    if not rows:
        out.print(f"{loaded.scenario.name}: no stubs were started with cosim devices up")
        return
    out.print(_stub_table(rows, f"{loaded.scenario.name} — devices down"))
