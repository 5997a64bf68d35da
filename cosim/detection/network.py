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
from pandapower.pypower.idx_brch import BR_STATUS, F_BUS, SHIFT, T_BUS
from pandapower.pypower.makeYbus import makeYbus
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components
from scipy.sparse.linalg import spsolve

from cosim.grid.feeders import Feeder
from cosim.scenario.metering import RunMetering
from cosim.scenario.schema import Detector

VM, P, Q, PF, QF = range(5)
# meter family (schema key) -> (kind code, signal name pattern, on buses?)
FAMILIES = {"vm_pu": (VM, "bus.{}.vm_pu", True), "p_mw": (P, "bus.{}.p_mw", True),
            "q_mvar": (Q, "bus.{}.q_mvar", True), "line_p_mw": (PF, "line.{}.p_mw", False),
            "line_q_mvar": (QF, "line.{}.q_mvar", False)}


@dataclass(frozen=True)
class Meter:
    """One planned meter: its signal name, kind code, published bus / line number, the standard deviation
    state estimation assumes and the one the channel draws (`noise`, default the same)."""

    name: str
    kind: int
    label: int
    on_bus: bool
    sigma: float
    noise: float | None = None

    @property
    def drawn(self) -> float:
        """The channel's noise standard deviation."""
        return self.sigma if self.noise is None else self.noise


def meter_plan(families: dict[str, tuple[float, list[int] | None]], buses: list[int], lines: list[int]) -> list[Meter]:
    """The meters of each family `name -> (sigma, published numbers or None for all)`, in family order."""
    plan = []
    for family, (sigma, where) in families.items():
        code, pattern, on_bus = FAMILIES[family]
        for label in (buses if on_bus else lines) if where is None else where:
            plan.append(Meter(pattern.format(label), code, label, on_bus, sigma))
    return plan


def plan_for(detector: Detector, feeder: Feeder) -> list[Meter]:
    """The meters a detector block asks for on `feeder` (the scenario's `metering:` block when it has one)."""
    if detector.run_metering is not None:
        return metering_plan(detector.run_metering, feeder)
    families = {name: (cfg.sigma, None if cfg.at == "all" else list(cfg.at))
                for name in FAMILIES if (cfg := getattr(detector.measurements, name)) is not None}
    return meter_plan(families, feeder.bus_labels.tolist(), feeder.line_labels.tolist())


def slack_label(feeder: Feeder) -> int:
    """Published number of the substation (slack) bus."""
    net = feeder.net
    return int(feeder.bus_labels[net.bus.index.get_loc(net.ext_grid.bus.iloc[0])])


def feeder_ends(feeder: Feeder) -> list[int]:
    """Published numbers of the buses at the end of a lateral: one in-service line or trafo, not the substation."""
    net = feeder.net
    ends = [net.line.from_bus[net.line.in_service], net.line.to_bus[net.line.in_service],
            net.trafo.hv_bus[net.trafo.in_service], net.trafo.lv_bus[net.trafo.in_service]]
    degree = Counter(int(b) for side in ends for b in side)
    label = dict(zip(net.bus.index, feeder.bus_labels.tolist()))
    slack = slack_label(feeder)
    return sorted(label[b] for b, n in degree.items() if n == 1 and label[b] != slack)


def places(where: str | list, numbers: list[int], feeder: Feeder) -> list[int]:
    """A placement (`all`, or bus / line numbers with `substation` and `ends`) as published numbers, in order."""
    if where == "all":
        return list(numbers)
    out: dict[int, None] = {}
    for p in where:
        out.update(dict.fromkeys([slack_label(feeder)] if p == "substation" else feeder_ends(feeder) if p == "ends"
                                 else [p]))
    return list(out)


def nominal_power(run: RunMetering, feeder: Feeder) -> dict[int, tuple[float, float]]:
    """Bus -> (MW, Mvar) a pseudo-measurement's error is relative to: nominal loads times the scale, plus the
    generators' nameplate P and reactive capability."""
    net = feeder.net
    label = dict(zip(net.bus.index, feeder.bus_labels.tolist()))
    base = {b: [0.0, 0.0] for b in feeder.bus_labels.tolist()}
    for bus, p, q in zip(net.load.bus, net.load.p_mw, net.load.q_mvar):
        base[label[bus]][0] += abs(float(p)) * run.load_scale
        base[label[bus]][1] += abs(float(q)) * run.load_scale
    for bus, p, q in run.generators:
        base[bus][0] += p
        base[bus][1] += q
    return {b: (p, q) for b, (p, q) in base.items()}


