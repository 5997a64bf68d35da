"""The series impedance of a feeder's in-service lines and transformers, in per unit on 1 MVA.

A line's is its length times its per-km impedance over its parallel count, on the kV^2 base of its
from bus; a transformer's is its short-circuit impedance (vk, vkr) on its rating times its parallel
count. Shared by the linearised feeder model of the controllers and the per-DER feeder tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim.grid.feeders import Feeder


@dataclass(frozen=True)
class Branches:
    """Branch k joins bus positions ends[k] (from, to) of the feeder's net, with series r[k] + j x[k] pu."""

    ends: np.ndarray  # (branches, 2) int
    r: np.ndarray
    x: np.ndarray


def branches(feeder: Feeder) -> Branches:
    """In-service lines, then in-service transformers (hv to lv), of a feeder."""
    net = feeder.net
    pos = pd.Index(net.bus.index)
    lines = net.line[net.line.in_service.astype(bool)]
    f, t = pos.get_indexer(lines.from_bus), pos.get_indexer(lines.to_bus)
    per = lines.length_km.to_numpy(float) / lines.parallel.to_numpy(float) / net.bus.vn_kv.to_numpy(float)[f] ** 2
    ends = [np.column_stack([f, t])]
    r, x = [lines.r_ohm_per_km.to_numpy(float) * per], [lines.x_ohm_per_km.to_numpy(float) * per]
    if len(net.trafo):
        tr = net.trafo[net.trafo.in_service.astype(bool)]
        sn = tr.sn_mva.to_numpy(float) * tr.parallel.to_numpy(float)
        rk, zk = tr.vkr_percent.to_numpy(float) / 100.0 / sn, tr.vk_percent.to_numpy(float) / 100.0 / sn
        ends.append(np.column_stack([pos.get_indexer(tr.hv_bus), pos.get_indexer(tr.lv_bus)]))
        r.append(rk)
        x.append(np.sqrt(np.maximum(zk**2 - rk**2, 0.0)))
    return Branches(np.vstack(ends).astype(np.int64), np.concatenate(r), np.concatenate(x))
