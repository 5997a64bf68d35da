"""Feeders by name (ieee33, ieee69, simbench:<code>, a pandapower JSON file) with their numbering.

IEEE 33 and 69 use the published 1-based numbering (bus 1 is the substation, line k is
branch k of the published table). SimBench and JSON feeders use pandapower's indices.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn

from cosim.files import resolve_path
from cosim.grid.ieee69 import case69

BUILTIN = {"ieee33": pn.case33bw, "ieee69": case69}
ONE_BASED = set(BUILTIN)


class FeederError(ValueError):
    """A feeder specification that cannot be loaded."""


@dataclass
class Feeder:
    """A pandapower net plus the numbers users write for its buses, lines and trafos."""

    name: str
    net: pp.pandapowerNet
    bus_labels: np.ndarray
    line_labels: np.ndarray
    trafo_labels: np.ndarray

    def bus_index(self, label: int) -> int:
        """pandapower bus index of a published bus number."""
        return int(self.net.bus.index[self._position(self.bus_labels, label, "bus")])

    def line_index(self, label: int) -> int:
        """pandapower line index of a published line number."""
        return int(self.net.line.index[self._position(self.line_labels, label, "line")])

    def trafo_index(self, label: int) -> int:
        """pandapower trafo index of a published trafo number."""
        return int(self.net.trafo.index[self._position(self.trafo_labels, label, "trafo")])

    def describe(self, kind: str) -> str:
        """Human summary of the valid numbers, e.g. 'buses 1..33'."""
        labels = {"bus": self.bus_labels, "line": self.line_labels, "trafo": self.trafo_labels}[kind]
        if len(labels) == 0:
            return f"no {kind}s"
        contiguous = len(labels) == labels.max() - labels.min() + 1
        span = f"{labels.min()}..{labels.max()}" if contiguous else f"{len(labels)} numbers between {labels.min()} and {labels.max()}"
        return f"{kind} numbers {span}"

    @staticmethod
    def _position(labels: np.ndarray, label: int, kind: str) -> int:
        hits = np.flatnonzero(labels == label)
        if len(hits) == 0:
            raise KeyError(f"no {kind} {label}")
        return int(hits[0])


@functools.lru_cache(maxsize=8)
def _cached_net(spec: str) -> pp.pandapowerNet:
    if spec in BUILTIN:
        return BUILTIN[spec]()
    if spec.startswith("simbench:"):
        import simbench

        code = spec.split(":", 1)[1]
        try:
            return simbench.get_simbench_net(code)
        except Exception as exc:  # simbench raises bare ValueError/KeyError for bad codes
            raise FeederError(f"unknown SimBench code {code!r} ({exc})") from None
    path = Path(spec)
    try:
        return pp.from_json(str(path))
    except Exception as exc:
        raise FeederError(f"cannot read pandapower JSON file {path}: {exc}") from None


def resolve_spec(spec: str, base_dir: Path) -> str:
    """Normalise a feeder spec: file paths become absolute, relative to the scenario's folder."""
    if spec in BUILTIN or spec.startswith("simbench:"):
        return spec
    if spec.endswith(".json"):
        path = resolve_path(spec, base_dir)
        if not path.is_file():
            raise FeederError(f"pandapower JSON file {path} does not exist")
        return str(path.resolve())
    raise FeederError(
        f"unknown feeder {spec!r}: expected ieee33, ieee69, simbench:<code> or a path to a pandapower .json file"
    )


def load_feeder(spec: str, base_dir: Path = Path(".")) -> Feeder:
    """Load a fresh copy of a feeder (cached underneath, so repeated runs are cheap)."""
    spec = resolve_spec(spec, base_dir)
    net = copy.deepcopy(_cached_net(spec))
    offset = 1 if spec in ONE_BASED else 0
    return Feeder(
        name=spec,
        net=net,
        bus_labels=np.asarray(net.bus.index, dtype=int) + offset,
        line_labels=np.asarray(net.line.index, dtype=int) + offset,
        trafo_labels=np.asarray(net.trafo.index, dtype=int) + offset,
    )
