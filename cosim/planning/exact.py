"""Exact siting and sizing by enumeration: every bus set, each sized continuously, the best refined on true power flows.

1. A quadratic model of F over the injections at all candidate buses is fitted by finite
   differences on the engine (1 + 2n + n(n-1)/2 power flows, steps of a quarter of the size range).
2. Every set of `n_dgs` distinct buses is sized on the model: a box-constrained QP, solved for all
   sets at once by trying each active set (free, at MIN, at MAX per DG) and keeping the best
   feasible stationary point, which is the QP's global minimum on the box.
3. The sets whose model optimum lies within a margin of the best are sized on true power flows
   (scipy L-BFGS-B within the bounds, limit violations penalised), best first.
4. The model is refitted around the best placement found and step 2-3 repeated, until no set
   outside those already refined comes within the margin: the screening cannot hide a set the
   refitted model ranks as competitive.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
from scipy.optimize import minimize

from cosim.planning.network import PlanningError
from cosim.planning.problem import Plan, Problem, make_plan

MAX_SETS = 400_000  # bus sets beyond which enumeration is refused (use nsga2 or de)
MARGIN = 0.02  # refine sets whose model optimum is within 2 % (of |F|) of the best
MIN_REFINE, MAX_REFINE = 12, 400
FIRST_BATCH = 2000  # sets box-solved before the margin is known
ROUNDS = 5


def quadratic_model(problem: Problem, p0: np.ndarray, h: float) -> tuple[float, np.ndarray, np.ndarray]:
    """F(p0), gradient and Hessian of F over the candidate injections, by finite differences of step `h` MW."""
    n = problem.grid.n
    f = lambda p: problem.score_vector(p).value  # noqa: E731
    f0 = f(p0)
    eye = np.eye(n) * h
    plus = np.array([f(p0 + eye[i]) for i in range(n)])
    minus = np.array([f(p0 - eye[i]) for i in range(n)])
    grad = (plus - minus) / (2 * h)
    hess = np.empty((n, n))
    hess[np.diag_indices(n)] = (plus - 2 * f0 + minus) / h ** 2
    for i in range(n):
        for j in range(i + 1, n):
            hess[i, j] = hess[j, i] = (f(p0 + eye[i] + eye[j]) - plus[i] - plus[j] + f0) / h ** 2
    return f0, grad, hess


def box_qp(sets: np.ndarray, b: np.ndarray, hess: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """min b_S.x + x.H_SS.x / 2 over lo <= x <= hi for every row S of `sets`; returns (values, x) per set."""
    m, k = sets.shape
    bs = b[sets]
    hs = hess[sets[:, :, None], sets[:, None, :]]
    best = np.full(m, np.inf)
    best_x = np.full((m, k), lo)
    for pattern in itertools.product((0, 1, 2), repeat=k):  # 0 free, 1 at lo, 2 at hi
        pattern = np.array(pattern)
        free, fixed = np.flatnonzero(pattern == 0), np.flatnonzero(pattern != 0)
        x = np.where(pattern == 1, lo, hi) * np.ones((m, k))
        if len(free):
            rhs = -(bs[:, free] + (hs[:, free][:, :, fixed] @ x[:, fixed, None])[..., 0])
            x[:, free] = _solve_small(hs[:, free][:, :, free], rhs)
        inside = np.all((x >= lo - 1e-9) & (x <= hi + 1e-9), axis=1)
        val = np.einsum("mi,mi->m", bs, x) + 0.5 * np.einsum("mi,mij,mj->m", x, hs, x)
        better = inside & (val < best)
        best[better], best_x[better] = val[better], x[better]
    return best, best_x


def lower_bounds(sets: np.ndarray, b: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """The unconstrained model minimum of each set: a lower bound of its box QP where H_SS is positive definite
    (-inf where it is not, so such sets are never pruned)."""
    bs = b[sets]
    hs = hess[sets[:, :, None], sets[:, None, :]]
    x = _solve_small(hs, -bs)
    bound = 0.5 * np.einsum("mi,mi->m", bs, x)
    definite = np.all(np.linalg.eigvalsh(hs) > 1e-12, axis=1)
    return np.where(definite & np.isfinite(bound), bound, -np.inf)


def _solve_small(a: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched solves of small systems; NaN rows where the matrix is singular."""
    ok = np.abs(np.linalg.det(a)) > 1e-12
    sol = np.full(rhs.shape, np.nan)
    if ok.any():
        sol[ok] = np.linalg.solve(a[ok], rhs[ok][..., None])[..., 0]
    return sol


