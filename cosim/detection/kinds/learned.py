"""Kind `learned`: a detector trained by `cosim train-detector` (a torch checkpoint with its metadata)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping

import numpy as np
import pandas as pd
from pydantic import Field

from cosim.detection.base import DetectorBase
from cosim.detection.dataset import RESID
from cosim.detection.features import CLOCK, clock_features
from cosim.detection.kinds.wls import TESTS, WLSDetector, WLSRun
from cosim.detection.kinds.wls import build as build_wls
from cosim.detection.registry import DetectorError, register

if TYPE_CHECKING:
    from cosim.assembly import Assembly
    from cosim.detection.cnn_rnn import Trained


class LearnedDetector(DetectorBase):
    """A trained model: alarm when its attack probability reaches the checkpoint's (or this) threshold."""

    kind: Literal["learned"] = "learned"
    model: str = Field(description="checkpoint of cosim train-detector, relative to the scenario")
    threshold: float | None = Field(default=None, ge=0, le=1, description="default: the checkpoint's")
    wls_test: Literal[("none", *TESTS)] | None = Field(  # type: ignore[valid-type]
        default=None, description="also alarm on this WLS test of the same estimate (default: the checkpoint's)")


class LearnedRun:
    """The model on the window of the last `window` steps of seen values (and, for a model that reads them,
    their WLS residuals from `wls`, its own estimator on the run's meters, sharing the step's estimate with the
    run's other WLS estimators: `Assembly.estimate_sources`). With a WLS test (`test`) it also
    alarms when that test fails on the same estimate (score: `union_score`)."""

    def __init__(self, trained: "Trained", threshold: float, wls: "WLSRun | None" = None, test: str = "none",
                 clock: np.ndarray | None = None):
        from cosim.detection.windows import WindowBuffer

        self.trained, self.threshold, self.wls, self.test = trained, threshold, wls, test
        self.buffer = WindowBuffer(trained.layout.names, trained.hyper.window)
        self.clock = clock  # per step, the `CLOCK` inputs of a model that reads the time

    def step(self, k: int, seen: Mapping[str, float]) -> dict[str, float | str]:
        estimate = self.wls.estimate(k, seen) if self.wls is not None else None
        if estimate is not None and self.trained.hyper.residuals:
            names = self.wls.estimator.meters.names
            seen = {**seen, **{RESID + n: r for n, r in zip(names, estimate.signed.tolist())}}
        if self.clock is not None:
            seen = {**seen, **dict(zip(CLOCK, self.clock[k].tolist()))}
        score = float(self.trained.score(self.buffer.push(seen)[None])[0])
        if self.test == "none":
            return {"alarm": float(score >= self.threshold), "score": score}
        ratio = self.wls.estimator.ratio(estimate, self.test)
        over = score / self.threshold if self.threshold > 0 else (math.inf if score >= 0 else math.nan)  # 0: always
        union = float(union_score(over, ratio))
        return {"alarm": float(union >= 1.0), "score": union, "model_score": score, "wls_score": ratio}


def union_score(model: np.ndarray | float, test: np.ndarray | float) -> np.ndarray | float:
    """The score of a model's alarm or'ed with a test's, both as statistic over threshold (1 and up alarms):
    the model's, raised to the test's where the test fails, so the model's ranking of the steps the test
    passes is kept. It is 1 or more exactly where either alarms."""
    return np.fmax(model, np.where(np.asarray(test) > 1.0, test, np.nan))


@register(LearnedDetector)
def build(spec: LearnedDetector, asm: "Assembly", base_dir: Path) -> LearnedRun:
    """Load the checkpoint and check it was made for this feeder and these signals."""
    from cosim.detection.cnn_rnn import load

    path = (base_dir / spec.model).resolve()
    if not path.is_file():
        raise DetectorError(f"model file {path} does not exist", "model")
    try:
        trained = load(path)
    except ValueError as exc:
        raise DetectorError(str(exc), "model") from None
    feeder = asm.loaded.scenario.grid.feeder
    if trained.feeder != feeder:
        raise DetectorError(f"{path} was trained on feeder {trained.feeder}, the scenario's is {feeder}", "model")
    # the meters read: a residual reads its meter's, the clock none
    signals = list(dict.fromkeys(n.removeprefix(RESID) for n in trained.layout.names if n not in CLOCK))
    published = set(asm.model.signal_names)
    missing = [n for n in signals if n not in published]
    if missing:
        raise DetectorError(f"{path} reads {len(missing)} signal(s) this run does not publish, e.g. "
                            f"{', '.join(missing[:3])}", "model")
    metered = set(asm.estimator.meters.names) if asm.estimator is not None else set(trained.layout.names)
    unmetered = [n for n in signals if n not in metered]
    if unmetered:  # an unmetered signal carries no meter noise: scoring it would read the ground truth
        raise DetectorError(f"{path} was trained on another measurement set: {len(unmetered)} of its "
                            f"{len(signals)} signals are not metered in this run (e.g. "
                            f"{', '.join(unmetered[:3])}); train it on a dataset made with this run's metering",
                            "model")
    test = trained.wls_test if spec.wls_test is None else spec.wls_test
    wls = build_wls(WLSDetector(), asm, base_dir) if trained.hyper.residuals or test != "none" else None
    clock = clock_features(pd.DatetimeIndex(asm.inputs.times)) if trained.hyper.clock else None  # the dataset's `time`
    return LearnedRun(trained, trained.threshold if spec.threshold is None else spec.threshold, wls, test, clock)
