"""`cosim status DIR`: is a run going, finished, stopped or dead (its process gone, its heartbeat stale)?"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cosim.commands._common import app, fail, out

STATE_EXIT = {"running": 0, "ok": 0}  # every other state (failed, interrupted, degraded, dead) exits 1
STYLE = {"running": "cyan", "ok": "green", "degraded": "yellow", "interrupted": "yellow"}


@app.command()
def status(run_dir: Path = typer.Argument(..., help="results folder of a run (holds run.json)")) -> None:
    """Say whether a run is running, ok, failed, interrupted, degraded or dead (exit 0 running/ok, else 1)."""
    from cosim.results import readable_rows, run_state

    path = run_dir / "run.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(f"{path}: no such file; expected the results folder of a `cosim run` (it holds run.json)")
    except (OSError, ValueError) as exc:
        fail(f"{path}: cannot read run.json: {exc}")
    if not isinstance(info, dict):
        fail(f"{path}: expected a JSON object, as `cosim run` writes")
    state, detail = run_state(info)
    if state == "dead":
        detail += f"; {readable_rows(run_dir / 'timeseries.parquet')} rows readable in timeseries.parquet"
    out.print(f"[bold {STYLE.get(state, 'red')}]{state}[/]: {info.get('name', run_dir.name)} — {detail}",
              highlight=False, soft_wrap=True)
    raise typer.Exit(STATE_EXIT.get(state, 1))
