"""lightsim2grid: a model built once from the pandapower net; each step changes injections and solves.

lightsim2grid's importer ignores switches and starts Newton-Raphson from 1 pu at 0 degrees, which
does not converge on feeders with phase-shifting (Dyn5) transformers such as SimBench's. So the
solver model is built from a copy of the net in which closed bus-bus switches are fused
(pandapower's toolbox), branches behind open switches are out of service and the switches are
gone; results are mapped back to every bus of the net. Newton starts from the angles the
transformers' phase shifts impose along the feeder.
"""

from __future__ import annotations

import copy
import warnings
from collections import deque

import numpy as np
import pandapower as pp
import pandas as pd

from cosim.grid.engines.base import InService, PowerFlowResult, failed_result, line_rating_ka, register, trafo_rating_ka


@register("lightsim2grid")
class LightSimEngine:
    """lightsim2grid model built once from the net; each step changes injections and solves."""

    def __init__(self, net: pp.pandapowerNet, max_iter: int = 20, tol: float = 1e-10):
        self.net = net
        self.solver_net, self.bus_map = solver_net(net)
        self.model = self._build(self.solver_net)
        if self.model.total_bus() != len(self.solver_net.bus):
            raise ValueError("lightsim2grid bus count differs from the pandapower net")
        self.max_iter, self.tol = max_iter, tol
        self.flat = phase_shifted_start(self.solver_net)
        self.v = self.flat.copy()
        self.line_rating = line_rating_ka(net)
        self.trafo_rating = trafo_rating_ka(net)
        self.n_gen = len(net.gen)
        self.load_on = net.load.in_service.to_numpy(bool)
        self.sgen_on = net.sgen.in_service.to_numpy(bool)
        self.status = self._base_status(self.solver_net, len(net.bus))

    @staticmethod
    def _build(net: pp.pandapowerNet):
        from lightsim2grid.network import init_from_pandapower

        with warnings.catch_warnings():  # "no generator tagged as slack": it uses the ext_grid, as wanted
            warnings.simplefilter("ignore")
            return init_from_pandapower(_numeric_limits(net))

    @staticmethod
    def _base_status(solver: pp.pandapowerNet, n_bus: int) -> InService:
        """Element statuses as the solver net states them (what a freshly built model has); buses of the net."""
        return InService(solver.line.in_service.to_numpy(bool), solver.trafo.in_service.to_numpy(bool),
                         np.ones(n_bus, bool), solver.load.in_service.to_numpy(bool),
                         solver.sgen.in_service.to_numpy(bool))

    def restart(self) -> None:
        """Start the next solve from a flat voltage profile."""
        self.v = self.flat.copy()

    def network_changed(self) -> None:
        """Tap or shunt positions changed in the net: rebuild the model from it (taps move rarely),
        then re-apply the statuses of outages and islands."""
        status = self.status
        self.solver_net, self.bus_map = solver_net(self.net)
        self.model = self._build(self.solver_net)
        self.status = self._base_status(self.solver_net, len(self.net.bus))
        self.set_in_service(status)

    def set_in_service(self, status: InService) -> None:
        """(De)activate the elements whose status changed; restart the next solve from a flat start."""
        m, old = self.model, self.status
        for new, was, off, on in ((status.lines, old.lines, m.deactivate_powerline, m.reactivate_powerline),
                                  (status.trafos, old.trafos, m.deactivate_trafo, m.reactivate_trafo),
                                  (self._solver_buses(status.buses), self._solver_buses(old.buses),
                                   m.deactivate_bus, m.reactivate_bus),
                                  (status.loads, old.loads, m.deactivate_load, m.reactivate_load),
                                  (status.sgens, old.sgens, m.deactivate_sgen, m.reactivate_sgen)):
            for i in np.flatnonzero(new != was):
                (on if new[i] else off)(int(i))
        self.status, self.load_on, self.sgen_on = status, status.loads, status.sgens
        self.v = self.flat.copy()

    def _solver_buses(self, live: np.ndarray) -> np.ndarray:
        """A solver bus is live when any bus fused into it is."""
        out = np.zeros(len(self.solver_net.bus), bool)
        np.logical_or.at(out, self.bus_map, live)
        return out

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
        vm = np.abs(v)[self.bus_map]
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


