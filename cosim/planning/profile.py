"""Snapshots from a scenario's profiles: plan over a day (or longer) of loads, not only at nominal load.

The scenario's load multipliers (profile, scale and seeded noise) are taken at up to
`MAX_SNAPSHOTS` evenly spaced steps. The planned DGs either hold their size (dispatchable) or
follow the scenario site's PV profile, seeded like the feeder's own PV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.planning.network import PlanningError, Snapshots

MAX_SNAPSHOTS = 96
SHAPES = ("constant", "pv")


def scenario_snapshots(path: Path, n_loads: int, dg_shape: str = "constant") -> Snapshots:
    """Snapshots of the scenario at `path` for a feeder with `n_loads` loads; ScenarioError or PlanningError on bad input."""
    from cosim.inputs import load_scale, time_grid
    from cosim.profiles import pv_profile
    from cosim.scenario.loader import load_scenario
    from cosim.seeding import rng_for

    if dg_shape not in SHAPES:
        raise PlanningError(f"--dg-shape: unknown shape {dg_shape!r} (expected {' or '.join(SHAPES)})")
    loaded = load_scenario(path)
    scn = loaded.scenario
    times = time_grid(scn)
    pick = np.unique(np.linspace(0, len(times) - 1, min(MAX_SNAPSHOTS, len(times))).round().astype(int))
    if len(loaded.feeder.net.load) != n_loads:
        raise PlanningError(f"--profile {path}: the scenario's feeder {scn.grid.feeder} has {len(loaded.feeder.net.load)} "
                            f"loads, the planned feeder {n_loads}; use a scenario on the same feeder")
    scale = load_scale(scn, times, n_loads, loaded.base_dir)[pick]
    if dg_shape == "pv":
        dg = pv_profile(times, rng_for(scn.seed, "native", "pv"), scn.site.latitude, scn.site.longitude)[pick]
    else:
        dg = np.ones(len(pick))
    return Snapshots(np.asarray(scale, float), np.asarray(dg, float), f"{len(pick)} steps of {path.name}")
