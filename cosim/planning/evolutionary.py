"""NSGA-II and DE from pymoo for the general case: any feeder size, any objective, the Pareto front of its terms.

A candidate is 2N reals: N bus positions (floored to a candidate index) and N sizes in MW.
Constraints (pymoo's G <= 0): the limit violation of the objective, and no two DGs at one bus.
NSGA-II minimises the objective's active terms (normalised by their bases) and returns the
feasible non-dominated front; the plan is the front member with the lowest weighted F. DE
minimises F itself.
"""

from __future__ import annotations

import time

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.de import DE
from pymoo.core.problem import ElementwiseProblem
from pymoo.optimize import minimize

from cosim.planning.problem import Plan, Problem, Score, make_plan


def decode(problem: Problem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bus positions and sizes of a candidate vector."""
    k = problem.n_dgs
    positions = np.clip(np.floor(x[:k]).astype(int), 0, problem.grid.n - 1)
    return positions, np.clip(x[k:], problem.size_min, problem.size_max)


class _Pymoo(ElementwiseProblem):
    """The siting problem in pymoo's terms; `multi` selects the active terms (NSGA-II) or F alone (DE)."""

    def __init__(self, problem: Problem, multi: bool):
        self.problem, self.multi = problem, multi
        k, n = problem.n_dgs, problem.grid.n
        n_obj = len(problem.objective.active) if multi else 1
        xl = np.r_[np.zeros(k), np.full(k, problem.size_min)]
        xu = np.r_[np.full(k, n - 1e-9), np.full(k, problem.size_max)]
        super().__init__(n_var=2 * k, n_obj=n_obj, n_ieq_constr=2, xl=xl, xu=xu)

    def _evaluate(self, x, out, *args, **kwargs):
        positions, sizes = decode(self.problem, x)
        s: Score = self.problem.score(positions, sizes)
        finite = np.isfinite(s.value)
        vector = self.problem.objective.vector(s.terms) if self.multi else np.array([s.value])
        out["F"] = vector if finite else np.full(self.n_obj, 1e9)
        out["G"] = [s.violation if finite else 1e9, len(positions) - len(set(positions.tolist()))]


def solve_nsga2(problem: Problem, seed: int = 0, pop_size: int = 60, generations: int = 100) -> Plan:
    """NSGA-II over the objective's active terms; the plan is the lowest-F member of the feasible front."""
    return _run(problem, NSGA2(pop_size=pop_size), "nsga2", True, seed, generations)


def solve_de(problem: Problem, seed: int = 0, pop_size: int = 40, generations: int = 150) -> Plan:
    """Differential evolution (DE/rand/1/bin) on F."""
    return _run(problem, DE(pop_size=pop_size, variant="DE/rand/1/bin", CR=0.9, F=0.6), "de", False, seed, generations)


def _run(problem: Problem, algorithm, method: str, multi: bool, seed: int, generations: int) -> Plan:
    started, solves0 = time.perf_counter(), problem.grid.solves
    res = minimize(_Pymoo(problem, multi), algorithm, ("n_gen", generations), seed=seed, verbose=False)
    xs = np.atleast_2d(res.X) if res.X is not None else np.atleast_2d(res.pop.get("X"))
    front = []
    for x in xs:
        positions, sizes = decode(problem, x)
        s = problem.score(positions, sizes)
        front.append((s.penalised, positions, sizes, s))
    front.sort(key=lambda item: item[0])
    _, positions, sizes, _ = front[0]
    pareto = [{"dgs": [{"bus": int(problem.grid.labels[i]), "p_mw": float(p)} for i, p in zip(pos, siz)],
               "value": s.value, **s.terms} for _, pos, siz, s in front] if multi else []
    details = {"seed": seed, "generations": generations, "pop_size": algorithm.pop_size,
               "feasible_found": res.X is not None, "engine_note": problem.grid.note}
    return make_plan(problem, method, positions, sizes, started, solves0, details, pareto)
