"""What every power-flow engine shares: the result arrays, element statuses, the protocol and the registry.

An engine takes the injections of every load and static generator of one pandapower net and
returns the same result arrays, ordered like the net's tables, so callers never see which
engine ran. Each engine is one module that registers itself with `register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
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

    def restart(self) -> None: ...  # forget the warm start: the next solve starts flat


class EngineUnsupported(ValueError):
    """An engine that cannot model this feeder (or this change to it); the message says what and why."""


ENGINES: dict[str, Callable[[pp.pandapowerNet], Engine]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make an engine selectable as `grid.engine: <name>`."""
    def add(cls: type) -> type:
        cls.name = name
        ENGINES[name] = cls
        return cls
    return add


def failed_result(net: pp.pandapowerNet) -> PowerFlowResult:
    """The result of a power flow that did not converge: NaN values, flag down."""
    nan = np.nan
    lines = np.full(len(net.line), nan)
    return PowerFlowResult(False, np.full(len(net.bus), nan), lines, lines.copy(), np.full(len(net.trafo), nan),
                           nan, nan, nan, lines.copy(), lines.copy())


def line_rating_ka(net: pp.pandapowerNet) -> np.ndarray:
    """Thermal rating of each line in kA (max_i_ka x derating x parallel systems)."""
    return (net.line.max_i_ka * net.line.df * net.line.parallel).to_numpy(float)


def trafo_rating_ka(net: pp.pandapowerNet) -> np.ndarray:
    """Rated HV-side current of each transformer in kA."""
    return (net.trafo.sn_mva / (SQRT3 * net.trafo.vn_hv_kv) * net.trafo.parallel).to_numpy(float)


def compare(a: PowerFlowResult, b: PowerFlowResult) -> tuple[float, float]:
    """Largest voltage difference (pu) and loss difference (kW) between two results."""
    dv = float(np.nanmax(np.abs(a.vm_pu - b.vm_pu))) if a.converged and b.converged else np.inf
    return dv, abs(a.loss_mw - b.loss_mw) * 1000.0
