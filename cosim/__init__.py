"""Co-simulation testbed for distribution grids: mosaik + pandapower + Modbus-TCP."""

__version__ = "0.1.0"
