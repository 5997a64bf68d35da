"""Hardware-in-the-loop helpers: register maps (:mod:`hil.registers`),
SunSpec discovery (:mod:`hil.sunspec`) and the device maps in ``hil/maps``."""

from pathlib import Path

#: Directory of the shipped register maps (``<device>.yaml``).
MAPS_DIR = Path(__file__).resolve().parent / "maps"

__all__ = ["MAPS_DIR"]
