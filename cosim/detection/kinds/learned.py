"""Kind `learned`: a detector trained by `cosim train-detector` (a torch checkpoint with its metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping

from pydantic import Field

from cosim.detection.base import DetectorBase
from cosim.detection.registry import DetectorError, register

if TYPE_CHECKING:
    from cosim.assembly import Assembly
    from cosim.detection.cnn_rnn import Trained


class LearnedDetector(DetectorBase):
    """A trained model: alarm when its attack probability reaches the checkpoint's (or this) threshold."""

    kind: Literal["learned"] = "learned"
    model: str = Field(description="checkpoint of cosim train-detector, relative to the scenario")
    threshold: float | None = Field(default=None, ge=0, le=1, description="default: the checkpoint's")


class LearnedRun:
    """The model on the window of the last `window` steps of seen values."""

    def __init__(self, trained: "Trained", threshold: float):
        from cosim.detection.windows import WindowBuffer

        self.trained, self.threshold = trained, threshold
        self.buffer = WindowBuffer(trained.layout.names, trained.hyper.window)

    def step(self, k: int, seen: Mapping[str, float]) -> dict[str, float | str]:
        score = float(self.trained.score(self.buffer.push(seen)[None])[0])
        return {"alarm": float(score >= self.threshold), "score": score}


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
    missing = [n for n in trained.layout.names if n not in set(asm.model.signal_names)]
    if missing:
        raise DetectorError(f"{path} reads {len(missing)} signal(s) this run does not publish, e.g. "
                            f"{', '.join(missing[:3])}", "model")
    metered = set(asm.estimator.meters.names) if asm.estimator is not None else set(trained.layout.names)
    unmetered = [n for n in trained.layout.names if n not in metered]
    if unmetered:  # an unmetered signal carries no meter noise: scoring it would read the ground truth
        raise DetectorError(f"{path} was trained on another measurement set: {len(unmetered)} of its "
                            f"{len(trained.layout.names)} signals are not metered in this run (e.g. "
                            f"{', '.join(unmetered[:3])}); train it on a dataset made with this run's metering",
                            "model")
    return LearnedRun(trained, trained.threshold if spec.threshold is None else spec.threshold)
