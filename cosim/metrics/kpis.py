"""KPIs of a run from its recorded signals: one implementation for the co-simulation and the RL environment.

`metrics_from_array` works on a (steps x signals) float array whose columns are named like the
grid model's published signals (`bus.<n>.vm_pu`, `line.<k>.loading_pct`, `grid.loss_kw`, ...,
`<gen>.p_mw`, `<gen>.q_mvar`, `<gen>.p_avail_mw`); where each KPI finds its columns is worked
out once per tuple of names (a cached column plan), so scoring an episode costs well under a
millisecond. `compute_metrics` is the same on a results folder's DataFrame.

Energy is power times step length; steps whose power flow did not converge are left out of
network quantities (losses, voltages, load, exchange with the upstream grid) and counted in
`nonconverged_steps` (and `converged_share`). A KPI that cannot be computed is NaN (null in
metrics.json): every KPI but the step counts when no step converged, and the shares of load
energy when there is no load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd

Index = slice | np.ndarray
STEP_COUNTS = ("steps", "nonconverged_steps", "converged_share")  # the KPIs known even when no step converged


@dataclass(frozen=True)
class ColumnPlan:
    """Where each KPI's inputs sit in a row of signals (slices where the columns are contiguous)."""

    width: int
    vm: Index
    loading: Index
    converged: int | None
    loss: int
    load: int
    ext: int
    gen: int
    unserved: int | None
    p: Index
    p_avail: Index
    q: Index | None  # None when a generator has no `<gen>.q_mvar` column
    storage_p: Index | None = None  # batteries (found by their `<name>.soc` column): P, load convention
    storage_soc: Index | None = None


def _index(positions: Sequence[int]) -> Index:
    """A slice for evenly spaced ascending positions (a view, no copy), else an index array."""
    pos = list(positions)
    if len(pos) >= 2:
        d = pos[1] - pos[0]
        if d > 0 and all(b - a == d for a, b in zip(pos, pos[1:])):
            return slice(pos[0], pos[-1] + 1, d)
    if len(pos) == 1:
        return slice(pos[0], pos[0] + 1)
    return np.asarray(pos, dtype=np.intp)


@lru_cache(maxsize=128)
def column_plan(names: tuple[str, ...], generators: tuple[str, ...]) -> ColumnPlan:
    """The column plan of these signal names and scenario generators (KeyError names a missing signal)."""
    where = {n: i for i, n in enumerate(names)}

    def need(name: str) -> int:
        if name not in where:
            raise KeyError(f"metrics need the signal {name!r}, which is not among the {len(names)} recorded")
        return where[name]

    vm = [i for i, n in enumerate(names) if n.startswith("bus.") and n.endswith(".vm_pu")]
    loading = [i for i, n in enumerate(names) if n.startswith("line.") and n.endswith(".loading_pct")]
    q_names = [f"{g}.q_mvar" for g in generators]
    batteries = [n[:-4] for n in names if is_storage_soc(n)]
    return ColumnPlan(
        width=len(names), vm=_index(vm), loading=_index(loading), converged=where.get("grid.converged"),
        loss=need("grid.loss_kw"), load=need("grid.load_p_mw"), ext=need("grid.ext_p_mw"), gen=need("grid.gen_p_mw"),
        unserved=where.get("grid.unserved_p_mw"),
        p=_index([need(f"{g}.p_mw") for g in generators]), p_avail=_index([need(f"{g}.p_avail_mw") for g in generators]),
        q=_index([where[q] for q in q_names]) if all(q in where for q in q_names) else None,
        storage_p=_index([need(f"{b}.p_mw") for b in batteries]) if batteries else None,
        storage_soc=_index([where[f"{b}.soc"] for b in batteries]) if batteries else None)


def is_storage_soc(name: str) -> bool:
    """Whether `name` is a battery's state of charge, `<battery>.soc` (what marks a battery in a series)."""
    return name.endswith(".soc") and name.count(".") == 1


def _max(values: np.ndarray) -> float:
    """Largest value ignoring NaN (NaN when nothing is finite), in one pass without copies."""
    if values.size:
        r = float(np.fmax.reduce(values, axis=None))
        if math.isfinite(r) or math.isnan(r):
            return r
    return float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")  # empty, or +-inf present


def _min(values: np.ndarray) -> float:
    """Smallest value ignoring NaN (NaN when nothing is finite), in one pass without copies."""
    if values.size:
        r = float(np.fmin.reduce(values, axis=None))
        if math.isfinite(r) or math.isnan(r):
            return r
    return float(np.nanmin(values)) if np.isfinite(values).any() else float("nan")


