"""Bad events and detector settings: exit status 2, one paragraph naming file, line, field and what was expected."""

from __future__ import annotations

import pytest

from events_helpers import scenario_text

CASES = [
    ("unknown line", "- {at: 10min, duration: 5min, kind: line_outage, line: 99}",
     "events[0].line", "line 99 does not exist (lines are numbered 1..37)"),
    ("normally open line", "- {at: 10min, duration: 5min, kind: line_outage, line: 33}",
     "events[0].line", "line 33 is normally open"),
    ("unknown trafo", "- {at: 10min, duration: 5min, kind: trafo_outage, trafo: 1}",
     "events[0].trafo", "trafo 1 does not exist (the feeder has no trafos)"),
    ("unknown bus", "- {at: 10min, duration: 5min, kind: load_step, bus: 40, factor: 2}",
     "events[0].bus", "bus 40 does not exist"),
    ("unknown stealthy bus", "- {at: 10min, duration: 5min, kind: fdi_stealthy, buses: [3, 34], delta_p_mw: 0.1}",
     "events[0].buses", "bus 34 does not exist"),
    ("unknown generator", "- {at: 10min, duration: 5min, kind: dg_trip, generator: pv9}",
     "events[0].generator", "generator 'pv9' matches nothing on this grid; did you mean 'pv1'?"),
    ("unknown signal", "- {at: 10min, duration: 5min, kind: fdi, target: bus.99.vm_pu, bias: 0.1}",
     "events[0].target", "signal 'bus.99.vm_pu' matches nothing on this grid"),
    ("unknown setpoint", "- {at: 10min, duration: 5min, kind: command_injection, target: pv7.q_mvar, value: 1}",
     "events[0].target", "setpoint 'pv7.q_set_mvar' matches nothing"),
    ("start beyond horizon", "- {at: 2h, duration: 5min, kind: dg_trip, generator: pv1}",
     "events[0].at", "starts at 2h, at or after the end of the run (1h)"),
    ("end beyond horizon", "- {at: 50min, duration: 20min, kind: dg_trip, generator: pv1}",
     "events[0].duration", "ends at 70min, after the end of the run (1h); shorten it to at most 10min"),
    ("rate above 1", "- {at: 10min, duration: 5min, kind: drop, target: commands, rate: 1.5}",
     "events[0].rate", "less than or equal to 1, got 1.5"),
    ("rate below 0", "- {at: 10min, duration: 5min, kind: drop, target: 'bus.*.vm_pu', rate: -0.2}",
     "events[0].rate", "greater than or equal to 0, got -0.2"),
    ("negative delay", "- {at: 10min, duration: 5min, kind: delay, target: commands, steps: -3}",
     "events[0].steps", "greater than or equal to 1, got -3"),
    ("negative start", "- {at: -10, duration: 5min, kind: dg_trip, generator: pv1}",
     "events[0].at", "must be a time from the start of the run"),
    ("off the step grid", "- {at: 90s, duration: 5min, kind: dg_trip, generator: pv1}",
     "events[0].at", "start time 90s is not a whole number of steps (the step is 1min)"),
    ("replay before the run", "- {at: 5min, duration: 5min, kind: replay, target: bus.3.vm_pu, window: 10min}",
     "events[0].window", "would begin before the run starts"),
    ("unknown kind", "- {at: 5min, duration: 5min, kind: lineoutage, line: 3}",
     "events[0]", "unknown kind 'lineoutage'"),
    ("unknown key", "- {at: 5min, duration: 5min, kind: fdi, target: bus.3.vm_pu, bais: 0.1}",
     "events[0].bais", "unknown key 'bais'; did you mean 'bias'?"),
    ("fdi without effect", "- {at: 5min, duration: 5min, kind: fdi, target: bus.3.vm_pu}",
     "events[0]", "fdi needs at least one of bias, scale"),
    ("random kind needs trafos", "- random: {kinds: [trafo_outage], rate_per_day: 3}",
     "events[0].random.kinds", "cannot generate trafo_outage events: the feeder has no transformers"),
]


@pytest.mark.parametrize("name,event,field,message", CASES, ids=[c[0] for c in CASES])
def test_bad_event_is_a_clear_error(write_scenario, cli, name, event, field, message):
    path = write_scenario(scenario_text(f"events:\n  {event}\n"))
    code, output, _ = cli("validate", path)
    assert code == 2
    text = " ".join(output.split())
    assert f"{path}, line 10, field {field}:" in text
    assert message in text
    assert "Traceback" not in output


OVERLAPS = [
    ("same signal", """\
       - {at: 10min, duration: 20min, kind: fdi, target: "bus.1?.vm_pu", bias: 0.1}
       - {at: 25min, duration: 10min, kind: replay, target: bus.18.vm_pu, window: 5min}""",
     "events[1]", "overlaps events[0] (fdi from 10min for 20min) on bus.18.vm_pu: two attacks on the same signal"),
    ("same line", """\
       - {at: 10min, duration: 20min, kind: line_outage, line: 7}
       - {at: 15min, duration: 20min, kind: line_outage, line: 7}""",
     "events[1]", "two line_outage events on the same element cannot be active at the same time"),
    ("same setpoint", """\
       - {at: 10min, duration: 20min, kind: command_injection, target: pv1.q_mvar, value: 0.1}
       - {at: 15min, duration: 20min, kind: drop, target: commands, rate: 0.5}""",
     "events[1]", "on pv1.q_set_mvar: two attacks on the same setpoint"),
]


@pytest.mark.parametrize("name,events,field,message", OVERLAPS, ids=[c[0] for c in OVERLAPS])
def test_events_that_cannot_overlap(write_scenario, cli, name, events, field, message):
    path = write_scenario(scenario_text("events:\n" + "\n".join(line[4:] for line in events.splitlines()) + "\n"))
    code, output, _ = cli("validate", path)
    text = " ".join(output.split())
    assert code == 2 and message in text and f"line 11, field {field}:" in text and "Traceback" not in output


def test_overlap_of_different_kinds_is_fine(write_scenario, cli):
    path = write_scenario(scenario_text("""\
        events:
          - {at: 10min, duration: 20min, kind: line_outage, line: 7}
          - {at: 15min, duration: 20min, kind: dg_trip, generator: pv1}
          - {at: 15min, duration: 20min, kind: fdi, target: bus.18.vm_pu, bias: 0.1}
        """))
    code, output, _ = cli("validate", path)
    assert code == 0, output


def test_detector_meters_must_exist(write_scenario, cli):
    path = write_scenario(scenario_text("""\
        detector:
          measurements: {vm_pu: {sigma: 0.01, at: [1, 2, 40]}}
        """))
    code, output, _ = cli("validate", path)
    text = " ".join(output.split())
    assert code == 2 and "field detector.measurements.vm_pu.at: bus 40 does not exist" in text
    path = write_scenario(scenario_text("""\
        detector:
          measurements: {p_mw: null, q_mvar: null, line_p_mw: null, line_q_mvar: null}
        """))
    code, output, _ = cli("validate", path)
    assert code == 2 and "33 meters cannot estimate 65 states" in " ".join(output.split())
