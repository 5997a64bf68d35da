"""Reliability indices of a run (IEEE 1366 style): SAIFI, SAIDI, CAIDI and ENS from the recorded time series.

A load bus is interrupted at a step whose power flow converged and whose voltage is NaN (the
grid model publishes NaN for de-energised buses); at a step that did not converge its state is
carried over from the step before (nothing is known about it). An interruption starts where a
bus goes from supplied to interrupted (or is interrupted at the first step). As in IEEE 1366, an
interruption shorter than `MOMENTARY_S` (5 min; e.g. one ended by restoration switching) is
momentary: counted in MAIFI, not in SAIFI, SAIDI or CAIDI (IEEE 1366-2012 puts exactly 5 min with
the momentary ones too; here a 5-min interruption stays sustained). Customers default to one per
in-service load (`customers_of`), or the load's kW over `kw_per_customer`. Indices are over the
run (per year when the run is a year); ENS is `grid.unserved_p_mw` x step, momentary or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from cosim.grid.feeders import Feeder

RELIABILITY_KEYS = ("saifi", "saidi_min", "caidi_min", "ens_kwh", "maifi")
MOMENTARY_S = 300.0  # interruptions shorter than this are momentary


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


def interruptions(dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interruptions of a (steps x buses) bool array: the bus of each and its length in steps."""
    pad = np.zeros((1, dead.shape[1]), np.int8)
    edge = np.diff(np.vstack([pad, dead.astype(np.int8), pad]), axis=0).T  # buses x steps + 1, row-major below
    bus, start = np.nonzero(edge == 1)
    end = np.nonzero(edge == -1)[1]
    return bus, end - start


def reliability_indices(ts: pd.DataFrame, step_s: float, customers: dict[int, float]) -> dict[str, float | None]:
    """SAIFI (sustained interruptions per customer), SAIDI and CAIDI (minutes), ENS (kWh) and MAIFI (momentary
    interruptions per customer) of a recorded run; None where an index cannot be computed (no customers, or no
    sustained interruption for CAIDI), as metrics.json has it."""
    buses = list(customers)
    weight = np.array([customers[b] for b in buses], dtype=float)
    total = float(weight.sum())
    dead = interrupted(ts, buses) if buses else np.zeros((len(ts), 0), bool)
    bus, steps = interruptions(dead)
    sustained = steps * step_s >= MOMENTARY_S
    ci, cmi = float(weight[bus[sustained]].sum()), float(weight[bus] @ (steps * sustained)) * step_s / 60.0
    momentary = float(weight[bus[~sustained]].sum())
    unserved = ts["grid.unserved_p_mw"].to_numpy(dtype=float, na_value=np.nan) if "grid.unserved_p_mw" in ts else ()
    return {
        "saifi": ci / total if total > 0 else None,
        "saidi_min": cmi / total if total > 0 else None,
        "caidi_min": cmi / ci if ci > 0 else None,
        "ens_kwh": float(np.nansum(unserved) * 1000.0 * step_s / 3600.0),
        "maifi": momentary / total if total > 0 else None,
    }