def metering_plan(run: RunMetering, feeder: Feeder) -> list[Meter]:
    """The meters of a `metering:` block: real voltage, injection and flow meters, then the pseudo-measurements
    (P and Q at every bus but the substation without a real injection meter; zero-injection buses included)."""
    m = run.metering
    buses, lines = feeder.bus_labels.tolist(), feeder.line_labels.tolist()
    plan = [Meter(f"bus.{b}.vm_pu", VM, b, True, m.sigma.voltage, m.noise_of("voltage"))
            for b in places(m.voltage, buses, feeder)]
    injections = places(m.injections, buses, feeder)
    for code, unit in ((P, "p_mw"), (Q, "q_mvar")):
        plan += [Meter(f"bus.{b}.{unit}", code, b, True, m.sigma.injection, m.noise_of("injection"))
                 for b in injections]
    for code, unit in ((PF, "p_mw"), (QF, "q_mvar")):
        plan += [Meter(f"line.{k}.{unit}", code, k, False, m.sigma.flow, m.noise_of("flow"))
                 for k in places(m.flows, lines, feeder)]
    if m.pseudo_loads is not None:
        base, slack = nominal_power(run, feeder), slack_label(feeder)
        error, drawn = m.pseudo_loads.error, m.noise_of("pseudo")
        for code, unit, i in ((P, "p_mw", 0), (Q, "q_mvar", 1)):
            plan += [Meter(f"bus.{b}.{unit}", code, b, True, max(error * base[b][i], m.sigma.injection),
                           drawn * base[b][i]) for b in buses if b != slack and b not in injections]
    return plan


@dataclass(frozen=True)
class Topology:
    """Admittance matrices (sparse) and state layout of one set of outages."""

    Y: sp.csr_matrix
    Yf: sp.csr_matrix
    f: np.ndarray
    live_bus: np.ndarray
    live_branch: np.ndarray
    theta: np.ndarray  # bus rows whose angle is a state
    vm: np.ndarray  # bus rows whose magnitude is a state
    shift: np.ndarray  # angle (rad) of each bus row from the transformers' phase shifts on its way to the slack
    bus_entries: "Entries"  # of Y, for the injections' Jacobian
    branch_entries: "Entries"  # of Yf, for the flows' Jacobian

    @property
    def n_states(self) -> int:
        return len(self.theta) + len(self.vm)


