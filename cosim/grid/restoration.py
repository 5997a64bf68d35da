"""Restoration by switching: close a normally-open tie line to re-energise buses an outage cut off.

Physics only (pandapower and networkx, no schedule, no mosaik). The faulted section is the outaged
line or transformer itself (isolated by its own breakers), so a plan is one tie: a normally-open
line with one end in the de-energised island and the other end energised. Each candidate is
checked with a pandapower Newton-Raphson power flow of the whole feeder at one operating point:
it must converge, keep every energised bus at or above `min_vm_pu` and every line at or below
`max_loading_pct`. The best passing tie (highest lowest voltage) is chosen; none passing leaves
the island unrestored. Closing a tie into a dead island joins two components, so a radial feeder
stays radial.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.topology as top

from cosim.grid.feeders import Feeder


@dataclass(frozen=True)
class Limits:
    """What a restored configuration must keep: the lowest bus voltage and the highest line loading."""

    min_vm_pu: float = 0.90
    max_loading_pct: float = 100.0


@dataclass(frozen=True)
class Check:
    """The power flow of one candidate tie: converged, lowest energised voltage, highest line loading."""

    tie: int
    converged: bool
    min_vm_pu: float
    max_loading_pct: float

    def passes(self, limits: Limits) -> bool:
        """Whether the configuration converged within the voltage and loading limits."""
        return self.converged and self.min_vm_pu >= limits.min_vm_pu and self.max_loading_pct <= limits.max_loading_pct

    def describe(self, limits: Limits) -> str:
        """e.g. 'line.37: min 0.921 pu, max 48 %' or why it fails."""
        if not self.converged:
            return f"line.{self.tie}: power flow does not converge"
        why = [f"min {self.min_vm_pu:.3f} pu" + (f" < {limits.min_vm_pu:g}" if self.min_vm_pu < limits.min_vm_pu else ""),
               f"max {self.max_loading_pct:.0f} %"
               + (f" > {limits.max_loading_pct:g}" if self.max_loading_pct > limits.max_loading_pct else "")]
        return f"line.{self.tie}: " + ", ".join(why)


@dataclass(frozen=True)
class Configuration:
    """Which branches are out (outages, published numbers) and which normally-open lines are closed."""

    lines_out: frozenset[int] = frozenset()
    trafos_out: frozenset[int] = frozenset()
    ties_closed: frozenset[int] = frozenset()

    def closing(self, tie: int) -> "Configuration":
        """The same configuration with one more tie closed."""
        return Configuration(self.lines_out, self.trafos_out, self.ties_closed | {tie})


def normally_open(feeder: Feeder) -> tuple[int, ...]:
    """The tie lines: lines out of service in the base case between two in-service buses (IEEE 33: 33..37)."""
    net = feeder.net
    on_bus = set(net.bus.index[net.bus.in_service.astype(bool)])
    off = ~net.line.in_service.astype(bool) & net.line.from_bus.isin(on_bus) & net.line.to_bus.isin(on_bus)
    return tuple(int(k) for k in feeder.line_labels[off.to_numpy()])


def with_configuration(feeder: Feeder, net: pp.pandapowerNet, config: Configuration) -> pp.pandapowerNet:
    """A copy of `net` (a net of `feeder`, maybe with injections written in) with the configuration's statuses."""
    out = copy.deepcopy(net)
    base_line = feeder.net.line.in_service.to_numpy(bool)
    out.line["in_service"] = (base_line | np.isin(feeder.line_labels, list(config.ties_closed))) \
        & ~np.isin(feeder.line_labels, list(config.lines_out))
    out.trafo["in_service"] = feeder.net.trafo.in_service.to_numpy(bool) \
        & ~np.isin(feeder.trafo_labels, list(config.trafos_out))
    return out


def graph(feeder: Feeder, config: Configuration) -> nx.MultiGraph:
    """The feeder's graph of in-service branches and closed switches (pandapower.topology) in a configuration."""
    return top.create_nxgraph(with_configuration(feeder, feeder.net, config), respect_switches=True,
                              include_out_of_service=False)


def dead_islands(feeder: Feeder, config: Configuration) -> list[frozenset[int]]:
    """The de-energised islands (published bus numbers) of in-service buses that no external grid reaches."""
    net = feeder.net
    label = dict(zip(net.bus.index, feeder.bus_labels.tolist()))
    sources = set(net.ext_grid.bus[net.ext_grid.in_service.astype(bool)])
    g = graph(feeder, config)
    g.add_nodes_from(net.bus.index[net.bus.in_service.astype(bool)])
    return sorted((frozenset(label[b] for b in part) for part in nx.connected_components(g) if not part & sources),
                  key=min)


def tie_options(feeder: Feeder, config: Configuration, island: Iterable[int]) -> list[int]:
    """Open, unfaulted tie lines with exactly one end in `island` and the other end energised."""
    island = set(island)
    dead = set().union(*dead_islands(feeder, config))
    net, out = feeder.net, []
    label = dict(zip(net.bus.index, feeder.bus_labels.tolist()))
    for tie in normally_open(feeder):
        if tie in config.ties_closed or tie in config.lines_out:
            continue
        row = net.line.loc[feeder.line_index(tie)]
        ends = {label[row.from_bus], label[row.to_bus]}
        inside = ends & island
        if len(inside) == 1 and not (ends - inside) & dead:
            out.append(tie)
    return out


def closes_loop(feeder: Feeder, config: Configuration, tie: int) -> bool:
    """Whether the closed `tie`'s ends are joined without it too (a repaired branch restored the normal supply):
    then it must reopen to keep the feeder radial."""
    row = feeder.net.line.loc[feeder.line_index(tie)]
    rest = Configuration(config.lines_out, config.trafos_out, config.ties_closed - {tie})
    return nx.has_path(graph(feeder, rest), row.from_bus, row.to_bus)


def check(feeder: Feeder, net: pp.pandapowerNet, config: Configuration, tie: int) -> Check:
    """Solve `net` (the operating point) with `tie` closed in `config`: convergence, lowest voltage, highest loading."""
    trial = with_configuration(feeder, net, config.closing(tie))
    try:
        pp.runpp(trial, numba=False)
    except pp.LoadflowNotConverged:
        return Check(tie, False, float("nan"), float("nan"))
    vm = trial.res_bus.vm_pu.to_numpy(float)
    loading = trial.res_line.loading_percent.to_numpy(float)
    return Check(tie, True, float(np.nanmin(vm)), float(np.nanmax(loading)) if np.isfinite(loading).any() else 0.0)


def restore(feeder: Feeder, net: pp.pandapowerNet, config: Configuration, island: Iterable[int],
            limits: Limits) -> tuple[int | None, list[Check]]:
    """The tie that re-energises `island` best within `limits` (None if none does) and every tie's check."""
    checks = [check(feeder, net, config, tie) for tie in tie_options(feeder, config, island)]
    passing = [c for c in checks if c.passes(limits)]
    best = max(passing, key=lambda c: c.min_vm_pu, default=None)
    return (best.tie if best else None), checks
