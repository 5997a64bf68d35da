"""`cosim sweep`: run a matrix of scenarios, seeds, controllers and overrides; compare the controllers."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cosim.commands._common import app, err, fail, out, step_progress


@app.command()
def sweep(sweep_file: Path = typer.Argument(..., help="sweep YAML file (name, scenarios, seeds, controllers, overrides)"),
          out_dir: Path = typer.Option(..., "--out", help="output folder: summary.parquet, report.html, runs/<id>/"),
          backend: str = typer.Option("local", "--backend", help="local (process pool on this machine) | ray"),
          address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT",
                                                help="Ray head to join (default: start a local Ray instance)"),
          jobs: int = typer.Option(0, "--jobs", "-j", help="runs at once (default: local one per core, ray 2 CPUs "
                                                            "or the whole cluster; 1 = in-process)"),
          resume: bool = typer.Option(False, "--resume", help="skip runs whose results in --out are complete"),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Run every combination of a sweep file; exit 0 when all runs succeed, 1 when any failed, 2 on bad input."""
    from cosim.sweep import SweepError, load_sweep, run_sweep
    from cosim.sweep.backends import BackendError, open_backend

    try:
        open_backend(backend, jobs, address)  # an unknown backend or a misplaced --address is bad input
        matrix = load_sweep(sweep_file)
    except (SweepError, BackendError) as exc:
        fail(str(exc))
    progress, task = step_progress(matrix.name, len(matrix.tasks), quiet, unit="runs", refresh=4)
    try:
        with progress:
            result = run_sweep(matrix, out_dir, backend, jobs, address, resume,
                               on_done=lambda row: progress.advance(task))
    except BackendError as exc:
        fail(str(exc))
    if result.resumed:
        out.print(f"resumed: {result.resumed} runs were complete and not run again")
    for _, r in result.table[result.table["status"] != "ok"].iterrows():
        err.print(f"  {r['run_id']}: run {r['status']}: {r['message']}", highlight=False, soft_wrap=True)
    out.print(f"summary: {out_dir / 'summary.parquet'}\nreport: {out_dir / 'report.html'}")
    if result.failed:
        err.print(f"[bold red]{len(result.failed)} of {len(result.table)} runs failed[/]", highlight=False)
        raise typer.Exit(1)
    out.print(f"[bold green]ok[/]: {len(result.table)} runs")
