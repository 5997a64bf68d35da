"""lightsim2grid: a model built once from the pandapower net; each step changes injections and solves."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pandas as pd

from cosim.grid.engines.base import InService, PowerFlowResult, failed_result, line_rating_ka, register, trafo_rating_ka


@register("lightsim2grid")
class LightSimEngine:
    """lightsim2grid model built once from the net; each step changes injections and solves."""

    def __init__(self, net: pp.pandapowerNet, max_iter: int = 20, tol: float = 1e-10):
        self.net = net
        self.model = self._build(net)
        if self.model.total_bus() != len(net.bus):
            raise ValueError("lightsim2grid bus count differs from the pandapower net")
        self.max_iter, self.tol = max_iter, tol
        self.flat = np.ones(len(net.bus), dtype=complex)
        self.v = self.flat.copy()
        self.line_rating = line_rating_ka(net)
        self.trafo_rating = trafo_rating_ka(net)
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

    def restart(self) -> None:
        """Start the next solve from a flat voltage profile."""
        self.v = self.flat.copy()

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
