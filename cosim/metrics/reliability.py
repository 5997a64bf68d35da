"""Reliability indices of a run (IEEE 1366 style): SAIFI, SAIDI, CAIDI and ENS from the recorded time series.

A load bus is interrupted at a step whose power flow converged and whose voltage is NaN (the
grid model publishes NaN for de-energised buses); at a step that did not converge its state is
carried over from the step before (nothing is known about it). An interruption starts where a
bus goes from supplied to interrupted (or is interrupted at the first step). Customers default
to one per in-service load (`customers_of`), or the load's kW over `kw_per_customer`.
Indices are over the run (per year when the run is a year); ENS is `grid.unserved_p_mw` x step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from cosim.grid.feeders import Feeder

RELIABILITY_KEYS = ("saifi", "saidi_min", "caidi_min", "ens_kwh")


def customers_of(feeder: "Feeder", kw_per_customer: float | None = None) -> dict[int, float]:
    """Customers per load bus (published number): one per in-service load, or its nominal kW / `kw_per_customer`."""
    load = feeder.net.load
    load = load[load.in_service.astype(bool)]
    label = dict(zip(feeder.net.bus.index, feeder.bus_labels.tolist()))
    counts = np.ones(len(load)) if kw_per_customer is None else load.p_mw.to_numpy(float) * 1000.0 / kw_per_customer
    out: dict[int, float] = {}
    for bus, n in zip(load.bus, counts):
        out[label[bus]] = out.get(label[bus], 0.0) + float(n)
    return out


def interrupted(ts: pd.DataFrame, buses: list[int]) -> np.ndarray:
    """(steps x buses) bool: bus de-energised at a converged step, carried over across non-converged steps."""
    vm = ts[[f"bus.{b}.vm_pu" for b in buses]].to_numpy(dtype=float, na_value=np.nan)
    dead = np.isnan(vm).astype(float)
    if "grid.converged" in ts:
        dead[ts["grid.converged"].to_numpy(dtype=float) != 1.0] = np.nan
    return pd.DataFrame(dead).ffill().fillna(0.0).to_numpy() == 1.0


def reliability_indices(ts: pd.DataFrame, step_s: float, customers: dict[int, float]) -> dict[str, float | None]:
    """SAIFI (interruptions per customer), SAIDI and CAIDI (minutes) and ENS (kWh) of a recorded run;
    None where an index cannot be computed (no customers, or no interruption for CAIDI), as metrics.json has it."""
    buses = list(customers)
    weight = np.array([customers[b] for b in buses], dtype=float)
    total = float(weight.sum())
    dead = interrupted(ts, buses) if buses else np.zeros((len(ts), 0), bool)
    before = np.vstack([np.zeros((1, dead.shape[1]), bool), dead[:-1]])
    starts = (dead & ~before).sum(axis=0)
    minutes = dead.sum(axis=0) * step_s / 60.0
    ci, cmi = float(weight @ starts), float(weight @ minutes)
    unserved = ts["grid.unserved_p_mw"].to_numpy(dtype=float, na_value=np.nan) if "grid.unserved_p_mw" in ts else ()
    return {
        "saifi": ci / total if total > 0 else None,
        "saidi_min": cmi / total if total > 0 else None,
        "caidi_min": cmi / ci if ci > 0 else None,
        "ens_kwh": float(np.nansum(unserved) * 1000.0 * step_s / 3600.0),
    }
