"""The bridge's device links against real firmware stubs over Modbus-TCP on 127.0.0.1.

Each test starts its stub(s) on a free port and always stops them. Covered: decoding, a
setpoint write reaching the device and its output following, read-only, clamp + rate limit,
read-back mismatch and unauthorised changes (through the man-in-the-middle proxy and a rogue
client), the device's watchdog fail-safe, a device killed and restarted (stale, backoff,
reconnect), timeouts and garbage, and values tampered or replayed in flight.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from cosim.scenario.schema import Scenario
from hil import MAPS_DIR
from hil.client import DeviceClient
from hil.devices import coupling
from hil.guard import Guard
from hil.link import DeviceLink
from hil.mitm import ModbusProxy, rogue_write
from hil.registers import load_map
from hil_support import REPO, Stub, free_port

INVERTER = load_map(MAPS_DIR / "inverter.yaml")
GRID = {"pv1.p_avail_mw": 0.8, "bus.18.vm_pu": 1.02}
FAST = ("--ramp-rate", "1000")  # the stub follows a new limit within one firmware tick


@pytest.fixture
def stubs():
    started: list[Stub] = []

    def start(kind: str, *args: str, port: int = 0) -> Stub:
        s = Stub(kind, *args, port=port)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def make_link(port: int, read_only: bool = False, timeout: float = 0.5, hold_s: float = 60.0, **device) -> DeviceLink:
    """A link to an inverter (acting for a 1 MW pv1) on 127.0.0.1:port; call inside a running event loop."""
    spec = {"name": "inv1", "kind": "inverter", "bus": 18, "modbus": {"port": port, "timeout": timeout},
            "emulate": True, **device}
    scn = Scenario.model_validate({"name": "t", "clock": {"duration": "1min", "step": "1s"}, "grid": {"feeder": "ieee33"},
                                   "generators": [{"name": "pv1", "kind": "pv", "bus": 18, "p_mw": 1.0}],
                                   "devices": [spec]})
    c = coupling(scn, scn.devices[0], REPO)
    return DeviceLink(c, Guard(c.name, c.writable, c.rules(), read_only),
                      DeviceClient(c.name, "127.0.0.1", port, 1, timeout, backoff=(0.1, 0.8)), True, hold_s)


def command(link: DeviceLink, setpoint: str, value: float) -> None:
    for point, v in link.c.translate(setpoint, value).items():
        link.command(point, v)


def kinds(link: DeviceLink) -> set[str]:
    return {kind for kind, _ in link.notes}


async def settle(link: DeviceLink, grid=GRID, ticks: int = 3) -> None:
    """A few cycles a firmware tick apart, so the stub's outputs follow its inputs."""
    for _ in range(ticks):
        await link.cycle(grid)
        await asyncio.sleep(0.12)
    await link.cycle(grid)


def test_setpoint_reaches_the_device_and_its_output_follows(stubs):
    stub = stubs("inverter", *FAST)

    async def main():
        link = make_link(stub.port)
        await link.start()
        await settle(link)
        s = link.signals()
        assert s["inv1.stale"] == 0 and s["inv1.p_mw"] == pytest.approx(0.8, abs=1e-3)
        assert s["inv1.w_max_lim_pct"] == 100 and s["inv1.state"] == 4  # MPPT
        command(link, "pv1.p_limit_mw", 0.3)  # 30 % of the 1 MW nameplate
        await link.cycle(GRID)
        assert link.values["WMaxLimPct"] == 30 and link.values["WMaxLim_Ena"] == 1
        assert "readback_mismatch" not in kinds(link)
        await settle(link)
        assert link.signals()["inv1.p_mw"] == pytest.approx(0.3, abs=1e-3)
        assert link.grid_setpoints()["pv1.p_limit_mw"] == pytest.approx(0.3, abs=1e-3)  # what the grid gets
        command(link, "pv1.q_set_mvar", -0.2)
        await settle(link)
        assert link.signals()["inv1.q_mvar"] == pytest.approx(-0.2, abs=1e-3)
        assert link.counts["readback_mismatches"] == 0 and link.guard.blocked == 0
        link.close()

    asyncio.run(main())


