"""The grid model: a feeder, its DERs and a power-flow engine, stepped with injections.

Knows nothing of mosaik: the mosaik grid simulator and the RL environment both drive it.
Bus, line and trafo numbers in signal names follow the feeder's published numbering.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numba
import numpy as np
import pandapower as pp
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cosim import signals as sig
from cosim.grid.engines import InService, PowerFlowResult, build_engine
from cosim.grid.feeders import Feeder
from cosim.grid.storage import StorageBank, StorageUnit


@numba.njit(cache=True)
def _capability(p_avail: np.ndarray, p_limit: np.ndarray, q_set: np.ndarray,
                rating: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P <= available and limit (and >= 0), P <= rating, |Q| <= sqrt(rating^2 - P^2), per device."""
    n = rating.shape[0]
    p, q = np.empty(n), np.empty(n)
    for i in range(n):
        pi = min(max(min(p_avail[i], p_limit[i]), 0.0), rating[i])
        q_max = np.sqrt(max(rating[i] ** 2 - pi ** 2, 0.0))
        p[i], q[i] = pi, min(max(q_set[i], -q_max), q_max)
    return p, q


@numba.njit(cache=True)
def _prepare(load_scale, load_factor, load_on, load_p_nom, load_q_nom, native_p_nom, native_q_nom, native_kind,
             pv_pu, wind_pu, p_avail, avail_factor, p_limit, q_set, rating, online, sgen_on, load_p, load_q,
             sgen_p, sgen_q):
    """One step's injections in one compiled call: DER capability, trips, load and native-generator scaling.

    Fills load P/Q and static-generator P/Q (feeder's own, then DERs) in place; returns delivered
    DER P/Q, available DER P and the sums of load P, load Q and native generation P."""
    avail = p_avail * avail_factor
    der_p, der_q = _capability(avail, p_limit, q_set, rating)
    nl, nn, n = load_p_nom.shape[0], native_p_nom.shape[0], rating.shape[0]
    sum_p, sum_q, native = 0.0, 0.0, 0.0
    for i in range(nl):
        scale = load_scale[i] * load_factor[i] * load_on[i]
        load_p[i], load_q[i] = load_p_nom[i] * scale, load_q_nom[i] * scale
        sum_p += load_p[i]
        sum_q += load_q[i]
    for i in range(nn):
        f = pv_pu if native_kind[i] == 1 else (wind_pu if native_kind[i] == 2 else 1.0)
        sgen_p[i], sgen_q[i] = native_p_nom[i] * f * sgen_on[i], native_q_nom[i] * f * sgen_on[i]
        native += sgen_p[i]
    for i in range(n):
        der_p[i] *= online[i]
        der_q[i] *= online[i]
        sgen_p[nn + i], sgen_q[nn + i] = der_p[i] * sgen_on[nn + i], der_q[i] * sgen_on[nn + i]
    return der_p, der_q, avail, sum_p, sum_q, native


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
    unserved_p_mw: float = 0.0
    bus_p_mw: np.ndarray | None = None  # net injection per bus (generation positive), when metering
    bus_q_mvar: np.ndarray | None = None
    storage_p_mw: np.ndarray | None = None  # per battery, load convention (charging > 0)
    storage_q_mvar: np.ndarray | None = None
    storage_soc: np.ndarray | None = None  # SoC at the end of the step


@dataclass(frozen=True)
class Disruptions:
    """Physical disruptions in force: outaged lines / trafos (published numbers), tripped DERs,
    load multipliers per bus, availability multipliers per DER (e.g. a passing cloud) and normally-open
    lines closed by restoration switching (`cosim.grid.restoration`)."""

    lines_out: frozenset[int] = frozenset()
    trafos_out: frozenset[int] = frozenset()
    ders_tripped: frozenset[str] = frozenset()
    load_factor: tuple[tuple[int, float], ...] = ()
    der_availability: tuple[tuple[str, float], ...] = ()
    lines_closed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Shunt:
    """A switched capacitor bank a scenario device adds at a bus: `steps` steps of `mvar_per_step` at 1 pu."""

    name: str
    bus: int
    mvar_per_step: float
    steps: int


@dataclass(frozen=True)
class Discrete:
    """A discrete setpoint the feeder offers: an on-load tap changer or a switched shunt (capacitor bank)."""

    name: str  # trafo.<n>.tap or cap.<n>.step
    table: str  # pandapower table: trafo or shunt
    column: str  # tap_pos or step
    index: int  # pandapower index
    low: int
    high: int


