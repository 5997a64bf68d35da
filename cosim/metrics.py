"""KPIs of a run, computed from its recorded time series alone (so any results folder can be re-scored).

Energy is power times step length; steps whose power flow did not converge are left out of
network quantities (losses, voltages) and counted in `nonconverged_steps`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _cols(df: pd.DataFrame, prefix: str, suffix: str) -> list[str]:
    return [c for c in df.columns if c.startswith(prefix) and c.endswith(suffix)]


def _max(values: np.ndarray) -> float:
    return float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")


def _min(values: np.ndarray) -> float:
    return float(np.nanmin(values)) if np.isfinite(values).any() else float("nan")


def compute_metrics(ts: pd.DataFrame, step_s: float, voltage_limits: tuple[float, float],
                    generators: list[str]) -> dict[str, float]:
    """Flat dict of KPIs: energy in kWh, power in kW, voltages in pu, bus-minutes, shares in [0, 1]."""
    h = step_s / 3600.0
    lo, hi = voltage_limits
    converged = ts["grid.converged"].to_numpy(float) == 1.0 if "grid.converged" in ts else np.ones(len(ts), bool)
    vm = ts[_cols(ts, "bus.", ".vm_pu")].to_numpy(float)[converged]
    loss_kw = ts["grid.loss_kw"].to_numpy(float)[converged]
    load_kw = ts["grid.load_p_mw"].to_numpy(float) * 1000.0
    ext_kw = ts["grid.ext_p_mw"].to_numpy(float)[converged] * 1000.0
    gen_kw = np.nan_to_num(ts["grid.gen_p_mw"].to_numpy(float)) * 1000.0
    p = np.column_stack([ts[f"{g}.p_mw"].to_numpy(float) for g in generators]) if generators else np.zeros((len(ts), 0))
    p_avail = np.column_stack([ts[f"{g}.p_avail_mw"].to_numpy(float) for g in generators]) if generators else p
    der_kw = np.nan_to_num(p).sum(axis=1) * 1000.0
    curtailed_kw = np.clip(np.nan_to_num(p_avail - p), 0.0, None).sum(axis=1) * 1000.0
    loading = ts[_cols(ts, "line.", ".loading_pct")].to_numpy(float)

    violations = (vm < lo) | (vm > hi)  # NaN (de-energised) compares False
    load_energy = float(load_kw[converged].sum() * h)
    loss_energy = float(loss_kw.sum() * h)
    imported = float(np.clip(ext_kw, 0, None).sum() * h)
    exported = float(np.clip(-ext_kw, 0, None).sum() * h)
    supplied = imported + float(gen_kw[converged].sum() * h)
    renewable = float(der_kw.sum() * h)
    return {
        "steps": int(len(ts)),
        "nonconverged_steps": int((~converged).sum()),
        "loss_energy_kwh": loss_energy,
        "loss_kw_mean": float(np.mean(loss_kw)) if loss_kw.size else float("nan"),
        "loss_kw_max": _max(loss_kw),
        "vm_min_pu": _min(vm),
        "vm_max_pu": _max(vm),
        "voltage_violation_bus_minutes": float(violations.sum() * step_s / 60.0),
        "line_loading_max_pct": _max(loading),
        "load_energy_kwh": load_energy,
        "renewable_energy_kwh": renewable,
        "curtailed_energy_kwh": float(curtailed_kw.sum() * h),
        "unserved_energy_kwh": float(np.nan_to_num(ts["grid.unserved_p_mw"].to_numpy(float)).sum() * 1000.0 * h)
        if "grid.unserved_p_mw" in ts else 0.0,
        "import_energy_kwh": imported,
        "export_energy_kwh": exported,
        "efficiency": (load_energy + exported) / supplied if supplied > 0 else float("nan"),
        "stability_index": float(np.nanmean(np.abs(vm - 1.0))) if np.isfinite(vm).any() else float("nan"),
        "renewable_share": renewable / load_energy if load_energy > 0 else float("nan"),
    }
