"""The detectors of one run, built from the scenario's blocks, and the signals they publish.

One detector publishes `detector.alarm`, `detector.score` (and its kind's extras, e.g. WLS's
`detector.chi2`); several publish `detector.<name>.alarm`, ... . Each sees only what the
measurement channel delivers. The WLS estimators of a run on the same network and meters (`wls` blocks, a
`learned` block's own) share one estimate per step (`Assembly.estimate_sources`, `cosim.detection.kinds.wls`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from cosim.detection.models import detector_specs
from cosim.detection.registry import Detector, DetectorError, kind_of
from cosim.scenario.errors import Problem, ScenarioError, field_path
from cosim.scenario.yamlpos import line_for

if TYPE_CHECKING:
    from cosim.assembly import Assembly


@dataclass
class Running:
    """One detector of a run and the prefix of its signals."""

    name: str
    detector: Detector
    prefix: str  # "detector" alone, "detector.<name>" among several

    def signals(self, k: int, seen: Mapping[str, float]) -> dict[str, float | str]:
        """Step k's outputs as recorded signals."""
        return {f"{self.prefix}.{key}": value for key, value in self.detector.step(k, seen).items()}


def signal_prefixes(scn) -> dict[str, str]:
    """Detector name -> prefix of its signals, for the scenario's blocks."""
    specs = detector_specs(scn)
    return {d.label: "detector" if len(specs) == 1 else f"detector.{d.label}" for d in specs}


def build_detectors(asm: "Assembly") -> list[Running]:
    """Every detector block of the run built; ScenarioError naming file, line and field when one cannot run."""
    loaded = asm.loaded
    scn = loaded.scenario
    prefixes = signal_prefixes(scn)
    out = []
    for i, spec in enumerate(detector_specs(scn)):
        try:
            out.append(Running(spec.label, kind_of(spec.kind).build(spec, asm, loaded.base_dir), prefixes[spec.label]))
        except DetectorError as exc:
            where = ("detector",) if scn.detector is not None else ("detectors", i)
            path = (*where, exc.field) if exc.field else where
            raise ScenarioError(loaded.path, [Problem(field_path(path), str(exc), line_for(loaded.lines, path))]) \
                from None
    return out
