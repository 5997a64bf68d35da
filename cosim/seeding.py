"""One seed per scenario, an independent stream per named component (mosaik has no seeding)."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """Generator for component `names` of a scenario with `seed`; stable across runs and platforms."""
    key = [zlib.crc32(n.encode("utf-8")) for n in names]
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))
