"""Every detector of a run scored with the same metrics (`cosim.events.impact.detection_metrics`).

One detector keeps today's keys (`detector_tpr`, ...); several are prefixed by name
(`wls_detector_tpr`, `cnn_detector_roc_auc`, ...).
"""

from __future__ import annotations

import pandas as pd

from cosim.detection.runtime import signal_prefixes
from cosim.events.impact import detection_metrics
from cosim.events.schedule import Schedule


def detectors_metrics(ts: pd.DataFrame, scn, schedule: Schedule, step_s: float) -> dict[str, float]:
    """Detection metrics of each detector block of `scn` on the recorded series."""
    prefixes = signal_prefixes(scn)
    if len(prefixes) <= 1:
        return detection_metrics(ts, schedule, step_s)
    out: dict[str, float] = {}
    for name, prefix in prefixes.items():
        cols = {f"{prefix}.alarm": "detector.alarm", f"{prefix}.score": "detector.score"}
        if f"{prefix}.alarm" not in ts:
            continue
        view = ts[[c for c in (*cols, "label.attack") if c in ts]].rename(columns=cols)
        out.update({f"{name}_{key}": value for key, value in detection_metrics(view, schedule, step_s).items()})
    return out
