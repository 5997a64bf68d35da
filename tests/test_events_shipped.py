"""The shipped attack and disruption scenarios validate, run, and show what the docs say they show."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from events_helpers import SHIPPED

ATTACKS = sorted(SHIPPED.glob("*.yaml"))


def test_every_kind_has_a_shipped_scenario():
    names = {p.stem for p in ATTACKS}
    for kind in ("fdi", "fdi-stealthy", "replay", "delay", "drop", "sensor-stuck", "timestamp-skew",
                 "command-injection", "command-tamper", "line-outage", "dg-trip", "load-step", "cloud-transient",
                 "red-team-day"):
        assert kind in names


@pytest.mark.parametrize("path", ATTACKS, ids=[p.stem for p in ATTACKS])
def test_shipped_scenario_validates(path, cli):
    code, output, _ = cli("validate", path)
    assert code == 0, output
    scn = load_scenario(path).scenario
    assert scn.grid.feeder == "ieee33" and {g.kind for g in scn.generators} == {"pv", "wind"}


@pytest.mark.slow
def test_shipped_scenarios_show_caught_and_blind(tmp_path):
    """The README's detection table on the shipped days (impact baselines, tested elsewhere, left out)."""
    metrics = {}
    for name in ("fdi", "fdi-stealthy", "line-outage", "clean-day"):
        loaded = load_scenario(SHIPPED / f"{name}.yaml")
        loaded.scenario.impact.baseline = False
        outcome = run_scenario(loaded, tmp_path / name)
        assert outcome.status == "ok", outcome.message
        metrics[name] = outcome.metrics
    assert metrics["fdi"]["detector_events_detected"] == metrics["fdi"]["detector_events"] == 4
    assert metrics["fdi"]["detector_tpr"] >= 0.85
    assert metrics["fdi-stealthy"]["detector_tpr"] <= 0.05
    assert metrics["line-outage"]["unserved_energy_kwh"] > 500
    n, fpr = 1440, metrics["clean-day"]["detector_fpr"]
    assert abs(fpr - 0.01) <= 3 * np.sqrt(0.01 * 0.99 / n)
