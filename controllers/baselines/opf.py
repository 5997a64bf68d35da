"""OPF oracle: with perfect knowledge, choose every DER's P limit and Q to minimise losses within limits.

It is the reference the other controllers are measured against, not a deployable controller:
it reads the run's own grid model and input series (`info.truth`) rather than measurements,
and it optimises for the step at which its setpoints act (the next one), so it sees that
step's load and available power in advance.

Per step it solves, with SLSQP over AC power flows of the true model (finite-difference
gradients from ~100 us power flows):

    minimise   losses + curtailment_weight x curtailed power + penalty x s
    subject to lo + margin - s <= V_bus <= hi - margin + s,  line and trafo loading <= 100 % + s,
               0 <= P_i <= available_i,  P_i^2 + Q_i^2 <= S_i^2,  s >= 0.

With the default weight 1 the objective is the power drawn at the substation, so it curtails
only where voltages demand it. The slack `s` keeps the problem feasible when no setpoint can
meet the limits (it then minimises the worst violation). Only limits within 0.01 (pu, or of
100 % loading) of binding at the start enter the solver; a solution that breaks another
limit is solved again with it. A step where the solver fails or ends worse than doing
nothing falls back to doing nothing and records an `opf_fallback` event.

`q_only=True` is the bound of a volt-var controller: every P stays at the available power and only
the voltage limits bind (a Q-only controller cannot relieve a line that PV overloads, and a
loading slack shared with the voltages would let the solver ignore them).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.optimize import minimize

from controllers.base import Controller, ControllerError, ControllerInfo

# Cost of the worst violation, MW per pu: above the price of fixing a violation with Q or curtailment
# (an exact penalty), small enough to keep SLSQP's quadratic subproblems well scaled.
PENALTY_MW_PER_PU = 100.0
FD_STEP = 1e-4  # MW for P, fraction of the reactive room for u
ACTIVE_MARGIN = 0.01  # limits closer than this (pu, or 1 = 100 % loading) start as constraints
MAX_ROUNDS = 4  # re-solves adding limits the last solution broke


class _Diverged(Exception):
    """A trial point whose power flow does not converge."""


class OPFOracle(Controller):
    """Loss-minimising optimal power flow over the true grid; see the module docstring."""

    oracle = True

    def __init__(self, curtailment_weight: float = 1.0, voltage_margin: float = 0.001, max_iter: int = 100,
                 q_only: bool = False):
        if curtailment_weight < 0:
            raise ValueError(f"curtailment_weight must be >= 0, got {curtailment_weight}")
        if not 0 <= voltage_margin < 0.05:
            raise ValueError(f"voltage_margin must be in [0, 0.05) pu, got {voltage_margin}")
        self.weight, self.margin, self.max_iter = float(curtailment_weight), float(voltage_margin), int(max_iter)
        self.q_only = bool(q_only)

    def setup(self, info: ControllerInfo) -> None:
        super().setup(info)
        if info.truth is None:
            raise ControllerError("the opf oracle needs the true grid model, which only a co-simulation run provides")
        self.model, self.inputs = info.truth.model, info.truth.inputs
        self.n = len(info.ders)
        self.rating = np.array([d.s_mva for d in info.ders], float)
        self.lo, self.hi = info.voltage_limits[0] + self.margin, info.voltage_limits[1] - self.margin
        self.q_last = np.zeros(self.n)

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        k = int(observation["time.step"]) + 1  # setpoints issued now act at the next step
        if k >= len(self.inputs.times) or self.n == 0:
            return {}
        avail = np.minimum(self.inputs.der_p_avail_mw[k], self.rating)
        problem = _Problem(self, k, avail)
        try:
            p, q = problem.solve()
        except _Diverged:
            p, q = None, None
        if p is None:
            self.report("opf_fallback", "opf")
            p, q = avail, np.zeros(self.n)
        self.q_last = q
        out = {}
        for i, d in enumerate(self.info.ders):
            out[f"{d.name}.p_limit_mw"] = d.p_mw if p[i] >= avail[i] - 1e-6 else float(p[i])
            out[f"{d.name}.q_set_mvar"] = float(q[i])
        return out


class _Problem:
    """One step's OPF, solved over x = [P..., u...] with Q_i = u_i sqrt(S_i^2 - P_i^2).

    With this change of variables every point within the box bounds is within the device
    capability, so the grid model never clips a trial point and the cost is smooth.
    """

    def __init__(self, oracle: OPFOracle, k: int, avail: np.ndarray):
        self.o, self.avail = oracle, avail
        inp = oracle.inputs
        self.inputs = (inp.load_scale[k], inp.der_p_avail_mw[k], inp.native_pv_pu[k], inp.native_wind_pu[k])
        self._flows: dict[bytes, tuple[float, np.ndarray]] = {}
        self._grads: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def setpoints(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, Q) in MW and Mvar of a point."""
        n, rating = self.o.n, self.o.rating
        p = x[:n]
        return p, x[n:] * np.sqrt(np.maximum(rating**2 - p**2, 0.0))

    def flow(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Cost (MW) and limit margins (>= 0 when within limits) at a point."""
        key = x.tobytes()
        if key not in self._flows:
            load, p_avail, pv, wind = self.inputs
            p, q = self.setpoints(x)
            r = self.o.model.step(load, p_avail, p, q, pv, wind)
            if not r.pf.converged:
                raise _Diverged
            cost = r.pf.loss_mw + self.o.weight * float(np.sum(self.avail - r.der_p_mw))
            vm = r.pf.vm_pu[np.isfinite(r.pf.vm_pu)]
            loading = np.concatenate([r.pf.line_loading_pct, r.pf.trafo_loading_pct])
            loading = loading[np.isfinite(loading)] if not self.o.q_only else loading[:0]
            self._flows[key] = (cost, np.concatenate([self.o.hi - vm, vm - self.o.lo, (100.0 - loading) / 100.0]))
        return self._flows[key]

    def gradients(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Finite-difference gradient of the cost and Jacobian of the margins, stepping away from bounds."""
        key = x.tobytes()
        if key not in self._grads:
            cost0, m0 = self.flow(x)
            n = self.o.n
            g, jac = np.zeros(2 * n), np.zeros((m0.size, 2 * n))
            for j in range(n if self.o.q_only else 0, 2 * n):  # a fixed P has no gradient to take
                # P steps down (its upper bound is the available power), u steps towards zero
                h = FD_STEP if (x[j] < FD_STEP if j < n else x[j] <= 0) else -FD_STEP
                xj = x.copy()
                xj[j] += h
                cost, m = self.flow(xj)
                g[j], jac[:, j] = (cost - cost0) / h, (m - m0) / h
            self._grads[key] = (g, jac)
        return self._grads[key]

    def violation(self, x: np.ndarray) -> float:
        """Worst limit violation at a point (0 when every limit holds)."""
        return max(0.0, -float(self.flow(x)[1].min()))

    def solve(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """Best setpoints (P, Q), or (None, None) when the solver ends worse than doing nothing."""
        n, avail, rating = self.o.n, self.avail, self.o.rating
        q_room = np.sqrt(np.maximum(rating**2 - avail**2, 0.0))
        u0 = np.clip(np.divide(self.o.q_last, q_room, out=np.zeros(n), where=q_room > 0), -1.0, 1.0)
        nothing = np.concatenate([avail, np.zeros(n)])
        x = np.concatenate([avail, u0])
        bounds = [(a if self.o.q_only else 0.0, a) for a in avail] + [(-1.0, 1.0)] * n + [(0.0, None)]
        active = np.flatnonzero(self.flow(x)[1] < ACTIVE_MARGIN)
        for _ in range(MAX_ROUNDS):
            x = self._solve_with(np.append(x, self.violation(x)), active, bounds)
            margins = self.flow(x)[1]
            allowed = max(0.0, -float(margins[active].min())) if active.size else 0.0  # the slack it settled on
            missed = np.setdiff1d(np.flatnonzero(margins < -allowed - 1e-6), active)
            if missed.size == 0:
                break
            active = np.union1d(active, np.flatnonzero(margins < ACTIVE_MARGIN))
        if self._score(x) > self._score(nothing):
            return None, None
        return self.setpoints(x)

    def _solve_with(self, x0: np.ndarray, active: np.ndarray, bounds: list) -> np.ndarray:
        """SLSQP over [x, s] with the margins in `active` as constraints; returns x clipped to bounds."""

        def fun(z):
            return self.flow(z[:-1])[0] + PENALTY_MW_PER_PU * z[-1]

        def fun_jac(z):
            return np.append(self.gradients(z[:-1])[0], PENALTY_MW_PER_PU)

        def margins(z):
            return self.flow(z[:-1])[1][active] + z[-1]

        def margins_jac(z):
            jac = self.gradients(z[:-1])[1][active]
            return np.hstack([jac, np.ones((jac.shape[0], 1))])

        constraints = [{"type": "ineq", "fun": margins, "jac": margins_jac}] if active.size else []
        res = minimize(fun, x0, jac=fun_jac, method="SLSQP", bounds=bounds, constraints=constraints,
                       options={"maxiter": self.o.max_iter, "ftol": 1e-9})
        lo, hi = np.array([b[0] for b in bounds[:-1]]), np.array([b[1] for b in bounds[:-1]])
        return np.clip(res.x[:-1], lo, hi)

    def _score(self, x: np.ndarray) -> tuple[float, float]:
        """Compare points: first the worst violation (to 1e-5 pu), then the cost."""
        return round(self.violation(x), 5), self.flow(x)[0]


CONTROLLER = OPFOracle
