"""`cosim train`: train a deep-RL policy on random days of a scenario, or on draws of a distribution file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from cosim.commands._common import app, fail, out, step_progress


@app.command()
def train(scenario: Path = typer.Argument(..., help="scenario YAML file (episodes are random days of it) or "
                                         "distribution YAML file (top-level feeders:; a scenario drawn per episode)"),
          algo: str = typer.Option("sac", "--algo", help="sac, td3 (off-policy) or ppo (on-policy), continuous setpoints; dqn (discretised); "
                             "dagger: the per-DER actor imitates the OPF oracle"),
          steps: int = typer.Option(60_000, "--steps", help="environment steps (one per scenario step)"),
          seed: int = typer.Option(0, "--seed", help="seed of the training days and the learner"),
          out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default runs/<name>-<algo>-<timestamp>)"),
          curtail: bool = typer.Option(False, "--curtail", help="also learn active-power limits, not only reactive power"),
          events: float = typer.Option(0.0, "--events", help="random disruptions per training day (DER trips, load steps, clouds)"),
          per_der: bool = typer.Option(False, "--per-der", help="one actor shared by every DER (runs on any feeder and "
                                       "layout); always so for a distribution"),
          envs: int = typer.Option(1, "--envs", help="environments stepped in parallel worker processes "
                                    "(worker i seeded with seed + i)"),
          loss_weight: float = typer.Option(0.03, "--loss-weight", min=0.0,
                                            help="reward per kW of network losses, against 1 per violated bus"),
          reactive_weight: float = typer.Option(0.0, "--reactive-weight", min=0.0,
                                                help="reward per DER per unit of |Q| over its own rating (MAPDN's "
                                                "q loss), against 1 per violated bus"),
          rounds: int = typer.Option(5, "--rounds", min=1, help="dagger: rounds of labelled days, each followed "
                                     "by a fit (the oracle acts on a day with probability 0.5^round)"),
          margin: float = typer.Option(0.005, "--margin", min=0.0, max=0.049, help="dagger: pu inside the voltage "
                                       "limits the oracle labels for (room for the actor's error)"),
          features: Optional[str] = typer.Option(None, "--features", help="per-DER actor: comma-separated features "
                                                 "(default v_own,v_parent,v_child,p_avail,p,q,rating,hour_sin,hour_cos,"
                                                 "feeder_p; docs/drl.md lists them)"),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Train a deep-RL policy; writes policy.pt + policy.json and learning_curve.csv/.png."""
    import shlex

    from controllers.drl.env import RewardWeights
    from controllers.drl.sources import SingleScenario, open_source
    from controllers.drl.train import TrainConfig, TrainError
    from controllers.drl.train import train as train_policy
    from cosim.runner import default_out_dir
    from cosim.scenario.errors import ScenarioError

    from controllers.drl.features import DEFAULT_FEATURES, LayoutUnreadable, PerDERSpec

    try:
        source = open_source(scenario, events)
    except ScenarioError as exc:
        fail(str(exc))
    chosen = DEFAULT_FEATURES if features is None else tuple(f.strip() for f in features.split(",") if f.strip())
    try:
        PerDERSpec(chosen)
    except LayoutUnreadable as exc:
        fail(f"--features: {exc}")
    name = source.loaded.scenario.name if isinstance(source, SingleScenario) else source.spec.name
    target = out_dir or default_out_dir(f"{name}-{algo}")
    cfg = TrainConfig(algo=algo, steps=steps, seed=seed, curtail=curtail, events_per_day=events, per_der=per_der,
                      envs=envs, dagger_rounds=rounds, dagger_margin=margin, features=chosen, reward=RewardWeights(loss_per_kw=loss_weight, reactive_per_pu=reactive_weight))
    command = shlex.join(["cosim", *sys.argv[1:]])
    progress, task = step_progress(f"{algo} on {name}", steps, quiet, refresh=4)
    with progress:

        def on_progress(k: int) -> None:
            if k % 100 < envs or k >= steps:
                progress.update(task, completed=k)

        try:
            result = train_policy(source, cfg, target, command, on_progress)
        except TrainError as exc:
            fail(str(exc))
    out.print(f"trained {algo} for {steps} steps ({result.episodes} days) in {result.wall_s:.0f} s "
              f"({result.env_steps / result.wall_s:.0f} env steps/s, {envs} env{'s' * (envs > 1)})\n"
              f"policy: {result.policy} + {result.metadata.name}\nlearning curve: {result.curve_csv}, {result.curve_png}")
