"""Model-predictive control: receding-horizon dispatch of batteries, DER reactive power and curtailment.

Every step it plans `horizon` ahead in intervals of `step` on the LinDistFlow model of the
feeder (`_lindistflow.py`), anchored to the voltages it measures now, and solves with cvxpy
(CLARABEL, shipped with cvxpy):

    minimise   mean over intervals of [ losses + curtailment_weight x curtailed MW
                                        + penalty x (pu outside [lo + margin, hi - margin], per bus) ]
               + soc_weight x |SoC at the horizon - soc_target| x E_mwh / horizon_h
    subject to V(t) = V_now + diag(1/V_now) (R dp(t) + X dq(t))    (dp, dq: injection changes from now)
               SoC(t+1) = SoC(t) + (eta p_ch - p_dis / eta) step / E, soc_min <= SoC <= soc_max,
               0 <= p_ch, p_dis <= p_mw, (p_ch - p_dis)^2 + q^2 <= s_mva^2,
               0 <= curtailed <= available, (available - curtailed)^2 + q^2 <= S^2,

and sends the first interval's setpoints. Voltage limits are soft (the penalty keeps the problem
feasible). The SoC term (soc_target default: the middle of [soc_min, soc_max]) keeps a battery
from drifting to one end of its range where a short horizon sees no reason not to. The defaults
(voltage_margin 0.01 pu, soc_weight 0.01) were chosen on seeds 8 and 9 of
scenarios/ieee33-pv-battery.yaml (benchmarks/bench_mpc.py reports seed 7): the margin covers
LinDistFlow's error (a few % of a voltage change) and the one-step delay of the setpoints.

Forecast (`forecast`): `persistence` (deployable) holds the available DER power and the
load measured now over the horizon, with the load spread over buses like the feeder's nominal
loads; `oracle` reads the run's input series (`info.truth`, as the opf oracle does); `scenario`
reads the scenario's `forecast:` block from the observation (`forecast.<der>.p_avail_mw.+<lead>`,
`forecast.grid.load_p_mw.+<lead>`, averaged over each interval's steps; reactive load scales with the
active one), so its horizon must reach the mpc's. The default is `scenario` when the run has a
`forecast:` block, else `persistence`. A forecast is one function of (observation, step) ->
per-interval available power and bus loads, so other forecasts can replace it. A step whose solve
fails falls back to doing nothing (batteries idle, no Q, no curtailment) and records an
`mpc_fallback` event; a solve that meets only the solver's reduced tolerances is used and records
`mpc_inaccurate`.
"""

from __future__ import annotations

from typing import Mapping

import cvxpy as cp
import numpy as np

from controllers.base import Controller, ControllerError, ControllerInfo
from controllers.baselines._lindistflow import lindistflow
from cosim import signals as sig
from cosim.forecast.build import LOAD_SIGNAL, signal_name
from cosim.scenario.units import format_duration, parse_duration

PENALTY_MW_PER_PU = 100.0  # per bus and pu outside the limits: an exact penalty against losses and curtailment


