"""The device-kind registry (`hil/kinds/`): every kind declares itself completely, the schema learns the kinds
without importing hil, and the kind-specific keys are checked from the declarations."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap

import pytest

from cosim.scenario.devices import DEVICE_KINDS, KINDS, Device, _discover, kinds_dir
from hil import MAPS_DIR
from hil.coupling import Coupling
from hil.kinds import module
from hil.registers import load_map
from hil_support import REPO

SCENARIO = {"name": "t", "clock": {"duration": "1min", "step": "1s"}, "grid": {"feeder": "ieee33"},
            "generators": [{"name": "pv1", "kind": "pv", "bus": 18, "p_mw": 1.0}]}


def test_the_schema_learns_the_kinds_without_importing_hil_pymodbus_or_mosaik():
    code = ("import sys, cosim.scenario.schema, cosim.scenario.loader; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hil', 'pymodbus', 'mosaik', 'mosaik_api_v3')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    assert DEVICE_KINDS == ("capbank", "custom", "inverter", "recloser", "regulator")


@pytest.mark.parametrize("kind", DEVICE_KINDS)
def test_every_kind_declares_map_stub_keys_limits_coupling_and_checks(kind):
    mod, decl = module(kind), KINDS[kind]
    assert mod.SCHEMA == ast.literal_eval(repr(mod.SCHEMA))  # a literal, as the schema reads it
    assert decl.map == mod.SCHEMA["map"] and decl.stub == mod.SCHEMA["stub"]
    assert issubclass(mod.COUPLING, Coupling) and mod.__doc__
    if decl.map is None:  # custom: the scenario brings its map
        return
    regmap = load_map(MAPS_DIR / decl.map)
    c = mod.COUPLING
    for point in (*c.reads, *c.default_writable):
        assert point in regmap, point
    for point in c.default_writable:
        assert regmap[point].writable, point
    for key, limit in decl.limits.items():  # every limit becomes a guard rule of a writable point
        for point in [limit["point"]] if "point" in limit else limit["rate_of"]:
            assert point in c.default_writable, (key, point)
    if decl.stub is not None:
        stub = importlib.import_module(decl.stub)
        cls = next(v for v in vars(stub).values() if getattr(v, "__module__", None) == decl.stub and hasattr(v, "tick"))
        assert cls.name == kind and cls.map_file == decl.map


def test_a_kind_is_a_module_found_by_its_file_name(tmp_path):
    (tmp_path / "heatpump.py").write_text(textwrap.dedent('''\
        import this_module_is_never_imported
        SCHEMA = {"map": "heatpump.yaml", "stub": None,
                  "keys": {"zone": {"type": "str", "doc": "the thermal zone"}},
                  "limits": {"setpoint_c": {"type": "range", "point": "SetC", "doc": "room setpoint"}}}
        '''), encoding="utf-8")
    (tmp_path / "_helpers.py").write_text("x = 1\n", encoding="utf-8")
    found = _discover(tmp_path)
    assert list(found) == ["heatpump"]
    assert found["heatpump"].keys["zone"]["type"] == "str" and found["heatpump"].limits["setpoint_c"]["point"] == "SetC"
    assert "this_module_is_never_imported" not in sys.modules
    assert kinds_dir() == REPO / "hil" / "kinds"


@pytest.mark.parametrize("device, message", [
    ({"kind": "capbank", "bus": 18, "generator": "pv1"}, "generator is only for kind inverter, not capbank"),
    ({"kind": "inverter", "bus": 18, "line": 3}, "line is only for kind recloser, not inverter"),
    ({"kind": "regulator", "bus": 18, "rating_mvar": 1}, "rating_mvar is only for kind capbank, not regulator"),
    ({"kind": "recloser", "line": 3, "points": ["Status"]}, "points is only for kind custom, not recloser"),
    ({"kind": "custom"}, "kind custom needs map"),
    ({"kind": "custom", "map": "m.yaml", "emulate": True}, "kind custom has no firmware stub"),
    ({"kind": "heatpump"}, "Input should be 'capbank', 'custom', 'inverter', 'recloser' or 'regulator'"),
])
def test_kind_keys_are_checked_from_the_declarations(device, message):
    with pytest.raises(ValueError, match=message):
        Device.model_validate({"name": "d1", "modbus": {"port": 15020}, **device})


def test_limits_of_another_kind_are_refused_with_their_path(write_scenario):
    from cosim.scenario.errors import ScenarioError
    from cosim.scenario.loader import load_scenario

    path = write_scenario(textwrap.dedent("""\
        name: t
        clock: {duration: 1min, step: 1s}
        grid: {feeder: ieee33}
        devices:
          - {name: cap1, kind: capbank, bus: 18, modbus: {port: 15021}, limits: {step: [0, 2], max_step_pct_per_s: 5}}
        """))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    [problem] = err.value.problems
    assert problem.field == "devices[0].limits.max_step_pct_per_s" and "kind inverter, not of capbank" in problem.message


def test_the_guard_rules_come_from_the_declared_limits():
    from cosim.scenario.schema import Scenario
    from hil.devices import coupling

    scn = Scenario.model_validate({**SCENARIO, "devices": [
        {"name": "inv1", "kind": "inverter", "bus": 18, "modbus": {"port": 15020},
         "limits": {"w_max_lim_pct": [10, 90], "max_step_pct_per_s": 5}},
        {"name": "cap1", "kind": "capbank", "bus": 30, "modbus": {"port": 15021}, "limits": {"step": [0, 2]},
         "stub_args": {"kvar_per_step": 150}}]})
    inv, cap = (coupling(scn, d, REPO) for d in scn.devices)
    rules = inv.rules()
    assert (rules["WMaxLimPct"].lo, rules["WMaxLimPct"].hi, rules["WMaxLimPct"].rate) == (10, 90, 5)
    assert (rules["VArWMaxPct"].lo, rules["VArWMaxPct"].rate) == (-100, 5)  # the map's own range, the rate limit
    assert rules["WMaxLim_Ena"].rate is None
    assert (cap.rules()["StepCmd"].lo, cap.rules()["StepCmd"].hi) == (0, 2)
    assert cap.rating_mvar == pytest.approx(4 * 0.150)  # the stub's default steps, the scenario's kvar per step
    assert inv.stub_argv()[:4] == ["--w-max", "1e+06", "--va-max", "1.1e+06"]
