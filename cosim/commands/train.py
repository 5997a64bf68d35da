"""`cosim train`: train a deep-RL policy on random days of a scenario."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from cosim.commands._common import app, fail, load, out, step_progress


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

    loaded = load(scenario)
    target = out_dir or default_out_dir(f"{loaded.scenario.name}-{algo}")
    cfg = TrainConfig(algo=algo, steps=steps, seed=seed, curtail=curtail, events_per_day=events)
    command = shlex.join(["cosim", *sys.argv[1:]])
    progress, task = step_progress(f"{algo} on {loaded.scenario.name}", steps, quiet, refresh=4)
    with progress:

        def on_progress(k: int) -> None:
            if k % 100 == 0 or k == steps:
                progress.update(task, completed=k)

        try:
            result = train_policy(loaded, cfg, target, command, on_progress)
        except TrainError as exc:
            fail(str(exc))
    out.print(f"trained {algo} for {steps} steps ({result.episodes} days) in {result.wall_s:.0f} s\n"
              f"policy: {result.policy} + {result.metadata.name}\nlearning curve: {result.curve_csv}, {result.curve_png}")
