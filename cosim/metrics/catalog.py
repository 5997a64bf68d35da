"""The one table of metric metadata: unit, which direction is worse, description, regression use.

Every key that metrics.json can contain has an entry: the KPIs of `compute_metrics` (group
"core"), the detector scores of `cosim.events.impact.detection_metrics` ("detection"), the battery KPIs of `compute_metrics` when a scenario
has storage ("storage"), the forecast errors of `cosim.forecast.metrics` ("forecast"), the
reliability indices of `cosim.metrics.reliability` ("reliability"), the capability clipping of
`cosim.sims.grid` ("control"), the
counts and timings of the Modbus bridge (`hil.bridge.Bridge.metrics`, "hil") and of a
real-time run (`cosim.realtime.WallClock.metrics`, "realtime"). Per-attack-kind keys such as
`detector_tpr_fdi` share one entry, `detector_tpr_<kind>`. `cosim.regress` takes the metrics a
baseline keeps, their direction and tolerances from here; the HTML report its units and
descriptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

# unit strings: "ratio" is dimensionless (shares, efficiencies, rates)
RATIO = "ratio"


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of one metrics.json key (or key family such as `detector_tpr_<kind>`)."""

    key: str
    unit: str
    worse: int  # +1 higher is worse, -1 lower is worse, 0 neither
    description: str
    group: str  # core | storage | reliability | control | forecast | detection | hil | realtime
    baseline: bool = False  # kept (and compared) by regression baselines
    tolerance: tuple[float, float] | None = None  # (rel, abs) for baseline comparison, else the default


def _m(key: str, unit: str, worse: int, description: str, group: str = "core", baseline: bool = False,
       tolerance: tuple[float, float] | None = None) -> MetricInfo:
    return MetricInfo(key, unit, worse, description, group, baseline, tolerance)


