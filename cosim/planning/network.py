"""The planning grid: a feeder with one candidate generator per bus, solved on a fast engine for any placement.

A placement is a vector of DG active powers, one per candidate bus (zero where no DG is sited).
Each DG injects Q = P tan(acos(pf)). A placement is evaluated over one or more load snapshots
(nominal load by default, or the steps of a scenario's load profile), and the evaluation holds
what every objective needs: losses, voltages and branch loadings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandapower as pp

from cosim.grid.engines import ENGINES, EngineUnsupported, build_engine
from cosim.grid.feeders import Feeder


class PlanningError(ValueError):
    """Bad planning input (feeder, bus, sizes, profile); the message names what was expected."""


@dataclass(frozen=True)
class Snapshots:
    """Operating points a placement is judged on: per-load multipliers and the DG output per unit (steps x ...)."""

    load_scale: np.ndarray  # steps x loads
    dg_pu: np.ndarray  # steps: DG output as a share of its size (1 for dispatchable DGs)
    label: str = "nominal load"

    @staticmethod
    def nominal(n_loads: int) -> Snapshots:
        """One snapshot: every load at its nominal value, DGs at their size."""
        return Snapshots(np.ones((1, n_loads)), np.ones(1))


@dataclass
class Evaluation:
    """A placement solved on every snapshot; voltages of the heaviest-loaded snapshot kept for plots."""

    converged: bool
    loss_kw: float  # mean over snapshots
    vdev_pu: float  # mean over snapshots and buses of |V - 1|
    vm_min_pu: float
    vm_max_pu: float
    loading_max_pct: float
    vm_pu: np.ndarray = field(repr=False)  # per bus, heaviest snapshot
    violation_share: float = 0.0  # share of (snapshot, bus) pairs outside the voltage limits
    bus_min_pu: np.ndarray = field(default=None, repr=False)  # per live bus, lowest over the snapshots
    bus_max_pu: np.ndarray = field(default=None, repr=False)  # per live bus, highest over the snapshots


class PlanningGrid:
    """A feeder plus one zero-power generator at each candidate bus, and a fast engine to solve placements."""

    def __init__(self, feeder: Feeder, engine: str = "sweep", pf: float = 1.0, snapshots: Snapshots | None = None,
                 line_max_i_ka: float | None = None, voltage_limits: tuple[float, float] = (0.95, 1.05)):
        if not 0.0 < pf <= 1.0:
            raise PlanningError(f"--pf: power factor {pf} is outside (0, 1]")
        if engine not in ENGINES:
            raise PlanningError(f"--engine: unknown engine {engine!r} (expected one of {', '.join(sorted(ENGINES))})")
        self.feeder = feeder
        self.voltage_limits = voltage_limits
        self.net = copy.deepcopy(feeder.net)
        if line_max_i_ka is not None:
            self.net.line["max_i_ka"] = line_max_i_ka
        self.candidates = _candidate_buses(self.net)
        self.labels = feeder.bus_labels[self.net.bus.index.get_indexer(self.candidates)]
        self.n_native = len(self.net.sgen)
        for bus in self.candidates:
            pp.create_sgen(self.net, int(bus), p_mw=0.0, q_mvar=0.0, name="planned")
        self.q_per_p = float(np.tan(np.arccos(pf)))
        self.snapshots = snapshots or Snapshots.nominal(len(self.net.load))
        if self.snapshots.load_scale.shape[1] != len(self.net.load):
            raise PlanningError(f"profile has {self.snapshots.load_scale.shape[1]} loads, the feeder {len(self.net.load)}")
        self.load_p = self.net.load.p_mw.to_numpy(float)
        self.load_q = self.net.load.q_mvar.to_numpy(float)
        self.native_p = self.net.sgen.p_mw.to_numpy(float)[: self.n_native]
        self.native_q = self.net.sgen.q_mvar.to_numpy(float)[: self.n_native]
        self.heaviest = int(np.argmax(self.snapshots.load_scale @ self.load_p))
        self.engine, self.note = self._engine(engine)
        self.solves = 0
        self._sgen_p = np.zeros(len(self.net.sgen))
        self._sgen_q = np.zeros(len(self.net.sgen))
        self._sgen_p[: self.n_native], self._sgen_q[: self.n_native] = self.native_p, self.native_q
        self._all_live = bool(self.net.bus.in_service.all())
        self._has_branches = len(self.net.line) + len(self.net.trafo) > 0

    def _engine(self, preferred: str):
        probe = (self.load_p, self.load_q, np.zeros(len(self.net.sgen)), np.zeros(len(self.net.sgen)))
        probe[2][: self.n_native], probe[3][: self.n_native] = self.native_p, self.native_q
        try:
            return build_engine(self.net, preferred, probe)
        except EngineUnsupported as exc:  # the sweep refuses meshes and tap changers: use lightsim2grid
            engine, note = build_engine(self.net, "lightsim2grid", probe)
            return engine, f"{exc}; using {engine.name}" + (f" ({note})" if note else "")

    @property
    def n(self) -> int:
        """Number of candidate buses."""
        return len(self.candidates)

    def label_positions(self, labels: list[int]) -> list[int]:
        """Candidate positions of published bus numbers; PlanningError naming a bus that is not a candidate."""
        found = []
        for label in labels:
            hits = np.flatnonzero(self.labels == label)
            if len(hits) == 0:
                raise PlanningError(f"bus {label} is not a candidate for a DG on {self.feeder.name} "
                                    f"(candidates: {self.labels.min()}..{self.labels.max()}, the slack excluded)")
            found.append(int(hits[0]))
        return found

    def placement(self, positions, sizes) -> np.ndarray:
        """The full injection vector (MW per candidate) of DGs at candidate `positions` with `sizes`."""
        p = np.zeros(self.n)
        np.add.at(p, np.asarray(positions, int), np.asarray(sizes, float))
        return p

    def evaluate(self, p: np.ndarray) -> Evaluation:
        """Solve the placement `p` (MW per candidate bus) on every snapshot."""
        snaps = self.snapshots
        sgen_p, sgen_q = self._sgen_p, self._sgen_q
        losses, vdev, violations = 0.0, 0.0, 0.0
        vmin, vmax, loading = np.inf, -np.inf, 0.0
        kept = bus_min = bus_max = None
        lo, hi = self.voltage_limits
        for k in range(len(snaps.dg_pu)):
            dg = p * snaps.dg_pu[k]
            sgen_p[self.n_native:], sgen_q[self.n_native:] = dg, dg * self.q_per_p
            scale = snaps.load_scale[k]
            r = self.engine.solve(self.load_p * scale, self.load_q * scale, sgen_p, sgen_q)
            self.solves += 1
            if not r.converged:
                return Evaluation(False, np.inf, np.inf, np.nan, np.nan, np.inf, np.full(len(self.net.bus), np.nan), 1.0)
            vm = r.vm_pu if self._all_live else r.vm_pu[np.isfinite(r.vm_pu)]
            losses += r.loss_mw * 1000.0
            vdev += float(np.abs(vm - 1.0).mean())
            low, high = vm.min(), vm.max()
            if low < lo - 1e-9 or high > hi + 1e-9:
                violations += float(np.count_nonzero((vm < lo - 1e-9) | (vm > hi + 1e-9))) / len(vm)
            vmin, vmax = min(vmin, float(low)), max(vmax, float(high))
            if self._has_branches:
                loading = max(loading, float(max(r.line_loading_pct.max(initial=0.0), r.trafo_loading_pct.max(initial=0.0))))
            if k == self.heaviest:
                kept = r.vm_pu
            bus_min = vm if bus_min is None else np.minimum(bus_min, vm)
            bus_max = vm if bus_max is None else np.maximum(bus_max, vm)
        steps = len(snaps.dg_pu)
        return Evaluation(True, losses / steps, vdev / steps, vmin, vmax, loading, kept, violations / steps,
                          bus_min, bus_max)


def _candidate_buses(net: pp.pandapowerNet) -> np.ndarray:
    """Buses that may take a DG: in service, not the slack, not on the substation's upstream voltage level."""
    slack = set(net.ext_grid.bus[net.ext_grid.in_service.astype(bool)])
    upstream = {float(net.bus.vn_kv[b]) for b in slack} if len(net.trafo) else set()
    keep = [b for b in net.bus.index if net.bus.in_service[b] and b not in slack
            and float(net.bus.vn_kv[b]) not in upstream]
    return np.asarray(keep, int)