def discrete_setpoints(feeder: Feeder) -> list[Discrete]:
    """Tap changers (trafos with a tap step and range) and shunts (steps 0..max_step) of a feeder.

    Trafos use the feeder's trafo numbers; shunts use pandapower's shunt index.
    """
    net, out = feeder.net, []
    for pos, (idx, row) in enumerate(net.trafo.iterrows()):
        step, low, high = (float(row.get(c, np.nan) if row.get(c) is not None else np.nan)
                           for c in ("tap_step_percent", "tap_min", "tap_max"))
        if np.isfinite([step, low, high]).all() and step > 0 and high > low:
            out.append(Discrete(sig.trafo(feeder.trafo_labels[pos], "tap"), "trafo", "tap_pos", int(idx), int(low),
                                int(high)))
    for idx, row in net.shunt.iterrows():
        out.append(Discrete(sig.cap(idx), "shunt", "step", int(idx), 0, int(row.get("max_step", 1) or 1)))
    return out


GRID_SIGNALS = ("loss_kw", "ext_p_mw", "ext_q_mvar", "load_p_mw", "load_q_mvar", "gen_p_mw", "converged",
                "unserved_p_mw")


def signal_names(feeder: Feeder, ders: list[DER], metering: bool = False,
                 storage: Sequence[StorageUnit] = ()) -> list[str]:
    """Names of the values a grid model publishes, in order (metering adds bus injections and line flows)."""
    names = [sig.bus(b) for b in feeder.bus_labels]
    names += [sig.line(k, "loading_pct") for k in feeder.line_labels]
    names += [sig.line(k, "i_ka") for k in feeder.line_labels]
    names += [sig.trafo(k, "loading_pct") for k in feeder.trafo_labels]
    names += [sig.grid(q) for q in GRID_SIGNALS]
    names += [sig.der(d.name, q) for d in ders for q in sig.DER_SIGNALS]
    names += [sig.der(s.name, q) for s in storage for q in sig.STORAGE_SIGNALS]
    if metering:
        names += [sig.bus(b, "p_mw") for b in feeder.bus_labels] + [sig.bus(b, "q_mvar") for b in feeder.bus_labels]
        names += [sig.line(k, "p_mw") for k in feeder.line_labels] + [sig.line(k, "q_mvar") for k in feeder.line_labels]
    names += [d.name for d in discrete_setpoints(feeder)]
    return names


@dataclass
class _Topology:
    """Static connectivity of the feeder by bus position, to find what an outage de-energises."""

    line_ends: np.ndarray
    trafo_ends: np.ndarray
    switch_ends: np.ndarray  # closed bus-bus switches
    sources: np.ndarray  # bus positions of in-service external grids
    line_base: np.ndarray  # in service and no open line switch
    trafo_base: np.ndarray
    bus_base: np.ndarray
    load_bus: np.ndarray
    sgen_bus: np.ndarray

    @classmethod
    def of(cls, net: pp.pandapowerNet) -> "_Topology":
        pos = pd.Index(net.bus.index)
        sw = net.switch
        open_sw = sw[~sw.closed.astype(bool)] if len(sw) else sw
        line_base = net.line.in_service.to_numpy(bool) & ~net.line.index.isin(open_sw.element[open_sw.et == "l"])
        trafo_base = net.trafo.in_service.to_numpy(bool) & ~net.trafo.index.isin(open_sw.element[open_sw.et == "t"])
        bb = sw[(sw.et == "b") & sw.closed.astype(bool)] if len(sw) else sw
        ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
        return cls(
            line_ends=np.column_stack([pos.get_indexer(net.line.from_bus), pos.get_indexer(net.line.to_bus)]),
            trafo_ends=np.column_stack([pos.get_indexer(net.trafo.hv_bus), pos.get_indexer(net.trafo.lv_bus)]),
            switch_ends=np.column_stack([pos.get_indexer(bb.bus), pos.get_indexer(bb.element)]).reshape(-1, 2),
            sources=pos.get_indexer(ext.bus),
            line_base=line_base, trafo_base=trafo_base, bus_base=net.bus.in_service.to_numpy(bool),
            load_bus=pos.get_indexer(net.load.bus), sgen_bus=pos.get_indexer(net.sgen.bus))

    def energised(self, lines_on: np.ndarray, trafos_on: np.ndarray) -> np.ndarray:
        """Buses connected to an external grid through in-service branches and closed switches."""
        n = len(self.bus_base)
        ends = np.vstack([self.line_ends[lines_on], self.trafo_ends[trafos_on], self.switch_ends])
        ends = ends[self.bus_base[ends].all(axis=1)]
        graph = coo_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        live = np.isin(comp, comp[self.sources])
        return live & self.bus_base