def _mean_abs_deviation(vm: np.ndarray) -> float:
    """Mean of |V - 1| over the non-NaN entries (NaN when nothing is finite): `nanmean` without its copies."""
    d = vm - 1.0
    np.abs(d, out=d)
    n = d.size - np.count_nonzero(np.isnan(d))
    np.fmax(d, 0.0, out=d)  # NaN -> 0, the rest is >= 0 already
    r = float(d.sum() / n) if n else float("nan")
    if math.isfinite(r) or not n:
        return r
    return float(np.nanmean(np.abs(vm - 1.0))) if np.isfinite(vm).any() else float("nan")


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def metrics_from_array(values: np.ndarray, names: Sequence[str], step_s: float,
                       voltage_limits: tuple[float, float], generators: Sequence[str]) -> dict[str, float]:
    """Flat dict of KPIs from a (steps x signals) array named by `names`: kWh, kW, pu, bus-minutes, shares."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(f"values must be steps x {len(names)} signals, got shape {values.shape}")
    plan = column_plan(tuple(names), tuple(generators))
    n = values.shape[0]
    h = step_s / 3600.0
    lo, hi = voltage_limits
    converged = values[:, plan.converged] == 1.0 if plan.converged is not None else np.ones(n, bool)
    all_converged = bool(converged.all())
    pick = (lambda a: a) if all_converged else (lambda a: a[converged])  # noqa: E731

    vm = values[:, plan.vm]  # a view; rows of non-converged steps that hold only NaN need no masking
    if not all_converged and not np.isnan(vm[~converged]).all():
        vm = vm[converged]
    loss_kw = pick(values[:, plan.loss])
    load_kw = values[:, plan.load] * 1000.0
    ext_kw = pick(values[:, plan.ext]) * 1000.0
    gen_kw = np.nan_to_num(values[:, plan.gen]) * 1000.0
    p = values[:, plan.p]
    der_kw = np.nan_to_num(p).sum(axis=1) * 1000.0
    curtailed_kw = np.clip(np.nan_to_num(values[:, plan.p_avail] - p), 0.0, None).sum(axis=1) * 1000.0
    loading = values[:, plan.loading]

    violations = np.count_nonzero(vm < lo) + np.count_nonzero(vm > hi)  # NaN (de-energised) compares False
    load_conv = pick(load_kw)
    gen_conv = pick(gen_kw)
    load_energy = float(load_conv.sum() * h)
    loss_energy = float(loss_kw.sum() * h)
    imported = float(np.clip(ext_kw, 0, None).sum() * h)
    exported = float(np.clip(-ext_kw, 0, None).sum() * h)
    supplied = imported + float(gen_conv.sum() * h)
    renewable = float(der_kw.sum() * h)
    curtailed = float(curtailed_kw.sum() * h)
    curtailed_conv = curtailed if all_converged else float(curtailed_kw[converged].sum() * h)
    local = float(np.clip(np.minimum(gen_conv, load_conv), 0.0, None).sum() * h)
    if plan.q is None:
        reactive = float("nan")
    else:
        reactive = float(np.nan_to_num(np.abs(values[:, plan.q])).sum() * 1000.0 * h)
    unserved = (float(np.nan_to_num(values[:, plan.unserved]).sum() * 1000.0 * h)
                if plan.unserved is not None else 0.0)
    charged = discharged = 0.0
    if plan.storage_p is not None:  # batteries: charging is delivered energy, discharging supplied energy
        st_kw = pick(np.nan_to_num(values[:, plan.storage_p])) * 1000.0
        charged = float(np.clip(st_kw, 0.0, None).sum() * h)
        discharged = float(np.clip(-st_kw, 0.0, None).sum() * h)
        supplied += discharged
    n_converged = int(converged.sum())
    kpis = {
        "steps": int(n),
        "nonconverged_steps": int(n - n_converged),
        "converged_share": n_converged / n if n else float("nan"),
        "loss_energy_kwh": loss_energy,
        "loss_kw_mean": float(np.mean(loss_kw)) if loss_kw.size else float("nan"),
        "loss_kw_max": _max(loss_kw),
        "vm_min_pu": _min(vm),
        "vm_max_pu": _max(vm),
        "voltage_violation_bus_minutes": float(violations * step_s / 60.0),
        "line_loading_max_pct": _max(loading),
        "load_energy_kwh": load_energy,
        "renewable_energy_kwh": renewable,
        "curtailed_energy_kwh": curtailed,
        "reactive_energy_kvarh": reactive,
        "unserved_energy_kwh": unserved,
        "import_energy_kwh": imported,
        "export_energy_kwh": exported,
        "efficiency": _ratio(load_energy + exported + charged, supplied),
        "efficiency_incl_curtailment": _ratio(load_energy + exported + charged, supplied + curtailed_conv),
        "stability_index": _mean_abs_deviation(vm),
        "renewable_share": _ratio(renewable, load_energy),
        "local_supply_share": _ratio(local, load_energy),
    }
    if plan.storage_p is not None:
        soc = values[:, plan.storage_soc]
        kpis.update({"storage_charged_kwh": charged, "storage_discharged_kwh": discharged,
                     "storage_soc_min": _min(soc), "storage_soc_max": _max(soc)})
    if not n_converged:  # nothing about the network is known: every KPI but the step counts cannot be computed
        kpis.update({k: float("nan") for k in kpis if k not in STEP_COUNTS})
    return kpis


def _wanted(name: str, generator_columns: frozenset[str]) -> bool:
    """The columns the KPIs read (everything else, e.g. `time` or labels, stays in the DataFrame)."""
    return (name.startswith("grid.") or name in generator_columns or is_storage_soc(name)
            or (name.startswith("bus.") and name.endswith(".vm_pu"))
            or (name.startswith("line.") and name.endswith(".loading_pct")))


def compute_metrics(ts: pd.DataFrame, step_s: float, voltage_limits: tuple[float, float],
                    generators: Sequence[str]) -> dict[str, float]:
    """`metrics_from_array` on a recorded time series (one column per signal), so any results folder can be re-scored."""
    gen_cols = frozenset(f"{g}.{a}" for g in generators for a in ("p_mw", "p_avail_mw", "q_mvar"))
    gen_cols |= frozenset(f"{c[:-4]}.p_mw" for c in ts.columns if isinstance(c, str) and is_storage_soc(c))
    cols = [c for c in ts.columns if isinstance(c, str) and _wanted(c, gen_cols)]
    values = ts[cols].to_numpy(dtype=float, na_value=np.nan) if cols else np.empty((len(ts), 0))
    return metrics_from_array(values, cols, step_s, voltage_limits, generators)
