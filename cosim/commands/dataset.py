"""`cosim dataset`: labelled measurement windows from seeded co-simulation days, for training detectors."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from cosim.commands._common import app, err, fail, load, out, step_progress


@app.command()
def dataset(scenarios: list[Path] = typer.Argument(..., help="scenario files (attacks from their events: schedule)"),
            out_dir: Path = typer.Option(..., "--out", help="folder to write steps.parquet and dataset.json to"),
            days: int = typer.Option(1, "--days", min=1, help="seeded days per scenario (day d: seed + d)"),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Write per-step seen measurements with attack labels (split train/val/test by run) as Parquet."""
    from cosim.detection.dataset import DatasetError, generate

    loaded = [load(p) for p in scenarios]
    progress, task = step_progress("dataset", len(loaded) * days, quiet, unit="runs")
    command = shlex.join(["cosim", "dataset", *sys.argv[2:]]) if sys.argv[1:2] == ["dataset"] else ""
    with progress:
        try:
            card = generate(loaded, days, out_dir, command, on_run=lambda run: progress.advance(task))
        except DatasetError as exc:
            fail(str(exc))
    err.print(f"{card['steps']:,} steps in {sum(card['runs'].values())} runs "
              f"(train {card['runs']['train']}, val {card['runs']['val']}, test {card['runs']['test']}), "
              f"{card['attack_steps']:,} attack steps")
    out.print(str(out_dir))
