"""The commissioning probe, `cosim devices up|down`, the grid server on its own, and the `devices:` checks."""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
import textwrap

import pytest
from pymodbus.client import AsyncModbusTcpClient

from cosim.scenario.errors import ScenarioError
from cosim.scenario.loader import load_scenario
from hil.grid_server import GridServer, entries, load_layout
from hil.guard import Guard, Rule
from hil_support import REPO, Stub, free_port, wait_for

HEAD = """\
name: hil-check
clock: {duration: 1min, step: 1s}
grid: {feeder: ieee33}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 1.0}
"""


@pytest.fixture
def inverter():
    stub = Stub("inverter")
    yield stub
    stub.stop()


def test_probe_decodes_sunspec_and_a_map(cli, inverter):
    code, output, _ = cli("probe", "--port", inverter.port)
    assert code == 0, output
    assert "CosimTestbed" in output and "WMaxLimPct" in output
    code, output, _ = cli("probe", "--port", inverter.port, "--map", "hil/maps/inverter.yaml")
    assert code == 0 and "VTermPu" in output


def test_probe_imports_no_grid_plotting_or_cosimulation_code(inverter):
    """`cosim probe` starts fast because its path imports neither the grid (pandapower, scipy), plotting nor mosaik
    (the start-up time itself is measured with `python -X importtime`, see docs/hil.md)."""
    code = ("import sys; from typer.testing import CliRunner; from cosim.cli import app; "
            f"r = CliRunner().invoke(app, ['probe', '--port', '{inverter.port}']); assert r.exit_code == 0, r.output; "
            "print(' '.join(m for m in ('pandapower', 'matplotlib', 'scipy', 'mosaik', 'torch', 'pandas', 'numba') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_probe_says_why_it_cannot_read(cli, inverter):
    code, output, result = cli("probe", "--port", free_port(), "--timeout", "0.3")
    assert code == 2 and "connection refused" in output and result.exception.__class__ is SystemExit
    code, output, _ = cli("probe", "--port", inverter.port, "--map", "hil/maps/capbank.yaml")
    assert code == 2 and "0x02 ILLEGAL_ADDRESS" in output and "registers 0..17" in output
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        code, output, _ = cli("probe", "--port", silent.getsockname()[1], "--timeout", "0.3")
    assert code == 2 and "did not answer" in output
    assert "Traceback" not in output


def test_devices_up_and_down(cli, tmp_path, monkeypatch):
    port = free_port()
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + textwrap.dedent(f"""\
        devices:
          - {{name: inv1, kind: inverter, bus: 18, modbus: {{port: {port}}}, emulate: true}}
        """), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    try:
        code, output, _ = cli("devices", "up", path)
        assert code == 0 and "started" in output, output
        code, output, _ = cli("devices", "up", path)
        assert code == 0 and "already" in output
        code, output, _ = cli("probe", "--port", port)
        assert code == 0 and "FW-STUB-PV3PH" in output
    finally:
        code, output, _ = cli("devices", "down", path)
    assert code == 0 and "stopped" in output
    assert wait_for(lambda: cli("probe", "--port", port, "--timeout", "0.2")[0] == 2, 5)
    assert not list((tmp_path / ".cosim" / "devices" / "hil-check").glob("*.json"))


def test_the_grid_server_serves_the_grid_and_guards_commands():
    table = entries(load_layout(), buses=[1, 2, 3], lines=[1, 2], generators=["pv1"])
    rules = {"pv1.p_limit_mw": Rule(0, 1.0), "pv1.q_set_mvar": Rule(-1.1, 1.1)}

    async def main(read_only: bool):
        server = GridServer(table, Guard("scada", rules.keys(), rules, read_only), port=0)
        port = await server.start()
        server.update({"bus.1.vm_pu": 1.0, "bus.3.vm_pu": 0.97, "line.2.i_ka": 0.12}, [True, False], step=4)
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
        await client.connect()
        f32 = client.DATATYPE.FLOAT32
        try:
            rr = await client.read_input_registers(0, count=6, device_id=1)
            vm = [client.convert_from_registers(rr.registers[i:i + 2], f32) for i in (0, 2, 4)]
            current = client.convert_from_registers((await client.read_input_registers(30002, count=2)).registers, f32)
            step = client.convert_from_registers((await client.read_input_registers(60012, count=2)).registers, f32)
            coils = (await client.read_coils(1, count=2, device_id=1)).bits[:2]  # coil i is line i
            wrote = await client.write_registers(0, client.convert_to_registers(1.7, f32), device_id=1)
            half = await client.write_register(0, 1, device_id=1)  # half a float32
            back = client.convert_from_registers((await client.read_holding_registers(0, count=2)).registers, f32)
            return vm, current, step, coils, wrote, half, back, server.take_commands(), server.notes
        finally:
            client.close()
            await server.stop()

    vm, current, step, coils, wrote, half, back, commands, notes = asyncio.run(main(False))
    assert vm[0] == 1.0 and vm[2] == pytest.approx(0.97) and math.isnan(vm[1])  # unpublished: NaN
    assert current == pytest.approx(0.12) and step == 4 and coils == [True, False]
    assert not wrote.isError() and back == 1.0 and commands == {"pv1.p_limit_mw": 1.0}  # clamped to p_mw
    assert half.isError() and half.exception_code == 2
    assert ("guard_clamped", "scada.pv1.p_limit_mw") in notes
    *_, wrote, half, back, commands, notes = asyncio.run(main(True))
    assert wrote.isError() and wrote.exception_code == 1 and commands == {} and math.isnan(back)


@pytest.mark.parametrize("device, field, message", [
    ("{name: inv1, kind: inverter, bus: 99, modbus: {port: 15020}}", "devices[0].bus", "bus 99 does not exist"),
    ("{name: inv1, kind: inverter, bus: 5, modbus: {port: 15020}}", "devices[0]", "no scenario generator is at bus 5"),
    ("{name: inv1, kind: inverter, generator: pv9, modbus: {port: 15020}}", "devices[0].generator",
     "generator 'pv9' does not exist"),
    ("{name: inv1, kind: inverter, bus: 18, modbus: {host: 10.0.0.7, port: 15020}}", "devices[0].modbus.host",
     "not a loopback address"),
    ("{name: cap1, kind: capbank, bus: 18, modbus: {port: 15502}}", "grid_server.port",
     "port 15502 is already used by device cap1"),
    ("{name: c1, kind: custom, modbus: {port: 15020}}", "devices[0]", "kind custom needs map"),
    ("{name: c1, kind: custom, map: nope.yaml, modbus: {port: 15020}}", "devices[0].map", "does not exist"),
    ("{name: inv1, kind: inverter, bus: 18, modbus: {port: 15020}, writable: [W]}", "devices[0].writable[0]",
     "read-only"),
    ("{name: inv1, kind: inverter, bus: 18, modbus: {port: 15020}, limits: {var_pct: [10, -10]}}",
     "devices[0].limits.var_pct", "low <= high"),
    ("{name: pv1, kind: regulator, bus: 18, modbus: {port: 15020}}", "devices[0].name", "already a generator"),
    ("{name: inv1, kind: inverter, bus: 18, modbus: {port: 15020}, limts: {}}", "devices[0].limts",
     "did you mean 'limits'"),
])
def test_device_blocks_are_checked_with_file_line_and_field(write_scenario, device, field, message):
    path = write_scenario(HEAD + f"grid_server: {{port: 15502}}\ndevices:\n  - {device}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    problem = next(p for p in err.value.problems if p.field == field)
    assert message in problem.message and problem.line is not None


def test_the_shipped_hil_scenarios_are_valid():
    from hil.devices import couplings
    from hil_support import REPO

    paths = sorted((REPO / "scenarios" / "hil").glob("*.yaml"))
    assert len(paths) >= 2, "scenarios/hil/ ships the documented HIL scenarios"
    kinds = set()
    for path in paths:
        loaded = load_scenario(path)
        scn = loaded.scenario
        assert scn.devices, f"{path.name} declares no device"
        assert all(d.emulate for d in scn.devices), f"{path.name}: shipped scenarios run without lab hardware"
        assert [c.name for c in couplings(scn, loaded.base_dir)] == [d.name for d in scn.devices]
        kinds |= {d.kind for d in scn.devices}
    assert kinds == {"inverter", "capbank", "regulator", "recloser"}  # every kind with a stub is shipped in one


def test_stubs_start_whatever_the_working_directory_holds(tmp_path, monkeypatch):
    """A folder named hil (or firmware_stubs) in the working directory does not shadow the packages."""
    from hil.devices import couplings
    from hil.stubs import start_stub, stop_process
    from hil_support import REPO

    for name in ("hil", "firmware_stubs"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('the wrong package')\n", encoding="utf-8")
    loaded = load_scenario(REPO / "scenarios" / "hil" / "ieee33-inverter.yaml")
    monkeypatch.chdir(tmp_path)
    coupling = couplings(loaded.scenario, loaded.base_dir)[0]
    info, proc = start_stub(coupling, tmp_path / "stub.log")
    try:
        assert info.port > 0 and proc.poll() is None
    finally:
        stop_process(info.pid, proc)