def screen(sets: np.ndarray, b: np.ndarray, hess: np.ndarray, lo: float, hi: float, incumbent: float,
           const: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model optimum of the sets that can come within the margin; pruned sets get +inf.

    The box QP is solved first for the sets with the lowest bounds, then for every set whose
    bound is within the margin of the best value found (the others cannot be).
    """
    bound = lower_bounds(sets, b, hess) + const
    order = np.argsort(bound)
    values = np.full(len(sets), np.inf)
    xs = np.full((len(sets), sets.shape[1]), lo)
    first = order[:FIRST_BATCH]
    values[first], xs[first] = box_qp(sets[first], b, hess, lo, hi)
    values[first] += const
    best = min(float(values[first].min()), incumbent)
    cut = best + MARGIN * max(abs(best), 1e-9)
    rest = order[FIRST_BATCH:][bound[order[FIRST_BATCH:]] <= cut]
    if len(rest):
        values[rest], xs[rest] = box_qp(sets[rest], b, hess, lo, hi)
        values[rest] += const
    return values, xs, cut


def refine(problem: Problem, positions: np.ndarray, x0: np.ndarray) -> tuple[float, np.ndarray]:
    """Size one bus set on true power flows (SLSQP in the bounds, voltage and loading limits as constraints);
    returns (penalised F, sizes)."""
    lo, hi = problem.size_min, problem.size_max
    obj = problem.objective
    cache: dict[bytes, object] = {}

    def scored(x: np.ndarray):
        key = np.round(x, 12).tobytes()
        if key not in cache:
            cache[key] = problem.score(positions, x)
        return cache[key]

    def limits(x: np.ndarray) -> np.ndarray:  # one smooth constraint per bus and limit, >= 0 when met
        ev = scored(x).evaluation
        if not ev.converged:
            return np.full(2 * n_bus + 1, -1.0)
        vlo, vhi = obj.voltage_limits
        return np.concatenate([ev.bus_min_pu - vlo, vhi - ev.bus_max_pu,
                               [(obj.max_loading_pct - ev.loading_max_pct) / 100]])

    x0 = np.clip(np.nan_to_num(x0, nan=lo), lo, hi)
    first = scored(x0).evaluation
    n_bus = len(first.bus_min_pu) if first.converged else len(problem.grid.net.bus)
    res = minimize(lambda x: scored(x).value, x0, method="SLSQP", bounds=[(lo, hi)] * len(positions),
                   constraints=[{"type": "ineq", "fun": limits}], options={"eps": 1e-6, "maxiter": 100, "ftol": 1e-10})
    candidates = [np.clip(res.x, lo, hi), x0]
    best = min(candidates, key=lambda x: scored(x).penalised)
    return float(scored(best).penalised), best


def solve_exact(problem: Problem, max_sets: int = MAX_SETS) -> Plan:
    """The best placement over every bus set; see the module docstring."""
    started, solves0 = time.perf_counter(), problem.grid.solves
    n, k = problem.grid.n, problem.n_dgs
    count = math.comb(n, k)
    if count > max_sets:
        raise PlanningError(f"--method exact: {count:,} bus sets of {k} among {n} candidates is more than "
                            f"{max_sets:,}; use --method nsga2 or de for this size")
    sets = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
    lo, hi = problem.size_min, problem.size_max
    h = max((hi - lo) / 4, 1e-3)
    refined: dict[tuple[int, ...], tuple[float, np.ndarray]] = {}
    p0, around = np.zeros(n), None
    for round_ in range(ROUNDS):
        f0, grad, hess = quadratic_model(problem, p0, h)
        const = f0 - grad @ p0 + 0.5 * p0 @ hess @ p0
        incumbent = min((v for v, _ in refined.values()), default=np.inf)
        values, xs, cut = screen(sets, grad - hess @ p0, hess, lo, hi, incumbent, const)
        order = np.argsort(values)
        chosen = [i for i in order[:MAX_REFINE] if values[i] <= cut]
        chosen = chosen if len(chosen) >= MIN_REFINE else list(order[:MIN_REFINE])
        for i in chosen:
            if tuple(sets[i]) not in refined:
                refined[tuple(sets[i])] = refine(problem, sets[i], xs[i])
        best_key = min(refined, key=lambda key: refined[key][0])
        if best_key == around:  # the model around the final incumbent found nothing better
            break
        around, p0 = best_key, problem.grid.placement(best_key, refined[best_key][1])
    positions, sizes = list(best_key), refined[best_key][1]
    details = {"sets": count, "sets_refined": len(refined), "rounds": round_ + 1,
               "refine_cap_hit": len(chosen) >= MAX_REFINE, "engine_note": problem.grid.note}
    return make_plan(problem, "exact", positions, sizes, started, solves0, details)