class GridModel:
    """Feeder + DERs + engine. `step()` applies injections and solves one power flow; disruptions
    (outages, trips, load steps, clouds) change what the next steps solve."""

    def __init__(self, feeder: Feeder, ders: list[DER], engine: str = "lightsim2grid",
                 line_max_i_ka: float | None = None, metering: bool = False, shunts: Sequence[Shunt] = (),
                 storage: Sequence[StorageUnit] = (), step_s: float | None = None):
        # the model adds its DERs to the net and moves taps: it works on its own copy
        self.feeder = feeder = replace(feeder, net=copy.deepcopy(feeder.net))
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
        if storage and step_s is None:
            raise ValueError("a grid model with storage needs step_s to integrate the state of charge")
        self.storage = StorageBank(storage, step_s or 3600.0)
        self._storage_at = len(net.sgen)  # batteries are static generators (sign flipped) after the DERs
        for unit in storage:
            pp.create_sgen(net, feeder.bus_index(unit.bus), p_mw=0.0, q_mvar=0.0, sn_mva=unit.s_mva,
                           name=unit.name, type="storage")
        self._no_storage = np.zeros(len(storage))
        self.shunt_setpoint: dict[str, str] = {}  # added bank's name -> its step setpoint `cap.<n>.step`
        for s in shunts:  # constant-impedance banks: Q = steps x mvar_per_step x V^2, as pandapower's shunt
            idx = pp.create_shunt(net, feeder.bus_index(s.bus), q_mvar=-s.mvar_per_step, p_mw=0.0, step=0,
                                  max_step=s.steps, name=s.name)
            self.shunt_setpoint[s.name] = sig.cap(int(idx))
        self.load_p_nom = net.load.p_mw.to_numpy(float).copy()
        self.load_q_nom = net.load.q_mvar.to_numpy(float).copy()
        self.load_on = net.load.in_service.to_numpy(bool)
        self.load_base = self.load_on.copy()
        self.sgen_base = net.sgen.in_service.to_numpy(bool)
        self.sgen_on = self.sgen_base.astype(float)
        self.load_factor = np.ones(len(net.load))
        self.der_avail_factor = np.ones(len(self.ders))
        self.der_online = np.ones(len(self.ders))
        self.load_dead = np.zeros(len(net.load), bool)
        self.topology = _Topology.of(net)
        self._energised = self.topology.bus_base.copy()
        self.disruptions = Disruptions()
        self.lines_opened: frozenset[int] = frozenset()  # lines opened by `line.<k>.closed` setpoints (breakers)
        self._source_vm = net.ext_grid.vm_pu.to_numpy(float).copy()  # base source voltage (`grid.source_ratio` 1)
        self.der_index = {d.name: i for i, d in enumerate(self.ders)}  # DER name -> position
        self._native_kind = np.where(self.native_is_pv, 1, np.where(self.native_is_wind, 2, 0)).astype(np.int64)
        self._no_limit, self._no_q = np.full(len(self.ders), np.inf), np.zeros(len(self.ders))
        # injection buffers, refilled every step (the engines copy what they keep)
        self._inj = (np.empty(len(net.load)), np.empty(len(net.load)), np.empty(len(net.sgen)), np.empty(len(net.sgen)))
        zeros = np.zeros(len(self.ders))
        _prepare(np.ones(len(net.load)), self.load_factor, self.load_on, self.load_p_nom, self.load_q_nom,
                 self.native_p_nom, self.native_q_nom, self._native_kind, 1.0, 1.0, zeros, self.der_avail_factor,
                 zeros, zeros, self.der_rating, self.der_online, self.sgen_on, *self._inj)
        self._inj[2][self._storage_at:] = self._inj[3][self._storage_at:] = 0.0
        self.engine, self.engine_note = build_engine(net, engine, tuple(a.copy() for a in self._inj))
        self.discrete = {d.name: d for d in discrete_setpoints(feeder)}
        self._discrete_base = {name: int(net[d.table].at[d.index, d.column]) for name, d in self.discrete.items()}
        self._positions = np.array(list(self._discrete_base.values()), float)  # published with every step
        self._position_of = {name: i for i, name in enumerate(self.discrete)}
        self.metering = metering
        self._names = signal_names(feeder, self.ders, metering, self.storage.units)
        self._blocks, self._grid_at = self._layout()

    # -- stepping ---------------------------------------------------------------------------
    def capability(self, p_avail: np.ndarray, p_limit: np.ndarray, q_set: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clip DER setpoints to what the device can do: P <= available and limit, |S| <= rating."""
        return _capability(np.asarray(p_avail, float), np.asarray(p_limit, float), np.asarray(q_set, float),
                           self.der_rating)

    def step(self, load_scale: np.ndarray, der_p_avail: np.ndarray, der_p_limit: np.ndarray | None = None,
             der_q_set: np.ndarray | None = None, native_pv_pu: float = 1.0, native_wind_pu: float = 1.0,
             storage_p_set: np.ndarray | None = None, storage_q_set: np.ndarray | None = None) -> StepResult:
        """Apply per-load multipliers of nominal load, DER and battery setpoints, solve, return the result.

        Batteries do what their SoC allows (`cosim.grid.storage`); the SoC moves only by `commit_storage`."""
        limit = self._no_limit if der_p_limit is None else np.asarray(der_p_limit, float)
        q_set = self._no_q if der_q_set is None else np.asarray(der_q_set, float)
        load_scale = np.asarray(load_scale, float)
        if load_scale.ndim == 0:  # one multiplier for every load
            load_scale = np.full(len(self.load_p_nom), float(load_scale))
        der_p, der_q, avail, load_p_sum, load_q_sum, native_p = _prepare(
            load_scale, self.load_factor, self.load_on, self.load_p_nom, self.load_q_nom,
            self.native_p_nom, self.native_q_nom, self._native_kind, float(native_pv_pu), float(native_wind_pu),
            np.asarray(der_p_avail, float), self.der_avail_factor, limit, q_set, self.der_rating, self.der_online,
            self.sgen_on, *self._inj)
        load_p, load_q, sgen_p, sgen_q = self._inj
        at, st_p = self._storage_at, self._no_storage
        st_q = soc = st_p
        if len(self.storage):  # skipped without batteries: the RL loop runs at tens of thousands of steps/s
            st_p, st_q, soc = self.storage.dispatch(st_p if storage_p_set is None else storage_p_set,
                                                    st_p if storage_q_set is None else storage_q_set,
                                                    self.sgen_on[at:])
            sgen_p[at:], sgen_q[at:] = -st_p, -st_q
        pf = self.engine.solve(load_p, load_q, sgen_p, sgen_q)
        result = StepResult(pf, load_p_sum, load_q_sum, der_p, der_q, avail, native_p,
                            storage_p_mw=st_p, storage_q_mvar=st_q, storage_soc=soc)
        if self.load_dead.any():
            result.unserved_p_mw = float((self.load_p_nom * load_scale * self.load_factor)[self.load_dead].sum())
        if self.metering:
            result.bus_p_mw, result.bus_q_mvar = self._bus_injections(load_p, load_q, sgen_p, sgen_q, pf)
        return result

    def operating_point(self, load_scale: np.ndarray, der_p_avail: np.ndarray, native_pv_pu: float = 1.0,
                        native_wind_pu: float = 1.0) -> pp.pandapowerNet:
        """A copy of the net in the base configuration carrying one step's injections, every load and generator
        in, DERs at their available power with Q 0 and batteries idle: the case a restoration study solves."""
        net = copy.deepcopy(self.feeder.net)
        t = self.topology
        net.line["in_service"], net.trafo["in_service"] = t.line_base, t.trafo_base
        net.bus["in_service"], net.load["in_service"] = t.bus_base, self.load_base
        net.sgen["in_service"] = self.sgen_base
        inj = tuple(np.empty_like(a) for a in self._inj)
        n = len(self.ders)
        _prepare(np.broadcast_to(np.asarray(load_scale, float), self.load_p_nom.shape).copy(),
                 np.ones(len(self.load_p_nom)), self.load_base, self.load_p_nom, self.load_q_nom, self.native_p_nom,
                 self.native_q_nom, self._native_kind, float(native_pv_pu), float(native_wind_pu),
                 np.asarray(der_p_avail, float), np.ones(n), self._no_limit, self._no_q, self.der_rating,
                 np.ones(n), self.sgen_base.astype(float), *inj)
        inj[2][self._storage_at:] = inj[3][self._storage_at:] = 0.0
        net.load["p_mw"], net.load["q_mvar"], net.sgen["p_mw"], net.sgen["q_mvar"] = inj
        return net

    @property
    def storage_online(self) -> np.ndarray:
        """Which batteries are energised (a de-energised island takes them out)."""
        return self.sgen_on[self._storage_at:] > 0

    def commit_storage(self, r: StepResult) -> None:
        """Make the state of charge the one step `r` leaves (the step kernel calls it for every real step)."""
        if r.storage_soc is not None:
            self.storage.commit(r.storage_soc)

    def _bus_injections(self, load_p, load_q, sgen_p, sgen_q, pf: PowerFlowResult) -> tuple[np.ndarray, np.ndarray]:
        """Net injection per bus in MW / Mvar, generation positive; the slack bus gets the external grid."""
        t, nb = self.topology, len(self.topology.bus_base)
        p = np.bincount(t.sgen_bus, sgen_p, nb) - np.bincount(t.load_bus, load_p, nb)
        q = np.bincount(t.sgen_bus, sgen_q, nb) - np.bincount(t.load_bus, load_q, nb)
        p[t.sources[0]] += pf.ext_p_mw
        q[t.sources[0]] += pf.ext_q_mvar
        dead = ~self._energised
        p[dead], q[dead] = np.nan, np.nan
        return p, q

    # -- physical disruptions ---------------------------------------------------------------
    def apply_disruptions(self, d: Disruptions) -> None:
        """Bring the model to the disruptions `d` (outages, trips, load steps, clouds); cheap when unchanged."""
        if d is self.disruptions or d == self.disruptions:
            self.disruptions = d
            return
        old, self.disruptions = self.disruptions, d
        if (d.lines_out, d.trafos_out, d.lines_closed) != (old.lines_out, old.trafos_out, old.lines_closed):
            self._set_topology(d.lines_out | self.lines_opened, d.trafos_out)
        self.load_factor = np.ones(len(self.load_p_nom))
        load_bus = self.feeder.net.load.bus.to_numpy()
        for bus, factor in d.load_factor:
            self.load_factor[load_bus == self.feeder.bus_index(bus)] *= factor
        self.der_avail_factor = np.ones(len(self.ders))
        for name, factor in d.der_availability:
            self.der_avail_factor[self.der_index[name]] *= factor
        self._update_der_online()

    def _set_topology(self, lines_out: frozenset[int], trafos_out: frozenset[int]) -> None:
        f, t = self.feeder, self.topology
        closed = f.net.line.index.isin([f.line_index(k) for k in self.disruptions.lines_closed])
        lines_on = (t.line_base | closed) & ~f.net.line.index.isin([f.line_index(k) for k in lines_out])
        trafos_on = t.trafo_base & ~f.net.trafo.index.isin([f.trafo_index(k) for k in trafos_out])
        live = t.energised(lines_on, trafos_on)
        self._energised = live
        self.load_on = self.load_base & live[t.load_bus]
        self.load_dead = self.load_base & ~live[t.load_bus]
        self.sgen_on = (self.sgen_base & live[t.sgen_bus]).astype(float)
        self.engine.set_in_service(InService(lines_on & live[t.line_ends].all(axis=1),
                                             trafos_on & live[t.trafo_ends].all(axis=1),
                                             live, self.load_on, self.sgen_on.astype(bool)))

    def _update_der_online(self) -> None:
        tripped = np.array([d.name in self.disruptions.ders_tripped for d in self.ders], bool)
        self.der_online = (~tripped & (self.sgen_on[self.native_sgens:self._storage_at] > 0)).astype(float)

    def set_line_closed(self, line: int, closed: bool) -> None:
        """Open or reclose line `line` (published number) by a breaker; an outage in force keeps it open."""
        self.feeder.line_index(line)  # an unknown line raises
        opened = self.lines_opened - {line} if closed else self.lines_opened | {line}
        if opened != self.lines_opened:
            self.lines_opened = opened
            self._set_topology(self.disruptions.lines_out | opened, self.disruptions.trafos_out)
            self._update_der_online()

    def set_source_ratio(self, ratio: float) -> float:
        """Scale the source (substation) voltage by `ratio` from its base value: a feeder-head regulator's tap."""
        vm = self._source_vm * float(ratio)
        ext = self.feeder.net.ext_grid
        if not np.array_equal(ext.vm_pu.to_numpy(float), vm):
            ext["vm_pu"] = vm
            self.engine = type(self.engine)(self.feeder.net)  # every engine reads the slack voltage when built
            d = self.disruptions
            if self.lines_opened or d.lines_out or d.trafos_out or d.lines_closed:
                self._set_topology(self.disruptions.lines_out | self.lines_opened, self.disruptions.trafos_out)
        return float(vm[0]) if len(vm) else math.nan

    def reset(self) -> None:
        """Back to the base case: no disruptions, taps and shunts at their base positions, no warm start."""
        if self.lines_opened:
            self.lines_opened = frozenset()
            self._set_topology(self.disruptions.lines_out, self.disruptions.trafos_out)
        self.set_source_ratio(1.0)
        self.apply_disruptions(Disruptions())
        for name, position in self._discrete_base.items():
            self.set_discrete(name, position)
        self.storage.reset()
        self.engine.restart()

    def set_discrete(self, name: str, value: float) -> int:
        """Move a tap changer or shunt to `value`, rounded and clipped to its range; returns the position."""
        d = self.discrete[name]
        position = int(np.clip(round(value), d.low, d.high))
        table = self.feeder.net[d.table]
        if table.at[d.index, d.column] != position:
            table.at[d.index, d.column] = position
            self._positions[self._position_of[name]] = position
            self.engine.network_changed()
        return position

    # -- naming -----------------------------------------------------------------------------
    def _layout(self) -> tuple[list[tuple[int, int]], int]:
        """Where each array block of `signal_names` lies (buses, lines, currents, trafos, then metering) and
        where the grid scalars start: the order `signal_names` defines."""
        f = self.feeder
        nb, nl, nt = len(f.bus_labels), len(f.line_labels), len(f.trafo_labels)
        sizes = [nb, nl, nl, nt]
        head = sum(sizes)
        tail = (head + len(GRID_SIGNALS) + len(sig.DER_SIGNALS) * len(self.ders)
                + len(sig.STORAGE_SIGNALS) * len(self.storage))
        meter = [nb, nb, nl, nl] if self.metering else []
        starts = np.cumsum([0] + sizes[:-1]).tolist() + (tail + np.cumsum([0] + meter[:-1])).tolist()
        return [(a, a + n) for a, n in zip(starts, sizes + meter)], head

    @property
    def signal_names(self) -> list[str]:
        """Names of the values `signals()` returns, in order; stable for the model's lifetime."""
        return list(self._names)

    def signal_values(self, r: StepResult, out: np.ndarray | None = None) -> np.ndarray:
        """All published values of a step as one vector ordered like `signal_names` (written into `out` if given)."""
        pf, row = r.pf, np.empty(len(self._names)) if out is None else out
        parts = [pf.vm_pu, pf.line_loading_pct, pf.line_i_ka, pf.trafo_loading_pct]
        if self.metering:
            parts += [r.bus_p_mw, r.bus_q_mvar, pf.line_p_mw, pf.line_q_mvar]
        for (lo, hi), values in zip(self._blocks, parts):
            row[lo:hi] = values
        g = self._grid_at
        row[g:g + 8] = (pf.loss_mw * 1000.0, pf.ext_p_mw, pf.ext_q_mvar, r.load_p_mw, r.load_q_mvar,
                        float(r.der_p_mw.sum()) + r.native_p_mw, float(pf.converged), r.unserved_p_mw)
        der = row[g + 8:g + 8 + 3 * len(self.ders)]
        if pf.converged:
            der[0::3], der[1::3] = r.der_p_mw, r.der_q_mvar
        else:  # available power is still known
            der[0::3] = der[1::3] = np.nan
        der[2::3] = r.der_p_avail_mw
        if len(self.storage):
            at = g + 8 + 3 * len(self.ders)
            bank = row[at:at + 3 * len(self.storage)]
            bank[0::3] = r.storage_p_mw if pf.converged else np.nan
            bank[1::3] = r.storage_q_mvar if pf.converged else np.nan
            bank[2::3] = r.storage_soc
        row[len(row) - len(self._positions):] = self._positions
        return row

    def signals(self, r: StepResult) -> dict[str, float]:
        """All published values of a step by name, e.g. {'bus.18.vm_pu': 0.91, ...}."""
        return dict(zip(self._names, self.signal_values(r).tolist()))
