"""Emulated field devices ("firmware stubs") speaking Modbus-TCP, each its own process::

    python -m firmware_stubs.inverter  --port 5020   # SunSpec PV inverter
    python -m firmware_stubs.capbank   --port 5021   # capacitor bank controller
    python -m firmware_stubs.regulator --port 5022   # voltage regulator / OLTC
    python -m firmware_stubs.recloser  --port 5023   # recloser / breaker

The shared framework is split along its seams: :mod:`firmware_stubs.image` (the register
image, built from the device's map in ``hil/maps/<device>.yaml``), :mod:`firmware_stubs.device`
(the ``DeviceStub`` base class, firmware tick and watchdog), :mod:`firmware_stubs.server`
(Modbus-TCP serving) and :mod:`firmware_stubs.cli` (the common command line). Each device
module holds its own logic; which stub emulates which device kind is declared by the kind
(``hil/kinds/<kind>.py``).
"""
