"""Kind `python`: a user's detector class from `file.py:Class`.

The interface (docs/detection.md): `__init__(**params)`; optional `setup(names)` with the signal
names of a window's columns; optional `fit(windows, labels)` with a dataset's windows (n x window
x names of seen values) and 0/1 labels when the block has `fit: DATASET`; `score(window) -> float`
on one window (higher = more suspicious); it alarms at `score >= threshold` (the block's, else
the class's `threshold` attribute, else 0.5). A `score` that raises or returns no number is a
`detector_error` event of that step and the run goes on.
"""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

from pydantic import Field

from cosim.detection.base import DetectorBase
from cosim.detection.registry import DetectorError, register

if TYPE_CHECKING:
    from cosim.assembly import Assembly
    from cosim.eventlog import EventLog


class PythonDetector(DetectorBase):
    """A user's detector class scoring windows of seen values."""

    kind: Literal["python"] = "python"
    path: str = Field(description="<file.py>:<ClassName>, relative to the scenario")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the constructor")
    signals: list[str] | None = Field(default=None, description="signal patterns of a window's columns "
                                                                 "(default: the metered signals)")
    window: int = Field(default=1, ge=1, le=10_000, description="steps per window")
    threshold: float | None = Field(default=None, description="default: the class's threshold, else 0.5")
    fit: str | None = Field(default=None, description="a cosim dataset folder to fit on, relative to the scenario")


class PythonRun:
    """The user's object on the window of the last `window` steps; its failures become events."""

    def __init__(self, obj: Any, name: str, names: tuple[str, ...], window: int, threshold: float,
                 events: "EventLog"):
        from cosim.detection.windows import WindowBuffer

        self.obj, self.name, self.threshold, self.events = obj, name, threshold, events
        self.buffer = WindowBuffer(names, window)

    def step(self, k: int, seen: Mapping[str, float]) -> dict[str, float | str]:
        window = self.buffer.push(seen)
        try:
            score = float(self.obj.score(window.copy()))
        except Exception:  # noqa: BLE001 - a faulty plug-in must not stop the run
            score = math.nan
        if math.isnan(score):
            self.events.add(k, "detector_error", self.name)
            return {"alarm": 0.0, "score": math.nan}
        return {"alarm": float(score >= self.threshold), "score": score}


def load_object(spec: PythonDetector, base_dir: Path) -> Any:
    """An instance of the block's class, constructed with its params."""
    from controllers.base import ControllerError
    from controllers.plugin import load_module, split_target

    try:
        file, cls_name = split_target(spec.path)
    except ControllerError as exc:
        raise DetectorError(str(exc), "path") from None
    file_path = (base_dir / file).resolve()
    if not file_path.is_file() or file_path.suffix != ".py":
        raise DetectorError(f"detector file {file_path} is not an existing .py file", "path")
    try:
        cls = getattr(load_module(file_path), cls_name, None)
    except ControllerError as exc:
        raise DetectorError(str(exc), "path") from None
    if not callable(getattr(cls, "score", None)):
        raise DetectorError(f"{file_path} has no class {cls_name!r} with a score(window) method", "path")
    try:
        return cls(**spec.params)
    except Exception as exc:  # noqa: BLE001
        raise DetectorError(f"{cls_name}(**params) raised {type(exc).__name__}: {exc}", "params") from None


def signal_columns(patterns: list[str] | None, asm: "Assembly") -> tuple[str, ...]:
    """The run's signals matching the patterns (default: the metered ones), in publication order."""
    if patterns is None:
        return asm.estimator.meters.names
    names = asm.model.signal_names
    for p in patterns:
        if not fnmatch.filter(names, p):
            raise DetectorError(f"signal pattern {p!r} matches no signal of this run", "signals")
    return tuple(n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns))


def _call(obj: Any, method: str, *args: Any) -> None:
    """Call an optional plug-in method; what it raises is bad input naming the method."""
    fn = getattr(obj, method, None)
    if fn is None:
        return
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001
        raise DetectorError(f"{type(obj).__name__}.{method} raised {type(exc).__name__}: {exc}", "path") from None


@register(PythonDetector)
def build(spec: PythonDetector, asm: "Assembly", base_dir: Path) -> PythonRun:
    """Construct the plug-in, give it its column names and, with `fit`, a dataset's windows."""
    obj = load_object(spec, base_dir)
    names = signal_columns(spec.signals, asm)
    _call(obj, "setup", list(names))
    if spec.fit is not None:
        from cosim.detection.dataset import DatasetError, read_dataset

        try:
            data = read_dataset((base_dir / spec.fit).resolve())
            windows, labels = data.windows(names, spec.window, split="train")
        except DatasetError as exc:
            raise DetectorError(str(exc), "fit") from None
        _call(obj, "fit", windows, labels)
    threshold = spec.threshold if spec.threshold is not None else float(getattr(obj, "threshold", 0.5))
    return PythonRun(obj, spec.label, names, spec.window, threshold, asm.events)
