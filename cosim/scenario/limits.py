"""Bounds on what one scenario may ask for, checked before anything is built, each problem naming its limit.

A scenario that passes the schema can still ask for more than a run can give: more steps than
fit in memory, a random schedule of a billion events, a seed numpy refuses, criteria on metrics
that do not exist. These checks make such files bad input (exit 2) instead of a hang, a
MemoryError or a pass that judged nothing.
"""

from __future__ import annotations

import difflib
import os

from cosim.events.models import RandomEvents
from cosim.metrics.catalog import METRICS, metric_info
from cosim.scenario.schema import Scenario

MAX_FILE_BYTES = 1_000_000  # scenario files and the register maps they name
MAX_STEPS = 50_000_000  # a year and a half at 1 s steps
MAX_EVENTS = 10_000  # explicit plus expected random events of one run
MAX_SEED = 2**32 - 1  # seeds of random schedules (the scenario's seed is bounded by the schema)
_BYTES_PER_VALUE = 8  # float64 and datetime64 input series
_COPIES = 3  # a series and its temporaries while the inputs are built

Found = list[tuple[tuple, str]]  # (path in the scenario, message)


def file_size_problem(size: int, what: str = "scenario files") -> str | None:
    """A message when a file of `size` bytes is above MAX_FILE_BYTES."""
    if size > MAX_FILE_BYTES:
        return f"the file has {size:,} bytes; {what} are limited to {MAX_FILE_BYTES:,} bytes (limit MAX_FILE_BYTES)"
    return None


def available_memory() -> int | None:
    """Bytes of memory the system can still give a process (Linux MemAvailable), None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def input_bytes(scn: Scenario, n_loads: int) -> int:
    """Estimated peak bytes of the run's input series: per step the time, a multiplier per load, a power per plant."""
    columns = 3 + n_loads + len(scn.generators)  # time, site-wide PV and wind, loads, scenario plants
    return scn.clock.n_steps * columns * _BYTES_PER_VALUE * _COPIES


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def step_problems(scn: Scenario, n_loads: int, available: int | None) -> Found:
    """The planned steps against MAX_STEPS and, when `available` bytes are known, the memory their inputs need."""
    n = scn.clock.n_steps
    if n > MAX_STEPS:
        return [(("clock",), f"{n:,} steps planned (duration / step); a run is limited to {MAX_STEPS:,} steps "
                             "(limit MAX_STEPS): shorten the duration or lengthen the step")]
    need = input_bytes(scn, n_loads)
    if available is not None and need > available // 2:
        return [(("clock",), f"{n:,} steps on {n_loads} loads need about {_gib(need)} for the input series, more "
                             f"than half of the {_gib(available)} of memory available: shorten the duration or "
                             "lengthen the step")]
    return []


def event_problems(scn: Scenario) -> Found:
    """Explicit events plus the expected count of every random schedule against MAX_EVENTS; random seeds in range."""
    found: Found = []
    days = scn.clock.duration / 86400.0
    total = 0.0
    for i, entry in enumerate(scn.events):
        if not isinstance(entry, RandomEvents):
            total += 1
            continue
        spec = entry.random
        expected = spec.rate_per_day * days
        total += expected
        if expected > MAX_EVENTS:
            found.append((("events", i, "random", "rate_per_day"),
                          f"{spec.rate_per_day:g} per day over {days:g} days draws about {expected:,.0f} events; a run is "
                          f"limited to {MAX_EVENTS:,} events (limit MAX_EVENTS)"))
        if spec.seed is not None and not 0 <= spec.seed <= MAX_SEED:
            found.append((("events", i, "random", "seed"), f"expected a seed from 0 to {MAX_SEED}, got {spec.seed}"))
    if total > MAX_EVENTS and not any(path[-1] == "rate_per_day" for path, _ in found):
        found.append((("events",), f"about {total:,.0f} events planned; a run is limited to {MAX_EVENTS:,} events "
                                   "(limit MAX_EVENTS)"))
    return found


def criteria_problems(scn: Scenario) -> Found:
    """Criteria keys that name no metric of the metric table (cosim.metrics.catalog)."""
    found: Found = []
    for key in scn.criteria:
        if metric_info(key) is None:
            guess = difflib.get_close_matches(key, list(METRICS), n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else " (the metrics are listed in docs/metrics.md)"
            found.append((("criteria", key), f"no such metric{hint}"))
    return found
