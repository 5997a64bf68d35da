"""A siting-and-sizing problem (grid, objective, number of DGs, size bounds) and the plan a method returns."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cosim.planning.network import Evaluation, PlanningError, PlanningGrid
from cosim.planning.objectives import Objective

PENALTY = 1e4  # added to F per unit of limit violation (pu of voltage, loading excess / 100)


@dataclass
class Score:
    """One placement judged: its objective terms, F, how far it is outside the limits, and the raw evaluation."""

    value: float
    terms: dict[str, float]
    violation: float
    evaluation: Evaluation

    @property
    def penalised(self) -> float:
        """F plus the penalty for limit violations (what the single-objective searches minimise)."""
        return self.value + PENALTY * self.violation if np.isfinite(self.violation) else np.inf


class Problem:
    """Site `n_dgs` DGs of `size_min`..`size_max` MW each at distinct candidate buses of `grid`, minimising `objective`."""

    def __init__(self, grid: PlanningGrid, objective: Objective, n_dgs: int, size_min: float, size_max: float):
        if n_dgs < 1:
            raise PlanningError(f"--dgs: expected at least 1 DG, got {n_dgs}")
        if n_dgs > grid.n:
            raise PlanningError(f"--dgs: {n_dgs} DGs but {grid.feeder.name} has only {grid.n} candidate buses")
        if not 0 <= size_min <= size_max or size_max <= 0:
            raise PlanningError(f"--sizes: expected MIN:MAX with 0 <= MIN <= MAX and MAX > 0, got {size_min}:{size_max}")
        self.grid, self.objective, self.n_dgs = grid, objective, n_dgs
        self.size_min, self.size_max = float(size_min), float(size_max)

    def score_vector(self, p: np.ndarray) -> Score:
        """Judge a full injection vector (MW per candidate bus)."""
        ev = self.grid.evaluate(p)
        if not ev.converged:
            return Score(np.inf, {k: np.inf for k in ("loss_kw", "cost_usd", "vdev_pu", "emission_kg")}, np.inf, ev)
        terms = self.objective.terms(ev, float(np.sum(p)))
        return Score(self.objective.value(terms), terms, self.objective.violation(ev), ev)

    def score(self, positions, sizes) -> Score:
        """Judge DGs of `sizes` MW at candidate `positions`."""
        return self.score_vector(self.grid.placement(positions, sizes))

    def baseline(self) -> Score:
        """The feeder without planned DGs."""
        return self.score_vector(np.zeros(self.grid.n))


@dataclass
class Plan:
    """A method's answer: the DGs (published bus numbers), F and its terms, limits, time and extra findings."""

    method: str
    feeder: str
    objective: str
    dgs: list[dict[str, float]]
    value: float
    terms: dict[str, float]
    loss_kw: float
    feasible: bool
    vm_min_pu: float
    vm_max_pu: float
    loading_max_pct: float
    time_s: float
    solves: int
    engine: str
    details: dict[str, Any] = field(default_factory=dict)
    pareto: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """plan.json content."""
        return asdict(self)


def make_plan(problem: Problem, method: str, positions, sizes, started: float, solves0: int,
              details: dict[str, Any] | None = None, pareto: list[dict[str, Any]] | None = None) -> Plan:
    """Score the chosen placement once more and wrap it as a Plan (time counted from `started`)."""
    elapsed = time.perf_counter() - started
    grid = problem.grid
    order = np.argsort([grid.labels[i] for i in positions])
    positions, sizes = [int(positions[i]) for i in order], [float(sizes[i]) for i in order]
    s = problem.score(positions, sizes)
    ev = s.evaluation
    return Plan(method=method, feeder=grid.feeder.name, objective=problem.objective.name,
                dgs=[{"bus": int(grid.labels[i]), "p_mw": round(p, 6)} for i, p in zip(positions, sizes)],
                value=s.value, terms=s.terms, loss_kw=s.terms["loss_kw"], feasible=bool(s.violation <= 1e-9),
                vm_min_pu=ev.vm_min_pu, vm_max_pu=ev.vm_max_pu, loading_max_pct=ev.loading_max_pct,
                time_s=elapsed, solves=grid.solves - solves0, engine=grid.engine.name,
                details=details or {}, pareto=pareto or [])
