"""The scenario's `detector:` / `detectors:` blocks: the union of every registered kind's model.

`detector: {...}` without `kind` is `wls` (the keys of earlier versions work unchanged);
`detectors: [...]` runs several side by side. `cosim.scenario.schema` imports from here.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

import cosim.detection.kinds  # noqa: F401  (registers every kind)
from cosim.detection.base import DetectorBase, Measurements, Meters  # noqa: F401  (re-exported)
from cosim.detection.kinds.wls import WLSDetector
from cosim.detection.registry import all_kinds

Detector = WLSDetector  # the default kind; its model also describes the run's metering
DETECTOR_KINDS = tuple(k.name for k in all_kinds())
METERING = ("noise", "measurements")


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("kind", "wls")
    return getattr(value, "kind", None)


DetectorSpec = Annotated[Union[tuple(Annotated[k.model, Tag(k.name)] for k in all_kinds())],  # type: ignore
                         Discriminator(_tag)]


def detector_specs(scn: Any) -> list[DetectorBase]:
    """The scenario's detector blocks in order (`detector` or `detectors`)."""
    return [scn.detector] if scn.detector is not None else list(scn.detectors)


def check_detectors(detector: DetectorBase | None, detectors: list[DetectorBase]) -> None:
    """Scenario-level rules: not both keys, unique names, one metering (ValueError says which rule)."""
    if detector is not None and detectors:
        raise ValueError("give either detector (one) or detectors (a list), not both")
    names = [d.label for d in detectors]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"detectors need distinct names: {', '.join(twice)} appears more than once "
                         "(set name: on each, e.g. {kind: wls, name: wls_lnr, alarm: lnr})")
    for key in METERING:
        given = {repr(getattr(d, key)) for d in detectors if key in d.model_fields_set}
        if len(given) > 1:
            raise ValueError(f"detectors share one metering: {key} differs between them (set it on one only)")


def metering_of(scn: Any) -> WLSDetector | None:
    """The run's metering as a WLS block (None without detectors or a `metering:` block): the first wls block,
    with the metering keys any block sets, or carrying the scenario's `metering:` block."""
    from cosim.scenario.metering import run_metering

    specs = detector_specs(scn)
    run = run_metering(scn)
    if not specs and run is None:
        return None
    base = next((d for d in specs if isinstance(d, WLSDetector)), WLSDetector())
    if run is not None:
        base = base.model_copy()
        base._run_metering = run
        return base
    update = {key: getattr(d, key) for d in specs for key in METERING if key in d.model_fields_set}
    return base.model_copy(update=update) if update else base
