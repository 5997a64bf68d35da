"""`cosim plan`: site and size DGs on a feeder (exact, NSGA-II, DE or DQN), or map its PV hosting capacity."""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from cosim.commands._common import app, fail, out

METHODS = ("exact", "nsga2", "de", "dqn")


def parse_sizes(text: str) -> tuple[float, float]:
    """'MIN:MAX' in MW -> (min, max); PlanningError naming --sizes otherwise."""
    from cosim.planning.network import PlanningError

    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise PlanningError(f"--sizes: expected MIN:MAX in MW (for example 0.1:2.0), got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise PlanningError(f"--sizes: expected finite numbers, got {text!r}")
    return lo, hi


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@app.command()
def plan(feeder: str = typer.Option(..., "--feeder", help="ieee33, ieee69, simbench:<code> or a pandapower .json file"),
         out_dir: Path = typer.Option(..., "--out", help="output folder (plan.json, report.html; hosting.csv/.png)"),
         dgs: int = typer.Option(3, "--dgs", help="number of DGs to site"),
         objective: str = typer.Option("losses", "--objective", help="losses, seed001, or a YAML/JSON objective file"),
         sizes: str = typer.Option("0.1:2.0", "--sizes", help="size range of each DG in MW, MIN:MAX"),
         pf: float = typer.Option(1.0, "--pf", help="DG power factor (Q injected = P tan(acos(pf)))"),
         method: str = typer.Option("exact", "--method", help="exact, nsga2, de or dqn"),
         profile: Optional[Path] = typer.Option(None, "--profile", help="scenario YAML whose load profile gives the snapshots"),
         dg_shape: str = typer.Option("constant", "--dg-shape", help="with --profile: DGs hold their size (constant) or follow PV"),
         load_scale: float = typer.Option(1.0, "--load-scale", help="multiplier on every load (e.g. 0.3 for light load)"),
         engine: str = typer.Option("sweep", "--engine", help="sweep (radial), lightsim2grid or pandapower"),
         line_max_i_ka: Optional[float] = typer.Option(None, "--line-max-i-ka", help="override line ratings (IEEE feeders have none)"),
         seed: int = typer.Option(0, "--seed", help="seed of nsga2, de and dqn"),
         generations: int = typer.Option(100, "--generations", help="nsga2 / de generations"),
         dqn_steps: int = typer.Option(20_000, "--dqn-steps", help="dqn training steps"),
         hosting: bool = typer.Option(False, "--hosting-capacity", help="map the largest PV per bus instead of planning")) -> None:
    """Site and size DGs (plan.json + report.html), or with --hosting-capacity the PV hosting capacity per bus."""
    from cosim.grid.feeders import FeederError, load_feeder
    from cosim.planning.network import PlanningError, PlanningGrid, Snapshots
    from cosim.planning.objectives import resolve
    from cosim.scenario.errors import ScenarioError

    command = shlex.join(["cosim", *sys.argv[1:]])
    try:
        if method not in METHODS:
            raise PlanningError(f"--method: unknown method {method!r} (expected {', '.join(METHODS)})")
        if load_scale <= 0:
            raise PlanningError(f"--load-scale: expected a positive multiplier, got {load_scale}")
        lo, hi = parse_sizes(sizes)
        goal = resolve(objective)
        fed = load_feeder(feeder)
        n_loads = len(fed.net.load)
        if profile is not None:
            from cosim.planning.profile import scenario_snapshots

            snaps = scenario_snapshots(profile, n_loads, dg_shape)
        else:
            snaps = Snapshots.nominal(n_loads)
        snaps = Snapshots(snaps.load_scale * load_scale, snaps.dg_pu, snaps.label)
        grid = PlanningGrid(fed, engine, pf, snaps, line_max_i_ka, goal.voltage_limits)
        out_dir.mkdir(parents=True, exist_ok=True)
        if hosting:
            _hosting(grid, goal, out_dir, feeder)
            return
        _plan(grid, goal, dgs, lo, hi, method, seed, generations, dqn_steps, out_dir, command)
    except (PlanningError, FeederError, ScenarioError) as exc:
        fail(str(exc))


def _plan(grid, goal, dgs: int, lo: float, hi: float, method: str, seed: int, generations: int, dqn_steps: int,
          out_dir: Path, command: str) -> None:
    from cosim.planning.problem import Problem
    from cosim.planning.report import write_report
    from cosim.planning.solve import solve

    problem = Problem(grid, goal, dgs, lo, hi)
    result = solve(problem, method, seed=seed, generations=generations, dqn_steps=dqn_steps)
    base = problem.baseline()
    doc = {**result.to_json(), "command": command, "snapshots": grid.snapshots.label,
           "baseline": {"value": base.value, **base.terms, "vm_min_pu": base.evaluation.vm_min_pu}}
    (out_dir / "plan.json").write_text(json.dumps(_clean(doc), indent=2), encoding="utf-8")
    write_report(out_dir / "report.html", problem, result, command)
    sites = ", ".join(f"bus {d['bus']}: {d['p_mw']:.3f} MW" for d in result.dgs)
    out.print(f"{method} on {grid.feeder.name}: {sites}\nF = {result.value:.6g} ({goal.name}), losses "
              f"{result.loss_kw:.3f} kW (without DG {base.terms['loss_kw']:.3f} kW), "
              f"{'within' if result.feasible else 'OUTSIDE'} limits, {result.time_s:.2f} s\n"
              f"wrote {out_dir / 'plan.json'} and {out_dir / 'report.html'}", highlight=False, soft_wrap=True)


def _hosting(grid, goal, out_dir: Path, feeder: str) -> None:
    from cosim.planning.hosting import hosting_capacity
    from cosim.planning.report import hosting_plot

    table = hosting_capacity(grid, v_max=goal.voltage_limits[1], max_loading=goal.max_loading_pct)
    table.to_csv(out_dir / "hosting.csv", index=False)
    hosting_plot(table, out_dir / "hosting.png", feeder)
    worst = table.loc[table.hosting_mw.idxmin()]
    out.print(f"hosting capacity on {feeder}: {table.hosting_mw.min():.3f} MW (bus {int(worst.bus)}) to "
              f"{table.hosting_mw.max():.3f} MW\nwrote {out_dir / 'hosting.csv'} and {out_dir / 'hosting.png'}",
              highlight=False, soft_wrap=True)
