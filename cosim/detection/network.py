"""The grid as state estimation sees it: admittances per topology, meters, h(x) and its Jacobian H.

Built once from the feeder through pandapower's internal (ppc) model, so the estimator uses the
same per-unit data as the power flow. States are the voltage angles of the energised buses
except the slack, then the voltage magnitudes of the energised buses. Measured values and
noise are in signal units (pu for voltages, MW / Mvar for powers), never per unit of power.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandapower as pp
from pandapower.pypower.idx_brch import BR_STATUS, F_BUS, T_BUS
from pandapower.pypower.makeYbus import makeYbus
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cosim.grid.feeders import Feeder
from cosim.scenario.schema import Detector

VM, P, Q, PF, QF = range(5)
MAX_BUSES = 2000  # dense matrices: beyond this the estimator needs sparse algebra
# meter family (schema key) -> (kind code, signal name pattern, on buses?)
FAMILIES = {"vm_pu": (VM, "bus.{}.vm_pu", True), "p_mw": (P, "bus.{}.p_mw", True),
            "q_mvar": (Q, "bus.{}.q_mvar", True), "line_p_mw": (PF, "line.{}.p_mw", False),
            "line_q_mvar": (QF, "line.{}.q_mvar", False)}


@dataclass(frozen=True)
class Meter:
    """One planned meter: its signal name, kind code, published bus / line number and noise."""

    name: str
    kind: int
    label: int
    on_bus: bool
    sigma: float


def meter_plan(families: dict[str, tuple[float, list[int] | None]], buses: list[int], lines: list[int]) -> list[Meter]:
    """The meters of each family `name -> (sigma, published numbers or None for all)`, in family order."""
    plan = []
    for family, (sigma, where) in families.items():
        code, pattern, on_bus = FAMILIES[family]
        for label in (buses if on_bus else lines) if where is None else where:
            plan.append(Meter(pattern.format(label), code, label, on_bus, sigma))
    return plan


def plan_for(detector: Detector, feeder: Feeder) -> list[Meter]:
    """The meters a detector block asks for on `feeder`."""
    families = {name: (cfg.sigma, None if cfg.at == "all" else list(cfg.at))
                for name in FAMILIES if (cfg := getattr(detector.measurements, name)) is not None}
    return meter_plan(families, feeder.bus_labels.tolist(), feeder.line_labels.tolist())


@dataclass(frozen=True)
class Topology:
    """Admittance matrices and state layout of one set of outages (dense: feeders of up to a few 1,000 buses)."""

    Y: np.ndarray
    Yf: np.ndarray
    f: np.ndarray
    live_bus: np.ndarray
    live_branch: np.ndarray
    theta: np.ndarray  # bus rows whose angle is a state
    vm: np.ndarray  # bus rows whose magnitude is a state

    @property
    def n_states(self) -> int:
        return len(self.theta) + len(self.vm)


@dataclass(frozen=True)
class Meters:
    """The measurement set: signal name, kind, bus or branch row and noise standard deviation per meter."""

    names: tuple[str, ...]
    kind: np.ndarray
    row: np.ndarray
    sigma: np.ndarray


class Network:
    """Per-unit bus and branch data of a feeder with its published numbering mapped to ppc rows."""

    def __init__(self, feeder: Feeder):
        net = copy.deepcopy(feeder.net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # builds the internal model; the solution itself is not used
                pp.runpp(net, numba=False)
            except pp.LoadflowNotConverged:
                pass
        ppc, look = net._ppc, net._pd2ppc_lookups
        self.base_mva = float(ppc["baseMVA"])
        self.bus, self.branch = ppc["bus"].copy(), ppc["branch"].copy()
        self.bus_row = {int(label): int(look["bus"][i]) for label, i in zip(feeder.bus_labels, net.bus.index)}
        self.line_row = self._branch_rows(look, "line", feeder.line_labels)
        self.trafo_row = self._branch_rows(look, "trafo", feeder.trafo_labels)
        self.slack = int(look["bus"][net.ext_grid.bus.iloc[0]])
        self.f = self.branch[:, F_BUS].real.astype(int)
        self.t = self.branch[:, T_BUS].real.astype(int)
        self.base_status = self.branch[:, BR_STATUS].real > 0
        self._topologies: dict[tuple, Topology] = {}

    @staticmethod
    def _branch_rows(look: dict, table: str, labels: np.ndarray) -> dict[int, int]:
        start = look["branch"].get(table, (0, 0))[0]
        return {int(label): start + i for i, label in enumerate(labels)}

    def topology(self, lines_out: frozenset[int] = frozenset(), trafos_out: frozenset[int] = frozenset()) -> Topology:
        """Admittances and energised buses with the given lines / trafos (published numbers) out (cached)."""
        key = (lines_out, trafos_out)
        if key not in self._topologies:
            self._topologies[key] = self._build_topology(lines_out, trafos_out)
        return self._topologies[key]

    def _build_topology(self, lines_out: frozenset[int], trafos_out: frozenset[int]) -> Topology:
        status = self.base_status.copy()
        status[[self.line_row[k] for k in lines_out] + [self.trafo_row[k] for k in trafos_out]] = False
        branch = self.branch.copy()
        branch[:, BR_STATUS] = status
        Y, Yf, _ = makeYbus(self.base_mva, self.bus, branch)
        nb = len(self.bus)
        graph = coo_matrix((np.ones(int(status.sum())), (self.f[status], self.t[status])), shape=(nb, nb))
        _, comp = connected_components(graph, directed=False)
        live = comp == comp[self.slack]
        rows = np.flatnonzero(live)
        return Topology(Y=Y.toarray(), Yf=Yf.toarray(), f=self.f, live_bus=live,
                        live_branch=status & live[self.f] & live[self.t],
                        theta=rows[rows != self.slack], vm=rows)

    def meters(self, plan: list[Meter]) -> Meters:
        """The planned meters on this model's rows.

        A bus injection is metered only where one published bus is one ppc bus (buses joined by
        closed bus-bus switches share their injection, which no single meter sees).
        """
        shared = {row for row, n in Counter(self.bus_row.values()).items() if n > 1}
        kept = [(m, (self.bus_row if m.on_bus else self.line_row)[m.label]) for m in plan]
        kept = [(m, row) for m, row in kept if not (m.kind in (P, Q) and row in shared)]
        return Meters(tuple(m.name for m, _ in kept), np.array([m.kind for m, _ in kept], int),
                      np.array([row for _, row in kept], int), np.array([m.sigma for m, _ in kept], float))

    def measure(self, topo: Topology, V: np.ndarray, meters: Meters) -> tuple[np.ndarray, np.ndarray]:
        """h(V) in signal units for every meter and its Jacobian over the states (angles, then magnitudes)."""
        Y, Yf, f = topo.Y, topo.Yf, topo.f
        vm = np.abs(V)
        unit = np.divide(V, vm, out=np.zeros_like(V), where=vm > 0)
        ibus = Y @ V
        s_bus = V * np.conj(ibus)
        ds_dvm = V[:, None] * np.conj(Y * unit[None, :]) + np.diag(np.conj(ibus) * unit)
        ds_dva = 1j * V[:, None] * np.conj(np.diag(ibus) - Y * V[None, :])
        i_f = Yf @ V
        s_f = V[f] * np.conj(i_f)
        cf = np.zeros(Yf.shape)  # branch-from-bus incidence
        cf[np.arange(len(f)), f] = 1.0
        dsf_dva = 1j * (np.conj(i_f)[:, None] * cf * V[None, :] - V[f][:, None] * np.conj(Yf * V[None, :]))
        dsf_dvm = np.conj(i_f)[:, None] * cf * unit[None, :] + V[f][:, None] * np.conj(Yf * unit[None, :])
        k, r, base = meters.kind, meters.row, self.base_mva
        h = np.empty(len(k))
        H = np.zeros((len(k), topo.n_states))
        nt = len(topo.theta)
        for code, values, d_va, d_vm in ((P, s_bus.real, ds_dva.real, ds_dvm.real),
                                         (Q, s_bus.imag, ds_dva.imag, ds_dvm.imag),
                                         (PF, s_f.real, dsf_dva.real, dsf_dvm.real),
                                         (QF, s_f.imag, dsf_dva.imag, dsf_dvm.imag)):
            sel = k == code
            h[sel] = values[r[sel]] * base
            H[np.ix_(sel, np.arange(nt))] = d_va[np.ix_(r[sel], topo.theta)] * base
            H[np.ix_(sel, nt + np.arange(len(topo.vm)))] = d_vm[np.ix_(r[sel], topo.vm)] * base
        sel = k == VM
        h[sel] = vm[r[sel]]
        position = np.full(len(V), -1)
        position[topo.vm] = np.arange(len(topo.vm))
        cols = position[r[sel]]
        H[np.flatnonzero(sel)[cols >= 0], nt + cols[cols >= 0]] = 1.0
        return h, H

    def usable(self, topo: Topology, meters: Meters) -> np.ndarray:
        """Meters that observe energised parts: buses that are live, branches in service with live ends."""
        on_bus = np.isin(meters.kind, (VM, P, Q))
        ok = np.zeros(len(meters.kind), bool)
        ok[on_bus] = topo.live_bus[meters.row[on_bus]]
        ok[~on_bus] = topo.live_branch[meters.row[~on_bus]]
        return ok

    def flat_start(self, topo: Topology) -> np.ndarray:
        """1 pu at angle 0 on energised buses, 0 elsewhere."""
        return topo.live_bus.astype(complex)

    def with_states(self, topo: Topology, V: np.ndarray, dx: np.ndarray) -> np.ndarray:
        """V moved by a state increment (angles, then magnitudes)."""
        nt = len(topo.theta)
        va, vm = np.angle(V), np.abs(V)
        va[topo.theta] += dx[:nt]
        vm[topo.vm] += dx[nt:]
        return vm * np.exp(1j * va)

    def shifted_state(self, topo: Topology, V: np.ndarray, delta_mw: np.ndarray, delta_mvar: np.ndarray,
                      iterations: int = 6) -> np.ndarray:
        """The voltages at which the energised buses inject `delta` (MW / Mvar per bus row) more than at V.

        A Newton power flow with every energised bus but the slack as a PQ bus; the result is a
        valid operating point, so measurements of it are consistent with the grid model.
        """
        target = V * np.conj(topo.Y @ V) + (delta_mw + 1j * delta_mvar) / self.base_mva
        pq = topo.theta
        meters = Meters((), np.r_[np.full(len(pq), P), np.full(len(pq), Q)], np.r_[pq, pq], np.ones(2 * len(pq)))
        cols = np.r_[np.arange(len(pq)), len(pq) + np.searchsorted(topo.vm, pq)]  # all states but the slack's |V|
        x = V.copy()
        for _ in range(iterations):
            h, H = self.measure(topo, x, meters)
            mismatch = np.r_[target[pq].real, target[pq].imag] * self.base_mva - h
            if np.max(np.abs(mismatch)) < 1e-10:
                break
            dx = np.zeros(topo.n_states)
            dx[cols] = np.linalg.solve(H[:, cols], mismatch)
            x = self.with_states(topo, x, dx)
        return x
