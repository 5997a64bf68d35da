"""Power-flow engines over one pandapower net: lightsim2grid (fast) and pandapower runpp (reference).

Both take the injections of every load and static generator and return the same result
arrays, ordered like the net's tables, so callers never see which engine ran.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pandapower as pp

SQRT3 = np.sqrt(3.0)


@dataclass
class PowerFlowResult:
    """One solved (or failed) operating point; NaN everywhere when not converged."""

    converged: bool
    vm_pu: np.ndarray
    line_i_ka: np.ndarray
    line_loading_pct: np.ndarray
    trafo_loading_pct: np.ndarray
    loss_mw: float
    ext_p_mw: float
    ext_q_mvar: float
    line_p_mw: np.ndarray  # active power entering each line at its from bus
    line_q_mvar: np.ndarray


@dataclass(frozen=True)
class InService:
    """Which elements take part in the power flow (outages and de-energised islands removed)."""

    lines: np.ndarray
    trafos: np.ndarray
    buses: np.ndarray
    loads: np.ndarray
    sgens: np.ndarray


class Engine(Protocol):
    """What the grid model needs from a power-flow engine."""

    name: str

    def solve(self, load_p: np.ndarray, load_q: np.ndarray, sgen_p: np.ndarray, sgen_q: np.ndarray) -> PowerFlowResult: ...

    def network_changed(self) -> None: ...

    def set_in_service(self, status: InService) -> None: ...


def failed_result(net: pp.pandapowerNet) -> PowerFlowResult:
    """The result of a power flow that did not converge: NaN values, flag down."""
    nan = np.nan
    lines = np.full(len(net.line), nan)
    return PowerFlowResult(False, np.full(len(net.bus), nan), lines, lines.copy(), np.full(len(net.trafo), nan),
                           nan, nan, nan, lines.copy(), lines.copy())


def _line_rating_ka(net: pp.pandapowerNet) -> np.ndarray:
    return (net.line.max_i_ka * net.line.df * net.line.parallel).to_numpy(float)


def _trafo_rating_ka(net: pp.pandapowerNet) -> np.ndarray:
    return (net.trafo.sn_mva / (SQRT3 * net.trafo.vn_hv_kv) * net.trafo.parallel).to_numpy(float)


class PandapowerEngine:
    """pandapower Newton-Raphson: slow, the reference and the fallback."""

    name = "pandapower"

    def __init__(self, net: pp.pandapowerNet):
        self.net = net
        self._init = "auto"
        self._numba = len(net.bus) > 500  # JIT compile time only pays off on large feeders
        self._lines_on: np.ndarray | None = None  # set once a topology change took lines out

    def set_in_service(self, status: InService) -> None:
        """Write the element statuses into the net; pandapower drops isolated buses itself."""
        net = self.net
        net.line["in_service"] = status.lines
        net.trafo["in_service"] = status.trafos
        net.bus["in_service"] = status.buses
        net.load["in_service"] = status.loads
        net.sgen["in_service"] = status.sgens
        self._lines_on = status.lines
        self._init = "auto"

    def network_changed(self) -> None:
        """Tap or shunt positions changed in the net: runpp reads them from the net on the next solve."""

    def solve(self, load_p, load_q, sgen_p, sgen_q) -> PowerFlowResult:
        net = self.net
        net.load["p_mw"] = load_p
        net.load["q_mvar"] = load_q
        net.sgen["p_mw"] = sgen_p
        net.sgen["q_mvar"] = sgen_q
        try:
            pp.runpp(net, init=self._init, numba=self._numba)
        except pp.LoadflowNotConverged:
            self._init = "auto"
            return failed_result(net)
        self._init = "results"
        ext = net.res_ext_grid
        line = net.res_line[["i_ka", "loading_percent", "p_from_mw", "q_from_mvar"]].to_numpy(float)
        if self._lines_on is not None:  # lines out of service or in a dead island carry nothing
            line[~self._lines_on] = 0.0
        return PowerFlowResult(
            converged=True,
            vm_pu=net.res_bus.vm_pu.to_numpy(float),
            line_i_ka=line[:, 0],
            line_loading_pct=line[:, 1],
            trafo_loading_pct=np.nan_to_num(net.res_trafo.loading_percent.to_numpy(float)),
            loss_mw=float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()),
            ext_p_mw=float(ext.p_mw.sum()),
            ext_q_mvar=float(ext.q_mvar.sum()),
            line_p_mw=line[:, 2],
            line_q_mvar=line[:, 3],
        )


class LightSimEngine:
    """lightsim2grid model built once from the net; each step changes injections and solves."""

    name = "lightsim2grid"

    def __init__(self, net: pp.pandapowerNet, max_iter: int = 20, tol: float = 1e-10):
        self.net = net
        self.model = self._build(net)
        if self.model.total_bus() != len(net.bus):
            raise ValueError("lightsim2grid bus count differs from the pandapower net")
        self.max_iter, self.tol = max_iter, tol
        self.flat = np.ones(len(net.bus), dtype=complex)
        self.v = self.flat.copy()
        self.line_rating = _line_rating_ka(net)
        self.trafo_rating = _trafo_rating_ka(net)
        self.n_gen = len(net.gen)
        self.load_on = net.load.in_service.to_numpy(bool)
        self.sgen_on = net.sgen.in_service.to_numpy(bool)
        self.status = self._base_status(net)

    @staticmethod
    def _build(net: pp.pandapowerNet):
        from lightsim2grid.network import init_from_pandapower

        with warnings.catch_warnings():  # "no generator tagged as slack": it uses the ext_grid, as wanted
            warnings.simplefilter("ignore")
            return init_from_pandapower(_numeric_limits(net))

    @staticmethod
    def _base_status(net: pp.pandapowerNet) -> InService:
        """Element statuses as the net states them (what a freshly built model has)."""
        return InService(net.line.in_service.to_numpy(bool), net.trafo.in_service.to_numpy(bool),
                         np.ones(len(net.bus), bool), net.load.in_service.to_numpy(bool),
                         net.sgen.in_service.to_numpy(bool))

    def network_changed(self) -> None:
        """Tap or shunt positions changed in the net: rebuild the model from it (taps move rarely),
        then re-apply the statuses of outages and islands."""
        status = self.status
        self.model = self._build(self.net)
        self.status = self._base_status(self.net)
        self.set_in_service(status)

    def set_in_service(self, status: InService) -> None:
        """(De)activate the elements whose status changed; restart the next solve from a flat start."""
        m, old = self.model, self.status
        for new, was, off, on in ((status.lines, old.lines, m.deactivate_powerline, m.reactivate_powerline),
                                  (status.trafos, old.trafos, m.deactivate_trafo, m.reactivate_trafo),
                                  (status.buses, old.buses, m.deactivate_bus, m.reactivate_bus),
                                  (status.loads, old.loads, m.deactivate_load, m.reactivate_load),
                                  (status.sgens, old.sgens, m.deactivate_sgen, m.reactivate_sgen)):
            for i in np.flatnonzero(new != was):
                (on if new[i] else off)(int(i))
        self.status, self.load_on, self.sgen_on = status, status.loads, status.sgens
        self.v = self.flat.copy()

    def solve(self, load_p, load_q, sgen_p, sgen_q) -> PowerFlowResult:
        m = self.model
        m.update_loads_p(self.load_on, np.asarray(load_p, np.float32))  # vectorised, masked by in-service
        m.update_loads_q(self.load_on, np.asarray(load_q, np.float32))
        m.update_sgens_p(self.sgen_on, np.asarray(sgen_p, np.float32))
        for i in np.flatnonzero(self.sgen_on):  # no vectorised sgen Q update in lightsim2grid
            m.change_q_sgen(int(i), float(sgen_q[i]))
        v = m.ac_pf(self.v, self.max_iter, self.tol)
        if v.shape[0] == 0:  # diverged from the last solution: retry once from a flat start
            v = m.ac_pf(self.flat, self.max_iter, self.tol)
        if v.shape[0] == 0:
            self.v = self.flat.copy()
            return failed_result(self.net)
        self.v = v
        vm = np.abs(v)
        vm[(vm == 0) | ~self.status.buses] = np.nan  # de-energised buses
        p1, q1, _, a1 = m.get_line_res1()
        p2, q2, _, a2 = m.get_line_res2()
        tp1, tq1, _, ta1 = m.get_trafo_res1()
        tp2, _, _, _ = m.get_trafo_res2()
        i_ka = np.maximum(a1, a2)
        gp, gq, _ = m.get_gen_res()
        return PowerFlowResult(
            converged=True,
            vm_pu=vm,
            line_i_ka=i_ka,
            line_loading_pct=i_ka / self.line_rating * 100.0,
            trafo_loading_pct=ta1 / self.trafo_rating * 100.0,
            loss_mw=float(p1.sum() + p2.sum() + tp1.sum() + tp2.sum()),
            ext_p_mw=float(gp[self.n_gen:].sum()),
            ext_q_mvar=float(gq[self.n_gen:].sum()),
            line_p_mw=p1,
            line_q_mvar=q1,
        )


def _numeric_limits(net: pp.pandapowerNet) -> pp.pandapowerNet:
    """Coerce object-typed limit columns (as in SimBench nets) to float for lightsim2grid."""
    for table in ("sgen", "gen", "load", "storage", "ext_grid"):
        for col in ("min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"):
            if col in net[table]:
                net[table][col] = pd.to_numeric(net[table][col], errors="coerce").astype(float)
    return net


def compare(a: PowerFlowResult, b: PowerFlowResult) -> tuple[float, float]:
    """Largest voltage difference (pu) and loss difference (kW) between two results."""
    dv = float(np.nanmax(np.abs(a.vm_pu - b.vm_pu))) if a.converged and b.converged else np.inf
    return dv, abs(a.loss_mw - b.loss_mw) * 1000.0


def build_engine(net: pp.pandapowerNet, preferred: str, probe: tuple[np.ndarray, ...]) -> tuple[Engine, str]:
    """Build the preferred engine; fall back to pandapower when lightsim2grid cannot reproduce it.

    The probe injections are solved by both engines once; a lightsim2grid model that fails to
    build, does not converge or disagrees (> 1e-6 pu or 1e-3 kW) is not used. Returns the engine
    and a note saying why a fallback happened ('' if none).
    """
    reference = PandapowerEngine(net)
    if preferred == "pandapower":
        return reference, ""
    ref = reference.solve(*probe)
    try:
        fast = LightSimEngine(net)
        got = fast.solve(*probe)
    except Exception as exc:  # lightsim2grid rejects some element types
        return reference, f"lightsim2grid could not build this feeder ({exc}); using pandapower"
    if ref.converged and not got.converged:
        return reference, "lightsim2grid does not converge on this feeder where pandapower does; using pandapower"
    dv, dloss = compare(got, ref)
    if ref.converged and (dv > 1e-6 or dloss > 1e-3):
        return reference, f"lightsim2grid disagrees with pandapower (dV {dv:.2e} pu, dloss {dloss:.2e} kW); using pandapower"
    return fast, ""
