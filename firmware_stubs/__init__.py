"""Emulated field devices ("firmware stubs") speaking Modbus-TCP.

Each device runs as its own process::

    python -m firmware_stubs.inverter  --port 5020   # SunSpec PV inverter
    python -m firmware_stubs.capbank   --port 5021   # capacitor bank controller
    python -m firmware_stubs.regulator --port 5022   # voltage regulator / OLTC
    python -m firmware_stubs.recloser  --port 5023   # recloser / breaker

Common options: ``--host`` (default 127.0.0.1), ``--port`` (0 = free port),
``--unit``, ``--watchdog SECONDS``, ``--tick SECONDS``, ``--map FILE``,
``--log-level``.  The register image of each device is built from its map in
``hil/maps/<device>.yaml``; see :mod:`firmware_stubs.server` for the shared
framework and the module docstrings for each device's logic.
"""

STUBS = ("inverter", "capbank", "regulator", "recloser")

__all__ = ["STUBS"]