class MPC(Controller):
    """Receding-horizon control on LinDistFlow with cvxpy; see the module docstring."""

    uses_scenario = True  # the feeder's impedances and nominal loads (never the run's state)

    def __init__(self, horizon: str | float = "1h", step: str | float = "15min", forecast: str | None = None,
                 curtailment_weight: float = 1.0, voltage_margin: float = 0.01, soc_target: float | None = None,
                 soc_weight: float = 0.01, solver: str = "CLARABEL", max_iter: int = 200):
        self.horizon_s, self.step_s = parse_duration(horizon), parse_duration(step)
        if self.step_s <= 0 or self.horizon_s <= 0:
            raise ValueError(f"horizon and step must be positive durations, got horizon {horizon!r}, step {step!r}")
        n = self.horizon_s / self.step_s
        if abs(n - round(n)) > 1e-9:
            raise ValueError(f"horizon {format_duration(self.horizon_s)} is not a multiple of step "
                             f"{format_duration(self.step_s)}: the plan has a whole number of intervals "
                             "(e.g. horizon: 1h, step: 15min)")
        if forecast not in (None, "persistence", "oracle", "scenario"):
            raise ValueError(f"forecast must be persistence, oracle or scenario, got {forecast!r}")
        if curtailment_weight < 0 or soc_weight < 0:
            raise ValueError("curtailment_weight and soc_weight must be >= 0")
        if not 0 <= voltage_margin < 0.05:
            raise ValueError(f"voltage_margin must be in [0, 0.05) pu, got {voltage_margin}")
        if soc_target is not None and not 0 <= soc_target <= 1:
            raise ValueError(f"soc_target must be a share of e_mwh in [0, 1], got {soc_target}")
        if solver not in cp.installed_solvers():
            raise ValueError(f"solver {solver!r} is not installed (installed: {', '.join(cp.installed_solvers())})")
        self.n_int = int(round(n))
        self.forecast, self.solver, self.max_iter = forecast, solver, int(max_iter)
        self.oracle = forecast == "oracle"  # only then is the controller handed the run's inputs
        self.w_curt, self.margin, self.soc_target, self.w_soc = (float(curtailment_weight), float(voltage_margin),
                                                                 soc_target, float(soc_weight))

    # -- set-up -----------------------------------------------------------------------------
    def setup(self, info: ControllerInfo) -> None:
        super().setup(info)
        if info.scenario is None:
            raise ControllerError("mpc needs the scenario's feeder (info.scenario), which a run provides")
        if self.oracle and info.truth is None:
            raise ControllerError("mpc with forecast: oracle needs the run's input series, which only a run provides")
        feeder = info.scenario.feeder
        self.ldf = lindistflow(feeder)
        net = feeder.net
        self.bus_names = [f"bus.{b}.vm_pu" for b in feeder.bus_labels]
        nb = len(self.bus_names)
        load_bus = np.asarray([feeder.net.bus.index.get_loc(b) for b in net.load.bus], np.int64)
        self.load_bus = load_bus
        self.share_p = np.bincount(load_bus, net.load.p_mw.to_numpy(float), nb)
        self.share_q = np.bincount(load_bus, net.load.q_mvar.to_numpy(float), nb)
        self.share_p /= max(self.share_p.sum(), 1e-12)
        self.share_q /= max(self.share_q.sum(), 1e-12)
        self.nom_p, self.nom_q = net.load.p_mw.to_numpy(float), net.load.q_mvar.to_numpy(float)
        self.ders, self.units = info.ders, info.storage
        self.Ed = _incidence(feeder, [d.bus for d in self.ders], nb)  # bus x DER
        self.Es = _incidence(feeder, [s.bus for s in self.units], nb)
        self.lo, self.hi = info.voltage_limits[0] + self.margin, info.voltage_limits[1] - self.margin
        self.sub_steps = max(1, int(round(self.step_s / info.step_s)))  # run steps per plan interval
        if self.forecast is None:
            # a forecast: block gives every signal one forecast per step, so its first lead tells
            self.forecast = "scenario" if signal_name(LOAD_SIGNAL, info.step_s) in info.measurements else "persistence"
        if self.forecast == "scenario":
            self._scenario_forecast(info)
        if self.oracle:
            self.inputs = info.truth.inputs
        self._build(nb)

    def _scenario_forecast(self, info: ControllerInfo) -> None:
        """The observation names of each interval's forecasts: (intervals x steps) per DER and for the load."""
        def names(signal: str) -> list[list[str]]:
            return [[signal_name(signal, (t * self.sub_steps + j + 1) * info.step_s) for j in range(self.sub_steps)]
                    for t in range(self.n_int)]

        self.fc_avail = [names(sig.der(d.name, "p_avail_mw")) for d in info.ders]
        self.fc_load = names(LOAD_SIGNAL)
        if self.fc_load[-1][-1] not in set(info.measurements):
            raise ControllerError(f"mpc with forecast: scenario plans {format_duration(self.horizon_s)} ahead but the "
                                  f"run observes no {self.fc_load[-1][-1]} (a forecast: block with a horizon of at "
                                  f"least {format_duration(self.horizon_s)}, or forecast: persistence)")

    def _build(self, nb: int) -> None:
        """The parametrised problem, compiled once (cvxpy DPP); each step only sets the parameters."""
        H, nd, ns, ldf = self.n_int, len(self.ders), len(self.units), self.ldf
        dt_h = self.step_s / 3600.0
        P = self._p = {
            "v_base": cp.Parameter((H, nb)), "inv_v": cp.Parameter(nb, nonneg=True),
            "avail": cp.Parameter((H, max(nd, 1)), nonneg=True), 
            "load_p": cp.Parameter((H, nb)), "load_q": cp.Parameter((H, nb)),
            "soc0": cp.Parameter(max(ns, 1)),
        }
        self.var = V = {"c": cp.Variable((H, nd), nonneg=True) if nd else None,
                        "qd": cp.Variable((H, nd)) if nd else None,
                        "pc": cp.Variable((H, ns), nonneg=True) if ns else None,
                        "pd": cp.Variable((H, ns), nonneg=True) if ns else None,
                        "qs": cp.Variable((H, ns)) if ns else None,
                        "soc": cp.Variable((H + 1, ns)) if ns else None,
                        "s_hi": cp.Variable((H, nb), nonneg=True), "s_lo": cp.Variable((H, nb), nonneg=True)}
        R, X, path_t = ldf.R, ldf.X, ldf.path.T
        cons, cost = [], 0
        rating = np.array([d.s_mva for d in self.ders], float)
        units = self.units
        for t in range(H):
            inj_p, inj_q = -P["load_p"][t], -P["load_q"][t]
            dp, dq = 0, 0  # the controlled part of the injections: what the setpoints change
            if nd:
                gen = P["avail"][t, :nd] - V["c"][t]
                inj_p = inj_p + self.Ed @ gen
                inj_q = inj_q + self.Ed @ V["qd"][t]
                dp, dq = dp - self.Ed @ V["c"][t], dq + self.Ed @ V["qd"][t]
                cons += [V["c"][t] <= P["avail"][t, :nd],
                         cp.square(gen) + cp.square(V["qd"][t]) <= rating**2]
                cost += self.w_curt * cp.sum(V["c"][t])
            if ns:
                p_st = V["pc"][t] - V["pd"][t]  # load convention
                inj_p = inj_p - self.Es @ p_st
                inj_q = inj_q - self.Es @ V["qs"][t]
                dp, dq = dp - self.Es @ p_st, dq - self.Es @ V["qs"][t]
                p_max = np.array([min(s.p_mw, s.s_mva) for s in units])
                cons += [V["pc"][t] <= p_max, V["pd"][t] <= p_max,
                         cp.square(p_st) + cp.square(V["qs"][t]) <= np.array([s.s_mva for s in units]) ** 2]
            v = P["v_base"][t] + cp.multiply(P["inv_v"], R @ dp + X @ dq)
            cons += [v <= self.hi + V["s_hi"][t], v >= self.lo - V["s_lo"][t]]
            cost += ldf.r @ (cp.square(path_t @ -inj_p) + cp.square(path_t @ -inj_q))
            cost += PENALTY_MW_PER_PU * cp.sum(V["s_hi"][t] + V["s_lo"][t])
        cost = cost / H
        if ns:
            e = np.array([s.e_mwh for s in units])
            eta = np.array([s.efficiency for s in units])
            cons += [V["soc"][0] == P["soc0"][:ns],
                     V["soc"][1:] == V["soc"][:-1] + (V["pc"] @ np.diag(eta) - V["pd"] @ np.diag(1 / eta)) * dt_h @ np.diag(1 / e),
                     V["soc"] >= np.array([s.soc_min for s in units]), V["soc"] <= np.array([s.soc_max for s in units])]
            target = np.array([self.soc_target if self.soc_target is not None else (s.soc_min + s.soc_max) / 2
                               for s in units])
            cost += self.w_soc * cp.sum(cp.multiply(e, cp.abs(V["soc"][H] - target))) / (H * dt_h)
        self.problem = cp.Problem(cp.Minimize(cost), cons)
        assert self.problem.is_dpp(), "the mpc problem must be DPP so cvxpy compiles it once"

    # -- acting -----------------------------------------------------------------------------
    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        k = int(observation["time.step"])
        v_now = np.array([observation.get(n, np.nan) for n in self.bus_names], float)
        ok = np.isfinite(v_now).all()
        if ok:
            try:
                ok = self._solve(observation, k, v_now)
            except (cp.SolverError, ValueError, ArithmeticError):
                ok = False
        if not ok:
            self.report("mpc_fallback", "mpc")
            return self._nothing()
        V, out = self.var, {}
        for i, d in enumerate(self.ders):
            c = float(V["c"].value[0, i])
            out[f"{d.name}.p_limit_mw"] = d.p_mw if c < 1e-4 else max(float(self._p["avail"].value[0, i]) - c, 0.0)
            out[f"{d.name}.q_set_mvar"] = float(V["qd"].value[0, i])
        for i, s in enumerate(self.units):
            out[f"{s.name}.p_set_mw"] = float(V["pc"].value[0, i] - V["pd"].value[0, i])
            out[f"{s.name}.q_set_mvar"] = float(V["qs"].value[0, i])
        return out

    def _nothing(self) -> dict[str, float]:
        """Doing nothing: batteries idle, no reactive power, no curtailment."""
        out = {}
        for d in self.ders:
            out[f"{d.name}.p_limit_mw"], out[f"{d.name}.q_set_mvar"] = d.p_mw, 0.0
        for s in self.units:
            out[f"{s.name}.p_set_mw"], out[f"{s.name}.q_set_mvar"] = 0.0, 0.0
        return out

    def _solve(self, obs: Mapping[str, float], k: int, v_now: np.ndarray) -> bool:
        """Set the parameters from the observation and the forecast, solve; False when the solver did not succeed."""
        P, nd, ns = self._p, len(self.ders), len(self.units)
        get = lambda name: float(np.nan_to_num(obs.get(name, 0.0)))  # noqa: E731
        der_p = np.array([get(f"{d.name}.p_mw") for d in self.ders])
        der_q = np.array([get(f"{d.name}.q_mvar") for d in self.ders])
        st_p = np.array([get(f"{s.name}.p_mw") for s in self.units])
        st_q = np.array([get(f"{s.name}.q_mvar") for s in self.units])
        avail, load_p, load_q, load_p_now, load_q_now = self._forecast(obs, k)
        # V(t) = V_now + (R (inj_p(t) - inj_p now) + X (...)) / V_now; the uncontrolled part of inj(t) is the
        # forecast (available power, loads), the controlled part (curtailment, Q, batteries) is in the problem
        inj_p_now = self.Ed @ der_p - self.Es @ st_p - load_p_now
        inj_q_now = self.Ed @ der_q - self.Es @ st_q - load_q_now
        free_p = avail @ self.Ed.T - load_p if nd else -load_p
        R, X = self.ldf.R, self.ldf.X
        P["v_base"].value = v_now + ((free_p - inj_p_now) @ R.T + (-load_q - inj_q_now) @ X.T) / v_now
        P["inv_v"].value = 1.0 / v_now
        P["avail"].value = avail if nd else np.zeros((self.n_int, 1))
        P["load_p"].value, P["load_q"].value = load_p, load_q
        P["soc0"].value = np.array([get(f"{s.name}.soc") for s in self.units]) if ns else np.zeros(1)
        self.problem.solve(solver=self.solver, max_iter=self.max_iter, canon_backend=cp.SCIPY_CANON_BACKEND)
        if self.problem.status == cp.OPTIMAL_INACCURATE and all(v.value is not None for v in self.problem.variables()):
            # met only the solver's reduced tolerances (CLARABEL: 1e-4 feasibility), far inside LinDistFlow's error;
            # which steps end so depends on the CPU's floating-point paths, so it is used and recorded, not dropped
            self.report("mpc_inaccurate", "mpc")
            return True
        return self.problem.status == cp.OPTIMAL

    def _forecast(self, obs: Mapping[str, float], k: int):
        """Per interval: available DER power (H x DERs) and bus loads (H x buses), and the bus loads now."""
        H = self.n_int
        avail_now = np.array([max(float(np.nan_to_num(obs.get(f"{d.name}.p_avail_mw", 0.0))), 0.0)
                              for d in self.ders])
        lp, lq = float(np.nan_to_num(obs.get("grid.load_p_mw", 0.0))), float(np.nan_to_num(obs.get("grid.load_q_mvar", 0.0)))
        now_p, now_q = self.share_p * lp, self.share_q * lq
        if self.forecast == "persistence":
            return np.tile(avail_now, (H, 1)), np.tile(now_p, (H, 1)), np.tile(now_q, (H, 1)), now_p, now_q
        if self.forecast == "scenario":
            return self._observed_forecast(obs, now_p, now_q, lp, lq)
        inp, nb = self.inputs, len(self.bus_names)
        n = len(inp.times)
        avail, load_p, load_q = np.empty((H, len(self.ders))), np.empty((H, nb)), np.empty((H, nb))
        for t in range(H):  # setpoints act from the next step on: interval t covers steps k+1+t*m ...
            steps = np.clip(np.arange(k + 1 + t * self.sub_steps, k + 1 + (t + 1) * self.sub_steps), 0, n - 1)
            avail[t] = inp.der_p_avail_mw[steps].mean(axis=0) if len(self.ders) else 0.0
            scale = np.broadcast_to(np.asarray(inp.load_scale[steps], float).mean(axis=0), self.nom_p.shape)
            load_p[t] = np.bincount(self.load_bus, self.nom_p * scale, nb)
            load_q[t] = np.bincount(self.load_bus, self.nom_q * scale, nb)
        rating = np.array([d.s_mva for d in self.ders])
        return np.minimum(avail, rating), load_p, load_q, now_p, now_q

    def _observed_forecast(self, obs: Mapping[str, float], now_p, now_q, lp: float, lq: float):
        """`_forecast` from the scenario's forecast signals in the observation (`forecast: scenario`)."""
        mean = lambda rows: np.array([np.mean([np.nan_to_num(obs.get(n, 0.0)) for n in r]) for r in rows])  # noqa: E731
        avail = np.column_stack([mean(rows) for rows in self.fc_avail]) if self.ders else np.zeros((self.n_int, 0))
        rating = np.array([d.s_mva for d in self.ders])
        total = np.maximum(mean(self.fc_load), 0.0)
        load_p = total[:, None] * self.share_p[None, :]
        load_q = (total * lq / lp)[:, None] * self.share_q[None, :] if lp > 0 else np.tile(now_q, (self.n_int, 1))
        return np.clip(avail, 0.0, rating), load_p, load_q, now_p, now_q


def _incidence(feeder, buses, nb: int) -> np.ndarray:
    """(buses x devices) 1 where a device sits (published bus numbers)."""
    m = np.zeros((nb, len(buses)))
    for j, b in enumerate(buses):
        m[feeder.net.bus.index.get_loc(feeder.bus_index(b)), j] = 1.0
    return m


CONTROLLER = MPC