@dataclass(frozen=True)
class Entries:
    """The stored entries of an admittance matrix plus one extra term per row (the derivative of the row's own
    current or voltage factor), grouped by row: the pattern of that row's Jacobian."""

    indptr: np.ndarray
    col: np.ndarray  # bus row the entry differentiates by
    y: np.ndarray  # admittance (0 for the extra term)
    extra: np.ndarray  # True for the extra term, at bus `col`

    @staticmethod
    def of(A: sp.csr_matrix, own: np.ndarray) -> "Entries":
        """Entries of A (rows: buses or branches) and the extra term at bus own[row] of each row."""
        coo = A.tocoo()
        rows = np.r_[coo.row, np.arange(A.shape[0])]
        order = np.argsort(rows, kind="stable")
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=A.shape[0]))]
        return Entries(indptr, np.r_[coo.col, own][order], np.r_[coo.data, np.zeros(A.shape[0])][order],
                       np.r_[np.zeros(coo.nnz, bool), np.ones(A.shape[0], bool)][order])

    def rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in `rows`, entry index) of every entry of those rows."""
        counts = self.indptr[rows + 1] - self.indptr[rows]
        owner = np.repeat(np.arange(len(rows)), counts)
        first = np.repeat(self.indptr[rows] - (np.cumsum(counts) - counts), counts)
        return owner, first + np.arange(counts.sum())


@dataclass(frozen=True)
class Meters:
    """The measurement set: signal name, kind, bus or branch row, the noise standard deviation state estimation
    assumes (`sigma`) and the one the channel draws (`noise`) per meter."""

    names: tuple[str, ...]
    kind: np.ndarray
    row: np.ndarray
    sigma: np.ndarray
    noise: np.ndarray


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
        self.injection_bus = self._injection_buses(feeder)
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
        graph = sp.coo_matrix((np.ones(int(status.sum())), (self.f[status], self.t[status])), shape=(nb, nb))
        _, comp = connected_components(graph, directed=False)
        live = comp == comp[self.slack]
        rows = np.flatnonzero(live)
        Y, Yf = sp.csr_matrix(Y), sp.csr_matrix(Yf)
        return Topology(Y=Y, Yf=Yf, f=self.f, live_bus=live, live_branch=status & live[self.f] & live[self.t],
                        theta=rows[rows != self.slack], vm=rows, shift=self._shift_angles(status),
                        bus_entries=Entries.of(Y, np.arange(nb)), branch_entries=Entries.of(Yf, self.f))

    def _shift_angles(self, status: np.ndarray) -> np.ndarray:
        """Bus angles that only the phase shifts set (0 without shifting transformers, e.g. -150 degrees behind
        a Dyn5 MV/LV transformer): theta_t = theta_f - shift along a spanning tree from the slack."""
        shift = np.deg2rad(self.branch[status, SHIFT].real)
        f, t = self.f[status], self.t[status]
        step = dict(zip(zip(t, f), shift)) | dict(zip(zip(f, t), -shift))  # parallel branches shift alike
        nb = len(self.bus)
        graph = sp.coo_matrix((np.ones(len(f)), (f, t)), shape=(nb, nb))
        order, parent = breadth_first_order(graph, self.slack, directed=False)
        angle = np.zeros(nb)
        for node in order[1:]:
            angle[node] = angle[parent[node]] + step[parent[node], node]
        return angle

    def meters(self, plan: list[Meter]) -> Meters:
        """The planned meters on this model's rows.

        Buses joined by closed bus-bus switches are one ppc bus: its injection is the sum of theirs.
        It is metered by the one of them that carries the feeder's loads, generators and external
        grid there (`injection_bus`); the others' injection meters are dropped. Where several of
        them carry elements no single meter sees the injection, and all are dropped.
        """
        kept = [(m, (self.bus_row if m.on_bus else self.line_row)[m.label]) for m in plan]
        kept = [(m, row) for m, row in kept
                if not (m.kind in (P, Q) and self.injection_bus.get(row, m.label) != m.label)]
        return Meters(tuple(m.name for m, _ in kept), np.array([m.kind for m, _ in kept], int),
                      np.array([row for _, row in kept], int), np.array([m.sigma for m, _ in kept], float),
                      np.array([m.drawn for m, _ in kept], float))

    def _injection_buses(self, feeder: Feeder) -> dict[int, int | None]:
        """Shared ppc row -> the published bus whose injection meter reads the row's (None: no single one)."""
        net = feeder.net
        label = dict(zip(net.bus.index, feeder.bus_labels.tolist()))
        holders = {label[b] for table in ("load", "sgen", "gen", "ext_grid", "storage", "shunt", "ward", "xward")
                   if table in net and len(net[table]) for b in net[table].bus}
        groups: dict[int, list[int]] = {}
        for b, row in self.bus_row.items():
            groups.setdefault(row, []).append(b)
        out: dict[int, int | None] = {}
        for row, buses in groups.items():
            if len(buses) > 1:
                carrying = [b for b in sorted(buses) if b in holders]
                out[row] = carrying[0] if len(carrying) == 1 else None if carrying else min(buses)
        return out

    def unmetered_injections(self) -> dict[int, int | None]:
        """Published bus -> the bus whose meter reads its injection with it, for buses whose own injection meter
        is dropped (closed bus-bus switches join them to others; None: no meter reads it)."""
        return {b: self.injection_bus[row] for b, row in self.bus_row.items()
                if row in self.injection_bus and self.injection_bus[row] != b}

    def measure(self, topo: Topology, V: np.ndarray, meters: Meters) -> tuple[np.ndarray, sp.csr_matrix]:
        """h(V) in signal units for every meter and its sparse Jacobian over the states (angles, then magnitudes).

        Per entry (i, k, y) of Y: dS_i/dVm_k = V_i conj(y u_k), dS_i/dVa_k = -j V_i conj(y V_k), plus
        conj(I_i) u_i and j V_i conj(I_i) at k = i (u = V / |V|); the same on Yf for the from-end flows,
        with the extra term at the branch's from bus.
        """
        vm = np.abs(V)
        unit = np.divide(V, vm, out=np.zeros_like(V), where=vm > 0)
        ibus, i_f = topo.Y @ V, topo.Yf @ V
        nb, nt = len(V), len(topo.theta)
        col_va, col_vm = np.full(nb, -1), np.full(nb, -1)
        col_va[topo.theta] = np.arange(nt)
        col_vm[topo.vm] = nt + np.arange(len(topo.vm))
        k, r, base = meters.kind, meters.row, self.base_mva
        h = np.empty(len(k))
        rows, cols, vals = [], [], []
        for codes, e, at, current in (((P, Q), topo.bus_entries, np.arange(nb), ibus),
                                      ((PF, QF), topo.branch_entries, topo.f, i_f)):
            sel = np.flatnonzero(np.isin(k, codes))
            owner, idx = e.rows(r[sel])
            at_row = at[r[sel]][owner]  # the bus whose voltage multiplies the row's current
            vi, ci, kk, y = V[at_row], np.conj(current[r[sel]][owner]), e.col[idx], e.y[idx]
            d_vm = np.where(e.extra[idx], ci * unit[kk], vi * np.conj(y * unit[kk]))
            d_va = np.where(e.extra[idx], 1j * vi * ci, -1j * vi * np.conj(y * V[kk]))
            s = V[at[r[sel]]] * np.conj(current[r[sel]])
            real = k[sel] == codes[0]
            h[sel] = np.where(real, s.real, s.imag) * base
            part = real[owner]
            for d, col in ((d_va, col_va[kk]), (d_vm, col_vm[kk])):
                rows.append(sel[owner])
                cols.append(col)
                vals.append(np.where(part, d.real, d.imag) * base)
        sel = np.flatnonzero(k == VM)
        h[sel] = vm[r[sel]]
        rows.append(sel)
        cols.append(col_vm[r[sel]])
        vals.append(np.ones(len(sel)))
        rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        keep = (cols >= 0) & (vals != 0)  # states only; terms that vanish at this state are no coupling
        H = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(len(k), topo.n_states))
        return h, H

    def usable(self, topo: Topology, meters: Meters) -> np.ndarray:
        """Meters that observe energised parts: buses that are live, branches in service with live ends."""
        on_bus = np.isin(meters.kind, (VM, P, Q))
        ok = np.zeros(len(meters.kind), bool)
        ok[on_bus] = topo.live_bus[meters.row[on_bus]]
        ok[~on_bus] = topo.live_branch[meters.row[~on_bus]]
        return ok

    def flat_start(self, topo: Topology) -> np.ndarray:
        """1 pu at the phase shifts' angles on energised buses, 0 elsewhere."""
        return topo.live_bus * np.exp(1j * topo.shift)

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
        pq = topo.theta
        if not len(pq):  # nothing but the slack is energised: there is no state to shift
            return V.copy()
        target = V * np.conj(topo.Y @ V) + (delta_mw + 1j * delta_mvar) / self.base_mva
        meters = Meters((), np.r_[np.full(len(pq), P), np.full(len(pq), Q)], np.r_[pq, pq], np.ones(2 * len(pq)),
                        np.ones(2 * len(pq)))
        cols = np.r_[np.arange(len(pq)), len(pq) + np.searchsorted(topo.vm, pq)]  # all states but the slack's |V|
        x = V.copy()
        for _ in range(iterations):
            h, H = self.measure(topo, x, meters)
            mismatch = np.r_[target[pq].real, target[pq].imag] * self.base_mva - h
            if np.max(np.abs(mismatch)) < 1e-10:
                break
            dx = np.zeros(topo.n_states)
            dx[cols] = spsolve(H[:, cols].tocsc(), mismatch)
            x = self.with_states(topo, x, dx)
        return x