def test_read_only_blocks_every_write(stubs):
    stub = stubs("inverter", *FAST)

    async def main():
        link = make_link(stub.port, read_only=True)
        await link.start()
        command(link, "pv1.p_limit_mw", 0.3)
        await settle(link)
        assert link.values["WMaxLimPct"] == 100 and link.values["WMaxLim_Ena"] == 0  # untouched
        assert link.signals()["inv1.p_mw"] == 0  # no physics inputs either: no PV power
        assert {"inv1.WMaxLimPct", "inv1.PAvail"} <= {t for k, t in link.notes if k == "guard_blocked"}
        assert link.guard.blocked >= 8
        link.close()

    asyncio.run(main())


def test_clamp_and_rate_limit_on_the_wire(stubs):
    stub = stubs("inverter", *FAST)

    async def main():
        link = make_link(stub.port, limits={"w_max_lim_pct": [20, 100], "max_step_pct_per_s": 40})
        await link.start()
        await link.cycle(GRID, now=0.0)
        command(link, "pv1.p_limit_mw", 0.0)  # asks for 0 %: below the limit and far from 100 %
        seen = []
        for k in range(1, 5):  # steps of 1 s on the guard's clock
            await link.cycle(GRID, now=float(k))
            seen.append(link.values["WMaxLimPct"])
        assert seen == [60, 20, 20, 20]  # 40 %/s from the 100 % the device held, never below the limit
        assert link.guard.clamped == 4 and "guard_clamped" in {k for k, _ in link.notes}
        assert link.counts["readback_mismatches"] == 0
        link.close()

    asyncio.run(main())


def test_readback_mismatch_and_unauthorised_change_are_noticed(stubs):
    stub = stubs("inverter", *FAST)

    async def main():
        proxy = ModbusProxy(("127.0.0.1", stub.port), INVERTER)
        link = make_link(await proxy.start())
        await link.start()
        await link.cycle(GRID)
        proxy.write_tamper["WMaxLimPct"] = (0.5, 0.0)  # the bridge's writes are halved in flight
        command(link, "pv1.p_limit_mw", 0.6)
        await link.cycle(GRID)
        assert ("readback_mismatch", "inv1.WMaxLimPct") in link.notes
        assert link.values["WMaxLimPct"] == 30 and link.counts["readback_mismatches"] == 1
        proxy.clear()
        await link.cycle(GRID)  # the setpoint in force is re-asserted
        assert link.values["WMaxLimPct"] == 60 and "readback_mismatch" not in kinds(link)
        assert await rogue_write("127.0.0.1", stub.port, link.c.regmap, "VArPct_Ena", 1)  # around the guard
        await link.cycle(GRID)
        assert ("device_write_unexpected", "inv1.VArPct_Ena") in link.notes
        link.close()
        await proxy.stop()

    asyncio.run(main())


def test_watchdog_fail_safe_then_the_setpoint_is_reasserted(stubs):
    stub = stubs("inverter", *FAST, "--watchdog", "0.4")

    async def main():
        link = make_link(stub.port)
        await link.start()
        command(link, "pv1.p_limit_mw", 0.3)
        await settle(link)
        assert link.values["WMaxLimPct"] == 30 and link.signals()["inv1.p_mw"] == pytest.approx(0.3, abs=1e-3)
        await asyncio.sleep(1.0)  # the bridge is silent: the device's watchdog reverts its limit
        await link.cycle(GRID)
        assert link.values["WMaxLim_Ena"] == 0 and link.values["WMaxLimPct"] == 100
        assert ("device_write_unexpected", "inv1.WMaxLim_Ena") in link.notes
        await link.cycle(GRID)
        assert link.values["WMaxLim_Ena"] == 1 and link.values["WMaxLimPct"] == 30
        link.close()

    asyncio.run(main())


