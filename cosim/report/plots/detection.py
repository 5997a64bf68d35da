"""Detection plots: each detector's score over time with its alarms, and ROC curves overall and per attack kind.

Both sit in the page's detection section beside the confusion table; a run without detector
columns has neither. ROC curves rank NaN scores (steps without an estimate) lowest, as
`cosim.events.impact.roc_auc` does for the AUC in their legends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from cosim.events.impact import roc_auc
from cosim.report.data import DPI, FIG_WIDTH_IN, DetectorSeries, ReportData, attack_spans
from cosim.report.plots.figures import format_time_axis, legend, new_figure, shade
from cosim.report.plots.registry import plot

ROC_COLUMNS = 3
DETECTOR_COLOURS = ["tab:purple", "tab:blue", "tab:green", "tab:orange", "tab:brown", "tab:pink", "tab:olive",
                    "tab:cyan"]


@dataclass(frozen=True)
class Curve:
    """One detector's ROC curve on one set of steps: false and true positive rates per threshold, and its AUC."""

    detector: str
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


@dataclass(frozen=True)
class RocPanel:
    """One ROC axes: which attacked steps it scores against every clean step, and a curve per detector."""

    title: str
    curves: list[Curve]


def roc_points(score: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of `score` for `positive` at every distinct score as threshold, from (0, 0); NaN ranks lowest."""
    s = np.nan_to_num(np.asarray(score, dtype=float), nan=-np.inf)
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], np.asarray(positive, dtype=bool)[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # last step of each distinct score
    tp, fp = np.cumsum(pos)[last], np.cumsum(~pos)[last]
    return np.r_[0.0, fp] / max(int((~pos).sum()), 1), np.r_[0.0, tp] / max(int(pos.sum()), 1)


def roc_panels(d: ReportData) -> list[RocPanel]:
    """All attacked steps, then each attack kind's steps, against every clean step (none without both)."""
    clean = ~d.attack
    if not d.detectors or not d.attack.any() or not clean.any():
        return []
    sets = [(f"All attacks ({int(d.attack.sum())} attacked, {int(clean.sum())} clean steps)", d.attack)]
    sets += [(f"{kind} ({int(steps.sum())} steps)", steps) for kind, steps in d.attack_kinds.items()]
    panels = []
    for title, steps in sets:
        keep = steps | clean
        positive = steps[keep]
        curves = [Curve(det.name, *roc_points(det.score[keep], positive), roc_auc(det.score[keep], positive))
                  for det in d.detectors]
        panels.append(RocPanel(title, curves))
    return panels


@plot("detector-roc", "Detector ROC", order=61, section="detection")
def plot_detector_roc(d: ReportData) -> Figure | None:
    """ROC curves per detector, over all attacked steps and per attack kind, each against every clean step."""
    panels = roc_panels(d)
    if not panels:
        return None
    ncols = min(ROC_COLUMNS, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(FIG_WIDTH_IN, 3.7 * nrows + 0.4), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1.0, label="chance")
        for i, c in enumerate(panel.curves):
            ax.step(c.fpr, c.tpr, where="post", color=DETECTOR_COLOURS[i % len(DETECTOR_COLOURS)], lw=1.5,
                    label=f"{c.detector} (AUC {c.auc:.3f})")
        ax.set_title(panel.title, fontsize="medium")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("False positive rate (clean steps)")
        ax.set_ylabel("True positive rate")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("ROC curves: attacked steps against every clean step")
    return fig


def alarm_threshold(det: DetectorSeries) -> tuple[float, str] | None:
    """The score line to draw: WLS's chi-square threshold (score 1), else the lowest alarmed score if the
    alarms are exactly the steps at or above it, else None (alarms that no score threshold explains)."""
    if det.wls:
        return 1.0, "chi-square threshold (score 1)"
    if det.alarm is None:
        return None
    finite = np.isfinite(det.score)
    hit, miss = det.score[finite & det.alarm], det.score[finite & ~det.alarm]
    if not hit.size or (miss.size and miss.max() >= hit.min()):
        return None
    t = float(hit.min())
    return t, f"lowest alarmed score {t:.3g} (every step at or above it alarms)"


@plot("detector", "Detector score", order=60, section="detection")
def plot_detector_score(d: ReportData) -> Figure | None:
    """Each detector's score over time, with its alarm threshold and alarmed steps, attack steps hatched."""
    if not d.detectors:
        return None
    axis = d.axis
    attack = attack_spans(d.attack, axis)
    fig, axes = new_figure(0.8 + 2.4 * len(d.detectors), nrows=len(d.detectors))
    for i, (ax, det) in enumerate(zip(axes, d.detectors)):
        shade(ax, [*d.spans, *attack])
        ax.plot(axis.x, det.score, color=DETECTOR_COLOURS[i % len(DETECTOR_COLOURS)], lw=1.0,
                label="score = J / chi-square threshold" if det.wls else "score")
        if (line := alarm_threshold(det)) is not None:
            ax.axhline(line[0], color="black", ls="--", lw=1.0, label=line[1])
        if det.alarm is not None:
            ax.plot(axis.x[det.alarm], det.score[det.alarm], ls="none", marker="v", ms=4, color="crimson",
                    label=f"alarm ({int(det.alarm.sum())} steps)")
        if np.nanmax(det.score, initial=0.0) > 20:
            ax.set_yscale("log")
        ax.set_title(det.name, fontsize="medium", loc="left")
        ax.set_ylabel("Score")
        ax.grid(True, alpha=0.3)
        format_time_axis(ax, axis, label=ax is axes[-1])
        legend(ax)
    fig.suptitle("Detector score over time")
    return fig
