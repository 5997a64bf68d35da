"""mosaik simulators: thin adapters over the physics and the recording."""
