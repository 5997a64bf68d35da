"""The kind registry: complete kinds only, no silent fallbacks, and imports without cycles or mosaik."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
import yaml

from cosim.events.base import EventProblem, Target, _Event
from cosim.events.measurement import Attack
from cosim.events.randomize import expand, random_params, unusable
from cosim.events.registry import MeasurementKind, UnknownKind, kind_of, register, unregister
from cosim.events.targets import Catalog
from cosim.grid.feeders import load_feeder
from cosim.events.models import RandomSpec
from cosim.scenario.schema import Scenario
from events_helpers import scenario_text


class Blip(_Event):
    """A throw-away measurement kind for these tests."""

    kind: Literal["blip"]
    target: Target


def _noon():
    scn = Scenario.model_validate(yaml.safe_load(scenario_text()))
    return scn, Catalog.of(scn, load_feeder("ieee33"))


@pytest.fixture
def blip():
    """Register `blip`, a kind with a transform but no random parameters; unregister it afterwards."""

    @register
    class BlipKind(MeasurementKind):
        model = Blip
        rank = 10_000

        def measurement_attack(self, event, rng, step_s, estimator, topology_at):
            return Attack(event, rng)

    yield kind_of("blip")
    unregister("blip")


def test_a_kind_without_random_parameters_raises_instead_of_falling_through(blip):
    scn, cat = _noon()
    assert not blip.randomizable and kind_of("fdi").randomizable
    with pytest.raises(UnknownKind, match="random schedules cannot generate blip events"):
        random_params("blip", np.random.default_rng(0), cat, 60.0, 600.0, 600.0)
    with pytest.raises(UnknownKind):
        unusable("blip", cat)
    spec = RandomSpec.model_construct(kinds=["blip"], rate_per_day=50.0, seed=1, duration=(600.0, 1200.0))
    with pytest.raises(EventProblem) as exc:
        expand(spec, 2, scn, cat, (), [])
    assert exc.value.key == "random.kinds" and "cannot generate blip events" in exc.value.message


def test_an_unknown_kind_is_an_error_everywhere():
    scn, cat = _noon()
    with pytest.raises(UnknownKind, match="unknown event kind 'nope'; known kinds: line_outage, trafo_outage"):
        kind_of("nope")
    with pytest.raises(UnknownKind, match="unknown event kind 'nope'"):
        random_params("nope", np.random.default_rng(0), cat, 60.0, 600.0, 600.0)
    spec = RandomSpec.model_construct(kinds=["fdi", "nope"], rate_per_day=50.0, seed=1, duration=(600.0, 1200.0))
    with pytest.raises(EventProblem, match="unknown event kind 'nope'"):
        expand(spec, 0, scn, cat, (), [])


def test_random_kinds_in_a_scenario_must_be_registered(write_scenario, cli):
    path = write_scenario(scenario_text("events:\n  - random: {kinds: [fdi, command_tamperr], rate_per_day: 3}\n"))
    code, output, _ = cli("validate", path)
    text = " ".join(output.split())
    assert code == 2 and "field events[0].random.kinds[1]" in text and "'command_tamper'" in text


def test_registration_rejects_incomplete_and_duplicate_kinds():
    class NoTransform(MeasurementKind):
        model = Blip
        rank = 10_001

    with pytest.raises(TypeError, match="acts on the measurement path but defines no measurement_attack"):
        register(NoTransform)

    class Twice(MeasurementKind):
        model = kind_of("fdi").model
        rank = 10_002

        def measurement_attack(self, event, rng, step_s, estimator, topology_at):
            return Attack(event, rng)

    with pytest.raises(TypeError, match="'fdi' is registered twice"):
        register(Twice)

    class SameRank(Twice):
        model = Blip
        rank = kind_of("fdi").rank

    with pytest.raises(TypeError, match="have the same rank"):
        register(SameRank)
    with pytest.raises(UnknownKind):
        kind_of("blip")  # none of them got in