_TABLE: tuple[MetricInfo, ...] = (
    # -- core: cosim.metrics.compute_metrics / metrics_from_array ----------------------------------
    _m("steps", "steps", 0, "recorded steps of the run"),
    _m("nonconverged_steps", "steps", +1, "steps whose power flow did not converge", baseline=True),
    _m("converged_share", RATIO, -1, "share of recorded steps whose power flow converged (the steps the network "
       "KPIs cover; null for a run without steps)"),
    _m("loss_energy_kwh", "kWh", +1, "line + transformer loss energy (converged steps)", baseline=True),
    _m("loss_kw_mean", "kW", +1, "mean line + transformer losses over converged steps"),
    _m("loss_kw_max", "kW", +1, "highest line + transformer losses of a step", baseline=True),
    _m("vm_min_pu", "pu", -1, "lowest bus voltage over the run", baseline=True, tolerance=(0.0, 0.002)),
    _m("vm_max_pu", "pu", +1, "highest bus voltage over the run", baseline=True, tolerance=(0.0, 0.002)),
    _m("voltage_violation_bus_minutes", "bus-min", +1,
       "sum over steps and buses of (V outside voltage_limits) x step in minutes", baseline=True,
       tolerance=(0.02, 5.0)),
    _m("line_loading_max_pct", "%", +1, "highest line loading over the run", baseline=True),
    _m("load_energy_kwh", "kWh", 0, "energy to loads (converged steps)"),
    _m("renewable_energy_kwh", "kWh", -1, "energy injected by the scenario's generators"),
    _m("curtailed_energy_kwh", "kWh", +1, "available minus injected energy of the scenario's generators",
       baseline=True),
    _m("reactive_energy_kvarh", "kvarh", 0,
       "sum over the scenario's generators of |Q| x step (reactive control effort; NaN Q counts as 0)"),
    _m("unserved_energy_kwh", "kWh", +1, "load energy not served (de-energised islands)"),
    _m("import_energy_kwh", "kWh", 0, "energy from the upstream grid (converged steps)"),
    _m("export_energy_kwh", "kWh", 0, "energy to the upstream grid (converged steps)"),
    _m("efficiency", RATIO, -1, "energy delivered (loads + export + battery charging) / energy supplied "
       "(import + generation + battery discharging)", baseline=True),
    _m("efficiency_incl_curtailment", RATIO, -1,
       "energy delivered / (import + generation + curtailed): curtailed energy counts as supplied"),
    _m("stability_index", "pu", +1, "mean over buses and converged steps of |V - 1|", baseline=True),
    _m("renewable_share", RATIO, -1, "renewable energy / load energy (above 1 when the feeder exports)"),
    _m("local_supply_share", RATIO, -1,
       "load energy served by local generation: sum of min(generation, load) per step / load energy"),
    _m("storage_charged_kwh", "kWh", 0, "energy into the scenario's batteries at their terminals (converged steps; "
       "only with storage)", "storage"),
    _m("storage_discharged_kwh", "kWh", 0, "energy out of the scenario's batteries at their terminals (converged "
       "steps; only with storage)", "storage"),
    _m("storage_soc_min", RATIO, 0, "lowest state of charge of any battery at the end of a step", "storage"),
    _m("storage_soc_max", RATIO, 0, "highest state of charge of any battery at the end of a step", "storage"),
    # -- reliability: cosim.metrics.reliability.reliability_indices ----------------------------------
    _m("saifi", "int/cust", +1, "sustained interruptions (5 min or longer) per customer over the run (SAIFI; one "
       "customer per load by default)", "reliability"),
    _m("saidi_min", "min", +1, "sustained interruption minutes per customer over the run (SAIDI)", "reliability"),
    _m("caidi_min", "min", +1, "minutes per customer interruption, SAIDI / SAIFI (CAIDI; null without interruptions)",
       "reliability"),
    _m("ens_kwh", "kWh", +1, "energy not supplied to de-energised loads (ENS, all recorded steps)", "reliability"),
    _m("maifi", "int/cust", +1, "momentary interruptions (under 5 min, e.g. ended by restoration switching) per "
       "customer over the run (MAIFI)", "reliability"),
    # -- control: cosim.sims.grid.GridSim ----------------------------------------------------------
    _m("setpoints_clipped", "setpoint-steps", +1, "setpoints in force that DER capability cut, one per setpoint and "
       "step (events `setpoint_clipped`)", "control"),
    # -- forecast: cosim.forecast.metrics.forecast_metrics (only with a forecast: block) -------------
    _m("forecast_mae_mw", "MW", +1, "mean absolute error of the forecasts at the full horizon against the recorded "
       "value (every DER's available P and the feeder load)", "forecast"),
    _m("forecast_nmae", RATIO, +1, "summed absolute forecast error at the full horizon / summed recorded value",
       "forecast"),
    _m("forecast_der_nmae", RATIO, +1, "forecast_nmae of the DERs' available P alone (null without generators)",
       "forecast"),
    _m("forecast_load_nmae", RATIO, +1, "forecast_nmae of the feeder load alone", "forecast"),
    # -- detection: cosim.events.impact.detection_metrics ------------------------------------------
    _m("detector_tpr", RATIO, -1, "share of attack steps the detector alarmed (true-positive rate)", "detection"),
    _m("detector_fpr", RATIO, +1, "share of clean steps the detector alarmed (false-positive rate)", "detection"),
    _m("detector_precision", RATIO, -1, "share of alarmed steps that were attack steps", "detection"),
    _m("detector_f1", RATIO, -1, "harmonic mean of detector precision and TPR", "detection"),
    _m("detector_roc_auc", RATIO, -1, "area under the ROC curve of the detector score against the attack labels",
       "detection"),
    _m("detector_events", "events", 0, "attack events within the run", "detection"),
    _m("detector_events_detected", "events", -1, "attack events with at least one alarm during the event",
       "detection"),
    _m("detector_mean_time_to_detect_s", "s", +1, "mean time from attack start to first alarm (detected events)",
       "detection"),
    _m("detector_tpr_<kind>", RATIO, -1, "share of the steps of attacks of this kind the detector alarmed",
       "detection"),
    # -- hil: hil.bridge.Bridge.metrics ------------------------------------------------------------
    _m("guard_blocked_writes", "writes", +1, "Modbus writes the safety guard blocked", "hil"),
    _m("guard_clamped_writes", "writes", +1, "Modbus writes the safety guard clamped or rate-limited", "hil"),
    _m("guard_readback_mismatches", "writes", +1, "writes whose read-back differed from the value written", "hil"),
    _m("device_rejected_writes", "writes", +1, "writes a device rejected (Modbus exception)", "hil"),
    _m("device_write_unexpected", "changes", +1,
       "control registers that changed on a device without a write from the bridge (another master, or the "
       "device's own fail-safe)", "hil"),
    _m("device_setpoint_changes", "changes", +1, "the same count under its earlier name", "hil"),
    _m("device_write_timeouts", "writes", +1, "writes without an answer within the timeout", "hil"),
    _m("device_stale_steps", "steps", +1, "device-steps without fresh readings (device marked stale)", "hil"),
    _m("device_reconnects", "count", +1, "reconnections of the bridge to devices", "hil"),
    _m("bridge_requests", "requests", 0, "Modbus requests the bridge sent", "hil"),
    _m("bridge_timeouts", "requests", +1, "Modbus requests that timed out", "hil"),
    _m("bridge_garbage", "requests", +1, "Modbus answers that could not be decoded", "hil"),
    _m("bridge_exceptions", "requests", +1, "Modbus exception answers", "hil"),
    _m("bridge_rtt_p50_ms", "ms", +1, "median round-trip time of a Modbus request", "hil"),
    _m("bridge_rtt_p99_ms", "ms", +1, "99th-percentile round-trip time of a Modbus request", "hil"),
    _m("bridge_step_p50_ms", "ms", +1, "median wall time of one bridge step (all devices)", "hil"),
    _m("bridge_step_max_ms", "ms", +1, "longest wall time of one bridge step", "hil"),
    # -- realtime: cosim.realtime.WallClock.metrics ------------------------------------------------
    _m("rt_period_ms", "ms", 0, "wall-clock period of one step with --realtime", "realtime"),
    _m("rt_lateness_p50_ms", "ms", +1, "median step lateness against its deadline (negative = slack)", "realtime"),
    _m("rt_lateness_p99_ms", "ms", +1, "99th-percentile step lateness (negative = slack)", "realtime"),
    _m("rt_lateness_max_ms", "ms", +1, "largest step lateness (negative = slack)", "realtime"),
    _m("rt_deadline_misses", "steps", +1, "steps completed after their deadline", "realtime"),
    _m("rt_gc_pause_max_ms", "ms", +1, "longest garbage-collection pause during the run (heap frozen at start)",
       "realtime"),
    _m("rt_gc_full_collections", "collections", +1, "full (generation 2) garbage collections during the run",
       "realtime"),
    _m("rt_wake_lag_max_ms", "ms", +1, "latest release of a step by the pacer behind its release time", "realtime"),
    _m("rt_worst_step", "step", 0, "the step with the largest lateness", "realtime"),
    _m("rt_worst_step_gc_ms", "ms", +1, "garbage-collection time within the latest step", "realtime"),
    _m("rt_worst_step_wake_lag_ms", "ms", +1, "how late the pacer released the latest step", "realtime"),
)