def solver_net(net: pp.pandapowerNet) -> tuple[pp.pandapowerNet, np.ndarray]:
    """A copy of `net` as lightsim2grid's importer reads it right, and per bus position of `net` the bus
    position in the copy: closed bus-bus switches fused, a branch end behind an open switch moved to a bus
    of its own (pandapower's model), switches gone, and HV-side tap positions folded into the rated HV
    voltage (the importer reads them differently from pandapower; the ratio is the same)."""
    fold = _hv_taps(net)
    if not len(net.switch) and not fold.any():
        return net, np.arange(len(net.bus))
    out = copy.deepcopy(net)
    t = out.trafo
    t.loc[fold, "vn_hv_kv"] = (t.vn_hv_kv * (1 + (t.tap_pos - t.tap_neutral) * t.tap_step_percent / 100))[fold]
    t.loc[fold, "tap_pos"] = t.tap_neutral[fold]
    if not len(net.switch):
        return out, np.arange(len(net.bus))
    from pandapower.toolbox import fuse_buses

    sw = out.switch
    closed = sw.closed.astype(bool)
    for et, table, ends in (("l", "line", ("from_bus", "to_bus")), ("t", "trafo", ("hv_bus", "lv_bus"))):
        opened = sw[(sw.et == et) & ~closed]
        for element, at in opened.groupby("element").bus:
            row = out[table].loc[element]
            open_ends = [end for end in ends if row[end] in set(at)]
            if len(open_ends) == len(ends):
                out[table].at[element, "in_service"] = False
                continue
            for end in open_ends:  # as pandapower: the branch stays energised from its other end
                aux = pp.create_bus(out, vn_kv=float(out.bus.vn_kv.at[row[end]]), name=f"open switch of {table} {element}")
                out[table].at[element, end] = aux
    keep = {b: b for b in out.bus.index}

    def root(b: int) -> int:
        while keep[b] != b:
            b = keep[b]
        return b

    for a, b in zip(sw.bus[(sw.et == "b") & closed], sw.element[(sw.et == "b") & closed]):
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            fuse_buses(out, ra, rb)
            keep[rb] = ra
    out.switch.drop(out.switch.index, inplace=True)
    position = {b: i for i, b in enumerate(out.bus.index)}
    return out, np.array([position[root(int(b))] for b in net.bus.index], np.int64)


def _hv_taps(net: pp.pandapowerNet) -> np.ndarray:
    """Transformers with an off-neutral tap on the HV side that only changes the ratio (no phase step)."""
    t = net.trafo
    if not len(t) or "tap_pos" not in t:
        return np.zeros(len(t), bool)
    degree = t.tap_step_degree.fillna(0) if "tap_step_degree" in t else 0.0
    off = (t.tap_pos - t.tap_neutral).fillna(0) != 0
    return (off & (t.tap_side == "hv") & t.tap_step_percent.notna() & (degree == 0)).to_numpy(bool)


def phase_shifted_start(net: pp.pandapowerNet) -> np.ndarray:
    """1 pu at every bus, at the angle the slack and the transformers' phase shifts give it (a start
    Newton-Raphson converges from on Dyn5 transformers); buses out of reach at 0 degrees."""
    pos = pd.Index(net.bus.index)
    va = np.full(len(pos), np.nan)
    slack = pos.get_loc(net.ext_grid.bus.iloc[0])
    va[slack] = np.deg2rad(float(net.ext_grid.va_degree.iloc[0]))
    neighbours: list[list[tuple[int, float]]] = [[] for _ in range(len(pos))]
    for f, t in zip(pos.get_indexer(net.line.from_bus), pos.get_indexer(net.line.to_bus)):
        neighbours[f].append((t, 0.0))
        neighbours[t].append((f, 0.0))
    shift = np.deg2rad(net.trafo.shift_degree.fillna(0.0).to_numpy(float)) if "shift_degree" in net.trafo else \
        np.zeros(len(net.trafo))
    for h, lv, s in zip(pos.get_indexer(net.trafo.hv_bus), pos.get_indexer(net.trafo.lv_bus), shift):
        neighbours[h].append((lv, -s))
        neighbours[lv].append((h, s))
    queue = deque([slack])
    while queue:
        i = queue.popleft()
        for j, d in neighbours[i]:
            if np.isnan(va[j]):
                va[j] = va[i] + d
                queue.append(j)
    return np.exp(1j * np.nan_to_num(va))


def _numeric_limits(net: pp.pandapowerNet) -> pp.pandapowerNet:
    """Coerce object-typed limit columns (as in SimBench nets) to float for lightsim2grid."""
    for table in ("sgen", "gen", "load", "storage", "ext_grid"):
        for col in ("min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"):
            if col in net[table]:
                net[table][col] = pd.to_numeric(net[table][col], errors="coerce").astype(float)
    return net
