"""Free TCP ports for the HIL parts of a run in a sweep, so parallel runs never share a stub or a server.

Each emulated device's stub and the grid server get a port the operating system hands out
(bind to port 0); real devices (not emulated) keep the address the scenario gives, and emulated
Modbus RTU devices need no port (each run makes their serial pair). A single
`cosim run` does not come here and keeps the scenario's ports.
"""

from __future__ import annotations

import socket

from cosim.scenario.schema import Scenario


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that is free now (ephemeral allocation by the operating system)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def assign_free_ports(scenario: Scenario) -> dict[str, int]:
    """Move the scenario's emulated devices and its grid server to free ports; returns name -> port."""
    moved = {}
    for device in scenario.devices:
        if device.emulate and device.modbus.transport == "tcp":  # an RTU device gets its own serial pair per run
            device.modbus.port = moved[device.name] = free_port(device.modbus.host)
    if scenario.grid_server is not None:
        scenario.grid_server.port = moved["grid_server"] = free_port(scenario.grid_server.host)
    return moved
