"""The grid model: a feeder, its DERs and a power-flow engine, stepped with injections.

Knows nothing of mosaik: the mosaik grid simulator and the RL environment both drive it.
Bus, line and trafo numbers in signal names follow the feeder's published numbering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp

from cosim.grid.engine import PowerFlowResult, build_engine
from cosim.grid.feeders import Feeder


@dataclass(frozen=True)
class DER:
    """A converter-connected generator the scenario adds: nameplate P and apparent-power rating."""

    name: str
    kind: str
    bus: int
    p_mw: float
    s_mva: float


@dataclass
class StepResult:
    """A solved step: the power flow plus the injections that produced it."""

    pf: PowerFlowResult
    load_p_mw: float
    load_q_mvar: float
    der_p_mw: np.ndarray
    der_q_mvar: np.ndarray
    der_p_avail_mw: np.ndarray
    native_p_mw: float


class GridModel:
    """Feeder + DERs + engine. `step()` applies injections and solves one power flow."""

    def __init__(self, feeder: Feeder, ders: list[DER], engine: str = "lightsim2grid",
                 line_max_i_ka: float | None = None):
        self.feeder = feeder
        net = feeder.net
        if line_max_i_ka is not None:
            net.line["max_i_ka"] = line_max_i_ka
        self.native_sgens = len(net.sgen)
        self.native_p_nom = net.sgen.p_mw.to_numpy(float).copy()
        self.native_q_nom = net.sgen.q_mvar.to_numpy(float).copy()
        kinds = net.sgen.get("type", None)
        kinds = kinds.astype(str).str.lower() if kinds is not None else np.array([""] * self.native_sgens)
        self.native_is_pv = np.asarray([k.startswith("pv") for k in kinds], bool)
        self.native_is_wind = np.asarray([k.startswith("wind") for k in kinds], bool)
        self.ders = list(ders)
        for der in self.ders:
            pp.create_sgen(net, feeder.bus_index(der.bus), p_mw=0.0, q_mvar=0.0, sn_mva=der.s_mva,
                           name=der.name, type=der.kind)
        self.der_rating = np.array([d.s_mva for d in self.ders], float)
        self.load_p_nom = net.load.p_mw.to_numpy(float).copy()
        self.load_q_nom = net.load.q_mvar.to_numpy(float).copy()
        self.load_on = net.load.in_service.to_numpy(bool)
        probe = self._injections(np.ones(len(net.load)), np.zeros(len(self.ders)), np.zeros(len(self.ders)), 1.0, 1.0)
        self.engine, self.engine_note = build_engine(net, engine, probe[:4])
        self._names = self._signal_names()

    # -- stepping ---------------------------------------------------------------------------
    def capability(self, p_avail: np.ndarray, p_limit: np.ndarray, q_set: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clip DER setpoints to what the device can do: P <= available and limit, |S| <= rating."""
        p = np.clip(np.minimum(p_avail, p_limit), 0.0, None)
        p = np.minimum(p, self.der_rating)
        q_max = np.sqrt(np.maximum(self.der_rating**2 - p**2, 0.0))
        return p, np.clip(q_set, -q_max, q_max)

    def _injections(self, load_scale, der_p, der_q, native_pv_pu, native_wind_pu):
        load_p = self.load_p_nom * load_scale * self.load_on
        load_q = self.load_q_nom * load_scale * self.load_on
        native_scale = np.where(self.native_is_pv, native_pv_pu, np.where(self.native_is_wind, native_wind_pu, 1.0))
        sgen_p = np.concatenate([self.native_p_nom * native_scale, der_p])
        sgen_q = np.concatenate([self.native_q_nom * native_scale, der_q])
        return load_p, load_q, sgen_p, sgen_q

    def step(self, load_scale: np.ndarray, der_p_avail: np.ndarray, der_p_limit: np.ndarray | None = None,
             der_q_set: np.ndarray | None = None, native_pv_pu: float = 1.0, native_wind_pu: float = 1.0) -> StepResult:
        """Apply per-load multipliers of nominal load and DER setpoints, solve, return the result."""
        n = len(self.ders)
        limit = np.full(n, np.inf) if der_p_limit is None else der_p_limit
        q_set = np.zeros(n) if der_q_set is None else der_q_set
        der_p, der_q = self.capability(der_p_avail, limit, q_set)
        load_p, load_q, sgen_p, sgen_q = self._injections(load_scale, der_p, der_q, native_pv_pu, native_wind_pu)
        pf = self.engine.solve(load_p, load_q, sgen_p, sgen_q)
        return StepResult(pf, float(load_p.sum()), float(load_q.sum()), der_p, der_q,
                          np.asarray(der_p_avail, float), float(sgen_p[: self.native_sgens].sum()))

    # -- naming -----------------------------------------------------------------------------
    def _signal_names(self) -> list[str]:
        f = self.feeder
        names = [f"bus.{b}.vm_pu" for b in f.bus_labels]
        names += [f"line.{k}.loading_pct" for k in f.line_labels]
        names += [f"line.{k}.i_ka" for k in f.line_labels]
        names += [f"trafo.{k}.loading_pct" for k in f.trafo_labels]
        names += ["grid.loss_kw", "grid.ext_p_mw", "grid.ext_q_mvar", "grid.load_p_mw", "grid.load_q_mvar",
                  "grid.gen_p_mw", "grid.converged"]
        for d in self.ders:
            names += [f"{d.name}.p_mw", f"{d.name}.q_mvar", f"{d.name}.p_avail_mw"]
        return names

    @property
    def signal_names(self) -> list[str]:
        """Names of the values `signals()` returns, in order; stable for the model's lifetime."""
        return list(self._names)

    def signal_values(self, r: StepResult) -> np.ndarray:
        """All published values of a step as one vector, ordered like `signal_names`."""
        pf = r.pf
        der = np.column_stack([r.der_p_mw, r.der_q_mvar, r.der_p_avail_mw]).ravel()
        if not pf.converged:
            der = np.where(np.arange(der.size) % 3 == 2, der, np.nan)  # available power is still known
        scalars = [pf.loss_mw * 1000.0, pf.ext_p_mw, pf.ext_q_mvar, r.load_p_mw, r.load_q_mvar,
                   float(r.der_p_mw.sum()) + r.native_p_mw, float(pf.converged)]
        return np.concatenate([pf.vm_pu, pf.line_loading_pct, pf.line_i_ka, pf.trafo_loading_pct, scalars, der])

    def signals(self, r: StepResult) -> dict[str, float]:
        """All published values of a step by name, e.g. {'bus.18.vm_pu': 0.91, ...}."""
        return dict(zip(self._names, self.signal_values(r).tolist()))