def test_device_killed_goes_stale_then_reconnects_with_backoff(stubs):
    port = free_port()
    stub = stubs("inverter", *FAST, port=port)

    async def main():
        link = make_link(port, timeout=0.3, hold_s=0.3)
        await link.start()
        command(link, "pv1.q_set_mvar", -0.1)
        await settle(link)
        held = link.grid_setpoints()
        assert held["pv1.q_set_mvar"] == pytest.approx(-0.1, abs=1e-3)
        stub.stop()
        delays = []
        for _ in range(8):
            await link.cycle(GRID)
            delays.append(link.client.delay)
            await asyncio.sleep(0.15)
        assert link.stale and ("device_stale", "inv1") in link.notes
        assert link.signals()["inv1.stale"] == 1
        assert max(delays) > min(delays)  # the reconnect delay grew
        assert link.grid_setpoints() == {"pv1.p_limit_mw": 1.0, "pv1.q_set_mvar": 0.0}  # past hold: fail-safe
        stubs("inverter", *FAST, port=port)
        seen = set()
        deadline = time.monotonic() + 8
        while link.stale and time.monotonic() < deadline:
            await link.cycle(GRID)
            seen |= kinds(link)
            await asyncio.sleep(0.1)
        assert not link.stale and "device_reconnected" in seen and link.client.stats.reconnects >= 1
        await settle(link)  # the restarted device gets the setpoint in force again
        assert link.signals()["inv1.q_mvar"] == pytest.approx(-0.1, abs=1e-3)
        link.close()

    asyncio.run(main())


def test_timeouts_and_garbage_mark_the_device_stale(stubs):
    stub = stubs("inverter", *FAST)

    async def main():
        proxy = ModbusProxy(("127.0.0.1", stub.port), INVERTER)
        link = make_link(await proxy.start(), timeout=0.2)
        await link.start()
        await link.cycle(GRID)
        assert not link.stale
        proxy.delay_s = 0.5
        await link.cycle(GRID)
        assert link.stale and "device_timeout" in kinds(link)
        proxy.delay_s = 0.0
        await asyncio.sleep(0.6)  # the late answer arrives and is ignored
        proxy.garbage = True
        await link.cycle(GRID)
        assert link.stale and "device_garbage" in kinds(link)
        proxy.garbage = False
        for _ in range(20):  # pymodbus may have dropped the connection: the link reconnects
            await link.cycle(GRID)
            if not link.stale:
                break
            await asyncio.sleep(0.1)
        assert not link.stale
        assert link.client.stats.timeouts >= 1 and link.client.stats.garbage >= 1
        link.close()
        await proxy.stop()

    asyncio.run(main())


def test_values_tampered_or_replayed_in_flight(stubs):
    stub = stubs("inverter", *FAST)

    async def main():
        proxy = ModbusProxy(("127.0.0.1", stub.port), INVERTER)
        link = make_link(await proxy.start())
        await link.start()
        await settle(link)
        proxy.tamper["W"] = (0.5, 0.0)
        await link.cycle(GRID)
        assert link.signals()["inv1.p_mw"] == pytest.approx(0.4, abs=1e-3)  # true 0.8 MW, seen half
        proxy.clear()
        proxy.recording = True
        await settle(link)
        proxy.recording, proxy.replaying = False, True
        low = {"pv1.p_avail_mw": 0.2, "bus.18.vm_pu": 1.0}
        await settle(link, low)
        assert link.signals()["inv1.p_mw"] == pytest.approx(0.8, abs=1e-3)  # the recorded past
        proxy.replaying = False
        await link.cycle(low)
        assert link.signals()["inv1.p_mw"] == pytest.approx(0.2, abs=1e-3)
        assert proxy.stats["replayed"] > 0 and proxy.stats["tampered"] > 0
        link.close()
        await proxy.stop()

    asyncio.run(main())
