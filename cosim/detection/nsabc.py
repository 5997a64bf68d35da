"""NSABC: the background paper's non-dominated-sorting artificial bee colony with BBO-style migration.

Minimises one or more objectives over a box (each parameter linear or log-scaled, real or
integer). Scout bees sample the box at random; the best of them (non-dominated rank, then
crowding distance) become the food sources of the employed bees. Each iteration: employed bees
search next to their source (v_j = x_j + phi (x_j - x_kj), phi in [-1, 1], one dimension,
Karaboga's ABC); migration copies dimensions from good sources (emigration rate mu) into poor
ones (immigration rate lambda = 1 - mu), with the paper's three rank bands (linear for the best
two fifths, logarithmic for the middle fifth, tanh for the rest: the paper's equations (10)-(12)
are garbled in its text, so these are our reading); onlooker bees pick sources by rank and search
next to them; a source not improved for `limit` trials is abandoned for a new random one. A
candidate replaces its source if it dominates it (or, when neither dominates, with probability
1/2). The paper's colony (120 employed, 80 onlooker, 150 scout bees, 300 iterations) is a claim;
the defaults here are small because each evaluation is a training run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Param:
    """One searched parameter: its range, integer or real, linear or logarithmic scale."""

    name: str
    low: float
    high: float
    integer: bool = False
    log: bool = False

    def decode(self, u: float) -> float | int:
        """Unit-interval position -> value."""
        lo, hi = (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)
        v = lo + u * (hi - lo)
        v = math.exp(v) if self.log else v
        return int(round(v)) if self.integer else float(v)


@dataclass
class Result:
    """The best point (on the first objective among the Pareto front), the front and every evaluation."""

    best: dict
    best_f: tuple[float, ...]
    front: list[tuple[dict, tuple[float, ...]]]
    evaluations: list[tuple[dict, tuple[float, ...]]] = field(default_factory=list)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is no worse than b in every objective and better in one (minimising)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def ranks(F: np.ndarray) -> np.ndarray:
    """Order position of each point (0 = best): non-dominated front first, larger crowding distance first."""
    n = len(F)
    front = np.zeros(n, int)
    remaining = set(range(n))
    level = 0
    while remaining:
        layer = [i for i in remaining if not any(dominates(F[j], F[i]) for j in remaining if j != i)]
        front[layer] = level
        remaining -= set(layer)
        level += 1
    crowd = np.zeros(n)
    for lv in range(level):
        idx = np.flatnonzero(front == lv)
        for m in range(F.shape[1]):
            order = idx[np.argsort(F[idx, m], kind="stable")]
            span = F[order[-1], m] - F[order[0], m]
            crowd[order[[0, -1]]] = np.inf
            if span > 0 and len(order) > 2:
                crowd[order[1:-1]] += (F[order[2:], m] - F[order[:-2], m]) / span
    order = np.lexsort((-crowd, front))
    position = np.empty(n, int)
    position[order] = np.arange(n)
    return position


def migration_rates(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(emigration mu, immigration lambda) by rank position 1..n (1 = best), in three bands."""
    i = np.arange(1, n + 1, dtype=float)
    mu = np.where(i < 2 * n / 5, 1 - i / n,
                  np.where(i <= 3 * n / 5, np.log(n + 1 - i) / np.log(n + 1),
                           0.5 * (1 - np.tanh(np.pi * (i / n - 0.5)))))
    return mu, 1 - mu


def summary(evaluations: list[tuple[dict, tuple[float, ...]]]) -> Result:
    """The Pareto front of the evaluations and its best point on the first objective (ties: the next ones)."""
    all_f = np.array([f for _, f in evaluations])
    front = [evaluations[i] for i in range(len(evaluations))
             if not any(dominates(all_f[j], all_f[i]) for j in range(len(evaluations)))]
    best = min(front, key=lambda e: e[1])
    return Result(best[0], best[1], front, evaluations)


class _Spent(Exception):
    """The evaluation budget is used up."""


def nsabc(objective: Callable[[dict], Sequence[float]], space: Sequence[Param], employed: int = 4,
          onlooker: int = 3, scouts: int = 6, iterations: int = 3, limit: int = 3, seed: int = 0,
          budget: int | None = None) -> Result:
    """Minimise `objective` (a dict of parameter values -> objective values) over `space`; `budget`: stop
    after that many evaluations, wherever the colony is (searches compared at equal cost)."""
    rng = np.random.default_rng(seed)
    d = len(space)
    evaluations: list[tuple[dict, tuple[float, ...]]] = []

    def evaluate(u: np.ndarray) -> tuple[float, ...]:
        if budget is not None and len(evaluations) >= budget:
            raise _Spent
        x = {p.name: p.decode(float(v)) for p, v in zip(space, u)}
        f = tuple(float(v) for v in objective(x))
        evaluations.append((x, f))
        return f

    try:
        pool = rng.random((max(scouts, employed), d))
        pool_f = np.array([evaluate(u) for u in pool])
        keep = np.argsort(ranks(pool_f))[:employed]
        U, F = pool[keep].copy(), pool_f[keep].copy()
        trials = np.zeros(employed, int)

        def accept(i: int, v: np.ndarray) -> None:
            fv = np.array(evaluate(v))
            if dominates(fv, F[i]) or (not dominates(F[i], fv) and rng.random() < 0.5):
                U[i], F[i], trials[i] = v, fv, 0
            else:
                trials[i] += 1

        def neighbour(i: int) -> np.ndarray:
            k = rng.choice([j for j in range(employed) if j != i]) if employed > 1 else i
            j = rng.integers(d)
            v = U[i].copy()
            v[j] = np.clip(U[i, j] + rng.uniform(-1, 1) * (U[i, j] - U[k, j]), 0.0, 1.0)
            if v[j] == U[i, j]:  # a source on its neighbour: step at random instead
                v[j] = np.clip(U[i, j] + rng.uniform(-0.1, 0.1), 0.0, 1.0)
            return v

        for _ in range(iterations):
            for i in range(employed):  # employed bees
                accept(i, neighbour(i))
            position = ranks(F)  # migration among the employed bees
            mu, lam = migration_rates(employed)
            donors_p = mu[position] / mu[position].sum() if mu[position].sum() > 0 else None
            for i in range(employed):
                v = U[i].copy()
                for j in range(d):
                    if rng.random() < lam[position[i]]:
                        v[j] = U[rng.choice(employed, p=donors_p), j]
                if not np.array_equal(v, U[i]):
                    accept(i, v)
            position = ranks(F)  # onlooker bees: better-ranked sources are visited more
            weight = (employed - position).astype(float)
            for _ in range(onlooker):
                i = int(rng.choice(employed, p=weight / weight.sum()))
                accept(i, neighbour(i))
            for i in np.flatnonzero(trials > limit):  # scout bees replace abandoned sources
                U[i] = rng.random(d)
                F[i], trials[i] = evaluate(U[i]), 0
    except _Spent:
        pass
    return summary(evaluations)
