"""`cosim probe`: read a device's registers and print them decoded."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cosim.commands._common import app, fail, out

@app.command()
def probe(host: str = typer.Option("127.0.0.1", "--host", help="device address"),
          port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Modbus-TCP port"),
          serial: Optional[str] = typer.Option(None, "--serial", metavar="PATH",
                                               help="Modbus RTU on this serial line (instead of --host/--port)"),
          baudrate: int = typer.Option(19200, "--baudrate", min=1, help="RTU baud rate"),
          parity: str = typer.Option("N", "--parity", help="RTU parity: N, E or O"),
          stopbits: int = typer.Option(1, "--stopbits", min=1, max=2, help="RTU stop bits"),
          unit: int = typer.Option(1, "--unit", min=0, max=65534,
                                   help="Modbus unit id (0..247); with --protocol iec104 the common address"),
          protocol: str = typer.Option("modbus", "--protocol", help="modbus, or iec104 (needs --port and --map)"),
          map_file: Optional[Path] = typer.Option(None, "--map", help="register map YAML to read and decode"),
          sunspec: bool = typer.Option(False, "--sunspec", help="discover SunSpec models (the default without --map)"),
          timeout: float = typer.Option(1.0, "--timeout", min=0.01, help="seconds to wait for each answer")) -> None:
    """Read a device's registers and print them decoded (exit 2 with the reason when it cannot)."""
    from hil.probe import ProbeError, probe as run_probe
    from hil.registers import RegisterMapError, load_map
    from hil.serial_line import SerialLine

    if map_file is not None and sunspec:
        fail("give --map FILE or --sunspec, not both")
    if (serial is None) == (port is None):
        fail("give --port N (Modbus-TCP) or --serial PATH (Modbus RTU), one of them")
    if protocol not in ("modbus", "iec104"):
        fail(f"--protocol {protocol}: expected modbus or iec104")
    if protocol == "iec104" and (map_file is None or serial is not None):
        fail("--protocol iec104 needs --map FILE (the device's register map; its objects are <map>_iec104.yaml) "
             "and --port, not --serial")
    if protocol == "modbus" and unit > 247:
        fail(f"--unit {unit}: a Modbus unit id is 0..247")
    if parity.upper() not in ("N", "E", "O"):
        fail(f"--parity {parity}: expected N, E or O")
    line = SerialLine(serial, baudrate, parity.upper(), stopbits) if serial is not None else None  # type: ignore[arg-type]
    try:
        regmap = load_map(map_file) if map_file is not None else None
        readings = run_probe(host, port, unit, regmap, timeout, line, map_file if protocol == "iec104" else None)
    except (ProbeError, RegisterMapError) as exc:
        fail(str(exc))
    where = f"{host}:{port}" if line is None else str(line)
    table = Table(title=f"{where} {'common address' if protocol == 'iec104' else 'unit'} {unit}" + (f" — {map_file}" if map_file else " — SunSpec"),
                  header_style="bold")
    for col in ("group", "point", "address", "value", "unit", "access"):
        table.add_column(col, justify="right" if col in ("address", "value") else "left")
    for r in readings:
        value = "n/a" if r.value is None else (f"{r.value:.6g}" if isinstance(r.value, float) else str(r.value))
        table.add_row(r.group, r.name, str(r.address), value, r.unit, r.access)
    out.print(table)
