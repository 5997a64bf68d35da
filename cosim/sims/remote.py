"""What a simulator needs to run outside the run's process: plain parameters, an event outbox and an entry point.

A remote simulator gets the scenario as plain data (`scenario_spec`: the validated scenario as
JSON, its folder and path) and rebuilds its part of the run with `rebuild` — the same
`assemble` the run uses, so it is the same grid model and inputs, bit for bit. What it would
have written into the run's live objects (the `EventLog`, `run_metrics`) it collects in an
`Outbox` and publishes as the outputs `log` and `metrics`; the in-process relay
(`cosim.sims.relay`) writes them into the run's own. `serve` is the `python -m cosim.sims.<x>`
entry point around `mosaik_api_v3.start_simulation`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import mosaik_api_v3

from cosim.assembly import Assembly
from cosim.scenario.loader import LoadedScenario
from cosim.scenario.placement import DEFAULT_PORT

LOGGED = ("add", "note")  # the EventLog methods an outbox records and the relay replays


def scenario_spec(loaded: LoadedScenario) -> dict[str, Any]:
    """The run's scenario as JSON-serialisable init parameters (also a scenario changed in memory, e.g. a sweep's)."""
    return {"scenario": loaded.scenario.model_dump(mode="json", exclude_unset=True),
            "base_dir": str(loaded.base_dir), "path": str(loaded.path.resolve())}


def rebuild(spec: dict[str, Any], events: "Outbox | None" = None) -> Assembly:
    """The run's assembly from `scenario_spec`, built as the run builds it (files are read from `base_dir`); what its
    parts (e.g. a python detector) add to the run's events goes into `events`."""
    from cosim.assembly import assemble
    from cosim.grid.feeders import load_feeder
    from cosim.scenario.schema import Scenario

    scn = Scenario.model_validate(spec["scenario"])
    base_dir = Path(spec["base_dir"])
    asm = assemble(LoadedScenario(scn, Path(spec["path"]), base_dir, {}, load_feeder(scn.grid.feeder, base_dir)),
                   events)
    if events is not None:  # what assembling itself records, the run has recorded in its own assembly
        events.drain()
    return asm


class Outbox:
    """Stands in for the run's `EventLog` in a remote simulator: records `add` and `note` calls until drained."""

    def __init__(self) -> None:
        self._calls: list[list] = []

    def add(self, step: int, kind: str, target: str, steps: int = 1, detail: str = "") -> None:
        self._calls.append(["add", [step, kind, target, steps, detail], {}])

    def add_note(self, step: int, note: tuple[str, str]) -> None:
        self.add(step, note[0], note[1], detail=getattr(note, "detail", ""))

    def note(self, kind: str, step: int, **data: Any) -> None:
        self._calls.append(["note", [kind, step], data])

    def drain(self) -> list[list]:
        """The calls since the last drain, as JSON-serialisable `[method, args, kwargs]`."""
        calls, self._calls = self._calls, []
        return calls


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with numpy scalars as Python numbers (JSON, as mosaik sends data to and from other processes)."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}


def serve(simulator: mosaik_api_v3.Simulator, description: str, argv: list[str] | None = None) -> None:
    """Serve `simulator` over mosaik's remote API: `HOST:PORT` connects back to mosaik (a `cmd` start);
    `--remote [HOST:PORT]` waits for a run to connect (default 127.0.0.1:5678), `--keep-serving` for run after run."""
    args = list(sys.argv[1:] if argv is None else argv)
    keep = "--keep-serving" in args
    args = [a for a in args if a != "--keep-serving"]
    if {"-r", "--remote"} & set(args) and not any(":" in a and not a.startswith("-") for a in args):
        args.append(f"127.0.0.1:{DEFAULT_PORT}")
    sys.argv[1:] = args
    while True:
        mosaik_api_v3.start_simulation(simulator, f"{description}\n\n--remote [HOST:PORT] serves at that address "
                                       f"(default 127.0.0.1:{DEFAULT_PORT}), --keep-serving run after run.",
                                       configure_logging=False)
        if not keep:
            return
        simulator = type(simulator)()
