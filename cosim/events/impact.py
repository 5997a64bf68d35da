"""Scoring the events of a run from its recorded time series: physical impact and detection.

Per event, impact is measured over the event ([start, end)) and over a window after it (as long
as the event unless set), and, given a baseline run of the same scenario without events, as the
difference to that run. Recovery is the time from the end until the grid is back within limits:
no bus outside its voltage band, no line above 100 %, no load unserved, or no worse than the
baseline run at the same step (without a baseline: than just before the event). Detection
compares `detector.alarm` / `detector.score` with the `label.attack` ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from cosim import signals as sig
from cosim.events.schedule import Schedule, ScheduledEvent
from cosim.results import EVENT_COLUMNS
from cosim.scenario.units import steps_in


def schedule_frame(schedule: Schedule, start: np.datetime64, step_s: float) -> pd.DataFrame:
    """The scheduled events as events.csv rows: start, end, kind, target, detail, then id, path, targets, params."""
    t0, step = pd.Timestamp(start), pd.Timedelta(seconds=step_s)
    rows = []
    for e in schedule.events:
        params = e.spec.model_dump(exclude={"at", "duration", "kind"})
        rows.append((t0 + e.start * step, t0 + e.end * step, e.kind, e.target_text, "", e.id, e.path,
                     " ".join(e.targets), json.dumps(params, separators=(",", ":"))))
    return pd.DataFrame(rows, columns=[*EVENT_COLUMNS, "id", "path", "targets", "params"])


class _Series:
    """Per-step physical quantities of a run, NaN-safe, for window sums."""

    def __init__(self, ts: pd.DataFrame, step_s: float, limits: tuple[float, float]):
        h = step_s / 3600.0
        col = lambda name: ts[name].to_numpy(float) if name in ts else np.zeros(len(ts))  # noqa: E731
        vm = ts[[c for c in ts.columns if sig.is_bus_voltage(c)]].to_numpy(float)
        loading = ts[[c for c in ts.columns if c.startswith("line.") and c.endswith(".loading_pct")]].to_numpy(float)
        gens = [c[:-len(".p_avail_mw")] for c in ts.columns if c.endswith(".p_avail_mw")]
        curtailed = sum((np.clip(np.nan_to_num(col(f"{g}.p_avail_mw") - col(f"{g}.p_mw")), 0, None) for g in gens),
                        np.zeros(len(ts)))
        self.violations = ((vm < limits[0]) | (vm > limits[1])).sum(axis=1)
        self.loading = np.nanmax(np.where(np.isnan(loading), -np.inf, loading), axis=1, initial=0.0)
        self.loss_kwh = np.nan_to_num(col("grid.loss_kw")) * h
        self.curtailed_kwh = curtailed * 1000.0 * h
        self.unserved_kwh = np.nan_to_num(col("grid.unserved_p_mw")) * 1000.0 * h
        self.step_s = step_s

    def window(self, a: int, b: int) -> dict[str, float]:
        s = slice(a, b)
        return {"voltage_violation_bus_minutes": float(self.violations[s].sum() * self.step_s / 60.0),
                "max_loading_pct": float(self.loading[s].max()) if b > a else float("nan"),
                "loss_kwh": float(self.loss_kwh[s].sum()), "curtailed_kwh": float(self.curtailed_kwh[s].sum()),
                "unserved_kwh": float(self.unserved_kwh[s].sum())}

    def acceptable(self, at: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per step, what counts as recovered: this run's state (at step `at`, or every step), or better."""
        pick = (lambda x: np.full(len(x), x[at])) if at is not None else (lambda x: x)  # noqa: E731
        return pick(self.violations), np.maximum(100.0, pick(self.loading)), pick(self.unserved_kwh)

    def recovery_s(self, end: int, acceptable: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
        """Seconds from step `end` until the state is acceptable (NaN: not within the run)."""
        viol, load, unserved = (a[: len(self.violations)] for a in acceptable)
        fine = (self.violations <= viol) & (self.loading <= load) & (self.unserved_kwh <= unserved + 1e-9)
        later = np.flatnonzero(fine[end:])
        return float(later[0] * self.step_s) if len(later) else float("nan")


def _detection(ts: pd.DataFrame, e: ScheduledEvent, step_s: float) -> dict[str, float]:
    alarm = ts["detector.alarm"].to_numpy(float)[e.start:e.end] >= 0.5
    hits = np.flatnonzero(alarm)
    return {"detected": float(len(hits) > 0), "alarm_share": float(alarm.mean()) if len(alarm) else float("nan"),
            "time_to_detect_s": float(hits[0] * step_s) if len(hits) else float("nan")}


def impact_table(ts: pd.DataFrame, schedule: Schedule, step_s: float, limits: tuple[float, float],
                 after_s: float | None = None, baseline: pd.DataFrame | None = None) -> pd.DataFrame:
    """events_impact.csv: one row per event with impact during / after (and its difference to the
    baseline run), recovery and, for attacks with a detector, detection."""
    series, n = _Series(ts, step_s, limits), len(ts)
    base = _Series(baseline, step_s, limits) if baseline is not None else None
    rows = []
    for e in schedule.events:
        if e.start >= n:
            continue
        end = min(e.end, n)
        after = steps_in(after_s, step_s) if after_s else end - e.start
        row: dict[str, object] = {"id": e.id, "kind": e.kind, "path": e.path, "target": e.target_text,
                                  "start": ts["time"].iloc[e.start]}
        for name, (a, b) in (("during", (e.start, end)), ("after", (end, min(n, end + after)))):
            got = series.window(a, b)
            row.update({f"{k}_{name}": v for k, v in got.items()})
            if base is not None:
                row.update({f"{k}_{name}_vs_baseline": v - base.window(a, b)[k] for k, v in got.items()})
        if base is not None:
            reference = base.acceptable()
        elif e.start:
            reference = series.acceptable(e.start - 1)
        else:  # nothing before the event: back within limits
            reference = (np.zeros(n), np.full(n, 100.0), np.zeros(n))
        row["recovery_s"] = series.recovery_s(end, reference) if end < n else float("nan")
        if "detector.alarm" in ts and e.is_attack:
            row.update(_detection(ts, e, step_s))
        if (column := f"attack.{e.id}.residual_j") in ts:  # the residual a stealthy attack left, on average
            row["residual_j_during"] = float(np.nanmean(ts[column].to_numpy(float)[e.start:end]))
        rows.append(row)
    return pd.DataFrame(rows)


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `score` for `positive` (Mann-Whitney; NaN scores rank lowest)."""
    pos, neg = int(positive.sum()), int((~positive).sum())
    if not pos or not neg:
        return float("nan")
    ranks = rankdata(np.nan_to_num(score, nan=-np.inf))
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


@dataclass(frozen=True)
class Confusion:
    """Step counts of alarms against the attack labels, and the rates the detector metrics and the report give."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, alarm: np.ndarray, truth: np.ndarray) -> "Confusion":
        """Counts of the boolean `alarm` against the boolean `truth`, step by step."""
        return cls(int((alarm & truth).sum()), int((alarm & ~truth).sum()),
                   int((~alarm & truth).sum()), int((~alarm & ~truth).sum()))

    @property
    def tpr(self) -> float:
        """Share of attacked steps that alarm (NaN without attacked steps)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def fpr(self) -> float:
        """Share of clean steps that alarm (NaN without clean steps)."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else float("nan")

    @property
    def precision(self) -> float:
        """Share of alarms on attacked steps (NaN without alarms)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and TPR (0 without hits, NaN without attacked steps)."""
        if not self.tp:
            return 0.0 if self.fn else float("nan")
        return 2 * self.precision * self.tpr / (self.precision + self.tpr)


def detection_metrics(ts: pd.DataFrame, schedule: Schedule, step_s: float) -> dict[str, float]:
    """Step-wise TPR, FPR, precision, F1 and ROC AUC against `label.attack` (all steps clean without
    labels), plus per-event and per-kind rates."""
    if "detector.alarm" not in ts:
        return {}
    alarm = ts["detector.alarm"].to_numpy(float) >= 0.5
    truth = ts["label.attack"].to_numpy(float) >= 0.5 if "label.attack" in ts else np.zeros(len(ts), bool)
    c, nan = Confusion.of(alarm, truth), float("nan")
    out = {"detector_tpr": c.tpr, "detector_fpr": c.fpr, "detector_precision": c.precision, "detector_f1": c.f1,
           "detector_roc_auc": roc_auc(ts["detector.score"].to_numpy(float), truth)}
    attacks = [e for e in schedule.events if e.is_attack and e.start < len(ts)]
    found = [_detection(ts, e, step_s) for e in attacks]
    if attacks:
        out["detector_events_detected"] = float(sum(f["detected"] for f in found))
        out["detector_events"] = float(len(attacks))
        delays = [f["time_to_detect_s"] for f in found if f["detected"]]
        out["detector_mean_time_to_detect_s"] = float(np.mean(delays)) if delays else nan
    for kind in sorted({e.kind for e in attacks}):
        steps = np.zeros(len(ts), bool)
        for e in attacks:
            if e.kind == kind:
                steps[e.start:e.end] = True
        out[f"detector_tpr_{kind}"] = float(alarm[steps].mean())
    return out