METRICS: dict[str, MetricInfo] = {m.key: m for m in _TABLE}
CORE_METRICS: tuple[str, ...] = tuple(m.key for m in _TABLE if m.group == "core")
_FAMILIES = [(re.compile("^" + re.escape(m.key).replace(re.escape("<kind>"), "[A-Za-z0-9_]+") + "$"), m)
             for m in _TABLE if "<" in m.key]


def metric_info(key: str) -> MetricInfo | None:
    """Metadata of a metrics.json key (exact key, else its key family), None for an unknown key."""
    info = METRICS.get(key)
    if info is not None:
        return info
    name, sep, rest = key.partition("_detector_")  # one detector among several: <name>_detector_tpr, ...
    if sep and name:
        return metric_info("detector_" + rest)
    return next((m for rx, m in _FAMILIES if rx.match(key)), None)


def worse_directions(keys: Iterable[str] | None = None) -> dict[str, int]:
    """{key: +1 / -1} of the metrics a regression baseline keeps (or of `keys`), in table order."""
    wanted = None if keys is None else set(keys)
    return {m.key: m.worse for m in _TABLE
            if (m.baseline if wanted is None else m.key in wanted) and m.worse != 0}


def tolerances(default: tuple[float, float] = (0.01, 1e-3)) -> dict[str, dict[str, float]]:
    """Baseline tolerances as baseline.json stores them: a default and per-metric overrides."""
    out = {"default": {"rel": default[0], "abs": default[1]}}
    out.update({m.key: {"rel": m.tolerance[0], "abs": m.tolerance[1]} for m in _TABLE if m.tolerance is not None})
    return out
