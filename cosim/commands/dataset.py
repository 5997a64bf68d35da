"""`cosim dataset`: labelled measurement windows from seeded co-simulation days, for training detectors."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from datetime import date
from functools import partial
from pathlib import Path
from typing import Optional

import typer

from cosim.commands._common import app, bad_input, err, fail, load, out, step_progress

DIST_RUNS = 10  # runs drawn from a distribution without --runs


def date_range(text: str) -> tuple[date, date]:
    """FROM:TO of --dates as two dates; exit 2 naming the option unless both parse and FROM <= TO."""
    try:
        start, end = (date.fromisoformat(part) for part in text.split(":"))
    except ValueError:
        fail(f"--dates {text!r}: expected FROM:TO as YYYY-MM-DD:YYYY-MM-DD, e.g. 2025-01-01:2025-12-31")
    if start > end:
        fail(f"--dates {text!r}: FROM ({start}) is after TO ({end})")
    return start, end


@app.command()
def dataset(scenarios: list[Path] = typer.Argument(..., help="scenario files (attacks from their events: schedule), "
                                                    "or one distribution file (top-level feeders:)"),
            out_dir: Path = typer.Option(..., "--out", help="folder to write steps.parquet and dataset.json to"),
            days: Optional[int] = typer.Option(None, "--days", min=1,
                                               help="scenario files: seeded days per scenario (day d: seed + d; "
                                                    "default 1)"),
            runs: Optional[int] = typer.Option(None, "--runs", min=1,
                                               help=f"a distribution: runs drawn (run r: seed + r; "
                                                    f"default {DIST_RUNS})"),
            seed: Optional[int] = typer.Option(None, "--seed", help="base seed of the runs or days (default the "
                                               "file's seed:), e.g. held-out runs no training run has"),
            dates: Optional[str] = typer.Option(None, "--dates", metavar="FROM:TO",
                                                help="scenario files: each day starts on a date drawn from FROM:TO "
                                                     "(YYYY-MM-DD:YYYY-MM-DD) by its seed, at the file's time of "
                                                     "day (default: the file's start)"),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Write per-step seen and true measurements with attack labels (split train/val/test by run) as Parquet."""
    from controllers.drl.distribution import is_distribution, load_distribution
    from cosim.detection.dataset import DatasetError, generate, generate_runs
    from cosim.scenario.errors import ScenarioError

    dists = [p for p in scenarios if is_distribution(p)]
    command = shlex.join(["cosim", "dataset", *sys.argv[2:]]) if sys.argv[1:2] == ["dataset"] else ""
    if dists:
        if len(scenarios) > 1:
            fail(f"{dists[0]} is a distribution (top-level feeders:): give it alone, without other scenario or "
                 "distribution files")
        if days is not None or dates is not None:
            fail(f"{dists[0]} is a distribution: --days and --dates are for scenario files; draw runs with --runs N "
                 "(the file's dates: gives their range)")
        try:
            dist = load_distribution(dists[0])
        except ScenarioError as exc:
            bad_input(exc)
        if seed is not None:
            dist = dataclasses.replace(dist, spec=dist.spec.model_copy(update={"seed": seed}))
        total = runs or DIST_RUNS
        make = partial(generate_runs, dist, total, out_dir, command)
    else:
        if runs is not None:
            fail(f"{scenarios[0]} is a scenario file: --runs is for a distribution (top-level feeders:); "
                 "run seeded days of a scenario with --days N")
        span = None if dates is None else date_range(dates)
        loaded = [load(p) for p in scenarios]
        total = len(loaded) * (days or 1)
        make = partial(generate, loaded, days or 1, out_dir, command, seed=seed, dates=span)
    progress, task = step_progress("dataset", total, quiet, unit="runs")
    with progress:
        try:
            card = make(lambda run: progress.advance(task))
        except DatasetError as exc:
            fail(str(exc))
    err.print(f"{card['steps']:,} steps in {sum(card['runs'].values())} runs "
              f"(train {card['runs']['train']}, val {card['runs']['val']}, test {card['runs']['test']}), "
              f"{card['attack_steps']:,} attack steps")
    out.print(str(out_dir))
