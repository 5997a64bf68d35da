"""Hardware in the loop: field devices over Modbus-TCP between the controller and the grid.

Device kinds (:mod:`hil.kinds`, one module each, couplings on :mod:`hil.coupling`), register
maps (:mod:`hil.registers`, shipped in ``hil/maps``), encoding (:mod:`hil.codec`), the one read
path (:mod:`hil.reading`), the connection (:mod:`hil.client`), the per-device cycle
(:mod:`hil.link`), the safety guard, the bridge, the grid server, the probe, the MITM proxy and
the stub processes.
"""

from pathlib import Path

#: Directory of the shipped register maps (``<device>.yaml``).
MAPS_DIR = Path(__file__).resolve().parent / "maps"

__all__ = ["MAPS_DIR"]
