"""The planning methods by name: exact enumeration, NSGA-II, DE and the seed's DQN."""

from __future__ import annotations

from cosim.planning.network import PlanningError
from cosim.planning.problem import Plan, Problem


def solve(problem: Problem, method: str, seed: int = 0, generations: int = 100, dqn_steps: int = 20_000) -> Plan:
    """Run one method on the problem (nsga2 / de / dqn imported only when asked for)."""
    if method == "exact":
        from cosim.planning.exact import solve_exact

        return solve_exact(problem)
    if method in ("nsga2", "de"):
        from cosim.planning.evolutionary import solve_de, solve_nsga2

        return (solve_nsga2 if method == "nsga2" else solve_de)(problem, seed=seed, generations=generations)
    if method == "dqn":
        from cosim.planning.dqn import solve_dqn

        return solve_dqn(problem, seed=seed, steps=dqn_steps)
    raise PlanningError(f"--method: unknown method {method!r} (expected exact, nsga2, de or dqn)")
