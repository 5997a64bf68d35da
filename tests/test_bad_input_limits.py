"""Hostile but fair scenario files: every one ends in one paragraph naming file, line, field and limit, exit 2.

The inputs that used to escape (tracebacks, hangs, silent acceptance) of issue 14, each checked
in-process through `cosim validate`; none of them gets as far as building the run.
"""

from __future__ import annotations

import pytest

from cosim.scenario import limits
from cosim.scenario.yamlpos import MAX_DEPTH, MAX_VALUES, YamlSyntaxError, load_yaml_with_lines
from tests.conftest import BASE

DEVICE = BASE + """\
devices:
  - name: inv1
    kind: inverter
    generator: pv1
    modbus: {port: 15020}
    emulate: true
"""

LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
                 for i in range(9))  # 9**9 = 387 million values once the aliases are expanded

# name: (scenario text, {extra file: bytes}, expected line, expected field, words in the message)
CASES = {
    "step_inf": (BASE.replace("step: 5min", "step: .inf"), {}, 3, "clock.step", "finite number"),
    "duration_nan": (BASE.replace("duration: 2h", "duration: .nan"), {}, 3, "clock.duration", "finite number"),
    "json_feeder_wrong_shape": (BASE.replace("feeder: ieee33", "feeder: net.json"),
                                {"net.json": b'{"_module": "pandapower.auxiliary", "_class": "pandapowerNet", '
                                             b'"_object": {"bus": 3}}'},
                                4, "grid.feeder", "is not a pandapower network"),
    "json_feeder_list": (BASE.replace("feeder: ieee33", "feeder: net.json"), {"net.json": b"[1, 2, 3]"},
                         4, "grid.feeder", "net.json"),
    "binary_register_map": (DEVICE + "    map: bin.yaml\n", {"bin.yaml": bytes(range(256)) * 4}, 15,
                            "devices[0].map", "is not UTF-8 text"),
    "binary_scenario": (b"name: t\n\xff\xfe\n", {}, None, None, "not UTF-8 text (byte 8)"),
    "nested_brackets": (BASE + "description: " + "[" * 5000 + "\n", {}, 9, None,
                        f"nested deeper than {MAX_DEPTH} levels"),
    "billion_laughs": (LAUGHS + BASE, {}, None, None, f"more than {MAX_VALUES:,} values through its aliases"),
    "recursive_alias": (BASE + "description: &d [*d]\n", {}, 9, None, "refers to the mapping or list that contains it"),
    "random_rate": (BASE + "events:\n  - random: {rate_per_day: 1e9, kinds: [line_outage]}\n", {}, 10,
                    "events[0].random.rate_per_day", f"limited to {limits.MAX_EVENTS:,} events (limit MAX_EVENTS)"),
    "random_seed": (BASE + "events:\n  - random: {rate_per_day: 2, kinds: [line_outage], seed: -3}\n", {}, 10,
                    "events[0].random.seed", "expected a seed from 0 to 4294967295, got -3"),
    "file_50mb": (BASE + "# " + "x" * 50_000_000 + "\n", {}, None, None,
                  f"limited to {limits.MAX_FILE_BYTES:,} bytes (limit MAX_FILE_BYTES)"),
    "duplicate_top_level_key": (BASE + "seed: 99\n", {}, 9, "seed", "given on line 2 and again on line 9"),
    "duplicate_mapping_key": (BASE.replace("grid: {feeder: ieee33}", "grid: {feeder: ieee33,\n  feeder: ieee69}"),
                              {}, 5, "grid.feeder", "duplicate key 'feeder' in grid: given on line 4 and again on line 5"),
    "criterion_no_metric": (BASE + "criteria: {loss_energy_kw: {max: 5}}\n", {}, 9, "criteria.loss_energy_kw",
                            "did you mean 'loss_energy_kwh'?"),
    "p_mw_1e308": (BASE.replace("p_mw: 1.0", "p_mw: 1.0e+308"), {}, 7, "generators[0].p_mw", "less than or equal to 10000"),
    "steps_1e9": (BASE.replace("duration: 2h, step: 5min", "duration: 1000000000s, step: 1s"), {}, 3, "clock",
                  f"limited to {limits.MAX_STEPS:,} steps (limit MAX_STEPS)"),
    "seed_negative": (BASE.replace("seed: 7", "seed: -1"), {}, 2, "seed", "greater than or equal to 0"),
    "stub_args_unknown": (DEVICE + "    stub_args: {nonsense: 1}\n", {}, 15, "devices[0].stub_args",
                          "the inverter stub has no option 'nonsense' (its options: "),
    "stub_args_type": (DEVICE + "    stub_args: {ramp_rate: fast}\n", {}, 15, "devices[0].stub_args",
                       "invalid float value: 'fast'"),
    "stub_args_tick": (DEVICE + "    stub_args: {tick: 0}\n", {}, 15, "devices[0].stub_args.tick", "tick period > 0 s"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_paragraph_and_exit_2(case, tmp_path, cli):
    text, files, line, field, words = CASES[case]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    path = tmp_path / "scenario.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    code, output, result = cli("validate", path)
    assert code == 2, output
    assert isinstance(result.exception, SystemExit), result.exception
    flat = " ".join(output.split())  # rich may wrap long lines
    assert flat.startswith("error: ") and "Traceback" not in output
    assert len(output.strip().splitlines()) <= 3  # one paragraph (rich wraps at 80 columns)
    assert str(path) in flat.replace(" ", "") or path.name in flat
    if line is not None:
        assert f"line {line}" in flat
    if field is not None:
        assert f"field {field}:" in flat
    assert words in flat


def test_markup_in_messages_is_printed_as_text(write_scenario, cli):
    path = write_scenario(BASE.replace("grid: {feeder: ieee33}", "grid: {feeder: ieee33, voltage_limits: [1.05, 0.95]}"))
    code, output, _ = cli("validate", path)
    assert code == 2 and "expected [low, high] in pu" in " ".join(output.split())


def test_value_named_once(write_scenario, cli):
    code, output, _ = cli("validate", write_scenario(BASE.replace("profile: residential", "profile: hourly")))
    assert code == 2 and output.count("got 'hourly'") == 1


def test_plural_of_bus(write_scenario, cli):
    events = "events:\n  - {kind: load_step, bus: 99, at: 10min, duration: 10min, factor: 1.5}\n"
    code, output, _ = cli("validate", write_scenario(BASE + events))
    flat = " ".join(output.split())
    assert code == 2 and "buses are numbered 1..33" in flat and "buss" not in flat


def test_memory_for_planned_steps_is_checked(write_scenario):
    """2 million steps on IEEE 33 (32 loads, 2 plants): 37 columns x 8 bytes x 3 copies = 1,776 MB of inputs."""
    from cosim.scenario.loader import load_scenario

    scn = load_scenario(write_scenario(BASE)).scenario.model_copy(deep=True)
    scn.clock.duration = 2_000_000 * 300.0
    assert limits.input_bytes(scn, 32) == 2_000_000 * 37 * 8 * 3
    [(path, message)] = limits.step_problems(scn, 32, available=3 * 2**30)
    assert path == ("clock",) and "about 1.7 GiB for the input series" in message and "3.0 GiB" in message
    assert limits.step_problems(scn, 32, available=4 * 2**30) == []


def test_aliases_within_the_limit_still_load():
    data, lines = load_yaml_with_lines("base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\nmore: [*b, *b]\n")
    assert data["use"] == {"x": 1, "y": 3} and data["more"] == [{"x": 1, "y": 2}] * 2
    assert lines[("use",)] == 2


def test_depth_limit_counts_expanded_aliases():
    deep = "[" * 40 + "]" * 40
    with pytest.raises(YamlSyntaxError, match="once its aliases are expanded"):
        load_yaml_with_lines(f"a: &a {deep}\nb: &b {'[' * 30}*a{']' * 30}\n")


FLOOD = """\
from controllers.base import Controller


class Flood(Controller):
    def act(self, observation):
        junk = {f"junk{i}": 1.0 for i in range(10_000)} if observation["time.step"] >= FROM else {}
        return {**junk, "pv1.q_set_mvar": 0.1}
"""


def test_event_flood_is_capped_and_summarised(tmp_path, write_scenario, cli):
    """10,000 junk keys on every step: at most MAX_TARGETS rows per kind plus one summary row, and a bounded
    number of terminal lines; the valid setpoint still reaches the grid."""
    import pandas as pd

    from cosim.eventlog import MAX_TARGETS
    from cosim.sims.controller import MAX_WARNINGS

    (tmp_path / "flood.py").write_text("FROM = 1\n" + FLOOD, encoding="utf-8")
    path = write_scenario(BASE.replace("duration: 2h", "duration: 30min") + "controller: {kind: python, path: flood.py:Flood}\n")
    code, output, _ = cli("run", path, "--out", tmp_path / "out", "-q")
    assert code == 0, output[-2000:]
    events = pd.read_csv(tmp_path / "out" / "events.csv")
    errors = events[events.kind == "controller_error"]
    assert len(errors) == MAX_TARGETS + 1  # each junk target's steps merge into one row; the rest in one summary
    assert errors.target.iloc[-1] == f"({10_000 - MAX_TARGETS:,} other targets, first junk{MAX_TARGETS})"
    assert output.count("controller error at step") <= MAX_WARNINGS
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert (ts["ctrl.pv1.q_set_mvar"] == 0.1).all()


def test_junk_keys_on_the_first_step_are_one_short_paragraph(tmp_path, write_scenario, cli):
    (tmp_path / "flood.py").write_text("FROM = 0\n" + FLOOD, encoding="utf-8")
    code, output, _ = cli("validate", write_scenario(BASE + "controller: {kind: python, path: flood.py:Flood}\n"))
    flat = " ".join(output.split())
    assert code == 2 and "junk4 is not an action of this scenario; and 9,995 more" in flat and len(flat) < 1000
