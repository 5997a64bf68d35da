"""Hosting capacity: the largest PV each bus takes alone before the upper voltage limit or a branch rating is passed.

Per candidate bus, the PV size is bracketed by doubling from 0.5 MW, then bisected to `tol` MW,
on every snapshot of the planning grid (the worst snapshot decides). Under-voltage is not a PV
limit (it is there without PV on the IEEE feeders), and a power flow that fails counts as a
violation. A bus that takes `cap` MW without a violation is reported at the cap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cosim.planning.network import PlanningGrid


def _limit(grid: PlanningGrid, position: int, p_mw: float, v_max: float, max_loading: float) -> str:
    """Which limit PV of `p_mw` at `position` passes: 'voltage', 'loading', 'no convergence' or '' (none)."""
    ev = grid.evaluate(grid.placement([position], [p_mw]))
    if not ev.converged:
        return "no convergence"
    if ev.vm_max_pu > v_max + 1e-9:
        return "voltage"
    if ev.loading_max_pct > max_loading + 1e-9:
        return "loading"
    return ""


def hosting_capacity(grid: PlanningGrid, v_max: float = 1.05, max_loading: float = 100.0, cap: float = 50.0,
                     tol: float = 1e-3) -> pd.DataFrame:
    """One row per candidate bus: bus, hosting_mw, the limit that binds, and V max / loading at the hosting size."""
    rows = []
    for position, label in enumerate(grid.labels):
        binding = _limit(grid, position, 0.0, v_max, max_loading)
        ok, bad = 0.0, None
        if binding:
            bad = 0.0
        else:
            size = 0.5
            while size <= cap:
                binding = _limit(grid, position, size, v_max, max_loading)
                if binding:
                    bad = size
                    break
                ok, size = size, size * 2
            if bad is None:
                binding = _limit(grid, position, cap, v_max, max_loading)
                ok, bad = (ok, cap) if binding else (cap, None)
        while bad is not None and bad - ok > tol:
            mid = 0.5 * (ok + bad)
            reason = _limit(grid, position, mid, v_max, max_loading)
            if reason:
                bad, binding = mid, reason
            else:
                ok = mid
        ev = grid.evaluate(grid.placement([position], [ok]))
        rows.append({"bus": int(label), "hosting_mw": round(ok, 4), "limit": binding or f"none up to {cap:g} MW",
                     "vm_max_pu": ev.vm_max_pu, "loading_max_pct": ev.loading_max_pct})
    return pd.DataFrame(rows)
