"""Run controllers on held-out days x seeds of a scenario or a distribution, paired, on a sweep backend.

Seed s and day d (0-based) select the same draw for every controller, so the runs are paired:
a scenario file runs on day seed HELDOUT_BASE + s * days + d (every run is one more held-out
day); a distribution draws layout HELDOUT_BASE + s (feeder, DERs) on day seed HELDOUT_BASE +
s * days + d. Training draws seeds below HELDOUT_BASE, so none of these was seen in training.
Each run is the co-simulation's loop without mosaik (`controllers.rollout`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from controllers.base import ControllerError
from controllers.drl.env import HELDOUT_BASE
from controllers.drl.sources import ScenarioSource, open_source
from controllers.registry import check, controller_class, instantiate, parse_spec
from controllers.rollout import rollout
from cosim.assembly import assemble
from cosim.scenario.loader import LoadedScenario
from cosim.scenario.schema import Controller as ControllerBlock
from cosim.sweep.backends import BackendError, open_backend


ORACLE = "opf"  # the SPEC of the OPF oracle every evaluation includes (controllers/baselines/opf.py)
# Largest feeder the oracle runs on: it solves an SLSQP problem with finite-difference gradients (one power flow per
# DER setpoint and iteration) per step. Measured with 4 PV, 1 h at 5 min: 0.03-0.05 s per step on IEEE 33/69 and the
# 97-144-bus SimBench MV feeders, 1.2 s per step on simbench:1-HV-mixed--0-sw (306 buses: ~6 min per 5-minute day).
ORACLE_MAX_BUSES = 200


class EvaluateInputError(ValueError):
    """Bad input to an evaluation; the message names the option or file and what was expected."""


@dataclass(frozen=True)
class Run:
    """One (controller, seed, day) of an evaluation and what it gave."""

    controller: str
    seed: int
    day: int
    layout_seed: int
    day_seed: int
    feeder: str
    ders: int
    status: str  # ok | failed
    message: str
    kpis: dict[str, float]


def seeds_of(seed: int, day: int, days: int) -> tuple[int, int]:
    """(layout seed, day seed) of seed index `seed`, day index `day` (see the module docstring)."""
    return HELDOUT_BASE + seed, HELDOUT_BASE + seed * days + day


@functools.lru_cache(maxsize=4)
def _source(path: str) -> ScenarioSource:
    return open_source(Path(path))


def draw(path: str, seed: int, day: int, days: int) -> LoadedScenario:
    """The scenario of one (seed, day) of the source file."""
    return _source(path).draw(*seeds_of(seed, day, days))


def run_one(path: str, label: str, block: dict, seed: int, day: int, days: int) -> Run:
    """Worker: one controller on one held-out draw, scored by the rollout.

    Each run assembles its draw afresh, as `cosim run` does: a model reused from the run before starts its power
    flows from another point (1e-10 pu apart), and a closed loop can turn that into another violation count, so a
    row would depend on which controllers ran before it in the process."""
    asm = assemble(draw(path, seed, day, days))
    scn = asm.loaded.scenario
    layout_seed, day_seed = seeds_of(seed, day, days)
    spec = ControllerBlock.model_validate(block)
    try:
        controller = instantiate(controller_class(spec, Path.cwd()), spec, Path.cwd())
        kpis, status, message = rollout(asm, controller).kpis, "ok", ""
    except Exception as exc:  # noqa: BLE001 - a run that fails is a row, not the end of the evaluation
        kpis, status, message = {}, "failed", f"{type(exc).__name__}: {exc}"
    return Run(label, seed, day, layout_seed, day_seed, scn.grid.feeder, len(scn.generators), status, message, kpis)


def controller_blocks(specs: list[str]) -> dict[str, dict]:
    """Unique labels (the SPEC, with '#2', '#3' for repeats) -> controller blocks; EvaluateInputError names a bad SPEC."""
    out: dict[str, dict] = {}
    for spec in specs:
        try:
            block = parse_spec(spec)
        except ControllerError as exc:
            raise EvaluateInputError(f"--controller / --against: {exc}") from None
        label, k = spec, 1
        while label in out:
            k += 1
            label = f"{spec}#{k}"
        out[label] = block.model_dump()
    return out


def check_controllers(path: str, blocks: dict[str, dict], days: int) -> None:
    """Build every controller on the first draw and let it act once; EvaluateInputError says why one cannot run."""
    for label, block in blocks.items():  # what fails without a grid (files, params) fails before one is built
        spec = ControllerBlock.model_validate(block)
        try:
            instantiate(controller_class(spec, Path.cwd()), spec, Path.cwd())
        except ControllerError as exc:
            raise EvaluateInputError(f"controller {label!r}: field {getattr(exc, 'field', 'controller')}: {exc}") from None
    first = draw(path, 0, 0, days)
    for label, block in blocks.items():
        first.scenario.controller = ControllerBlock.model_validate(block)
        problem = check(assemble(first))
        if problem is not None:
            raise EvaluateInputError(f"{path}: controller {label!r} cannot run on {first.scenario.grid.feeder} "
                                     f"(held-out seed 0, day 0): field {problem.field}: {problem}")


def check_counts(seeds: int, days: int) -> None:
    """EvaluateInputError unless there is at least one seed and one day."""
    if seeds < 1 or days < 1:
        raise EvaluateInputError(f"--seeds and --days must be at least 1, got --seeds {seeds} --days {days}")


def oracle(specs: list[str], path: Path, seeds: int, days: int) -> tuple[bool, str | None, str]:
    """Whether to add the OPF oracle to the SPECs (not when one is of kind opf), its label, and a note.

    The oracle is left out (label None, the note says why) when a draw's feeder has more than
    ORACLE_MAX_BUSES buses or the oracle cannot be set up on the first draw.
    """
    check_counts(seeds, days)
    present = [label for label, block in controller_blocks(specs).items() if block["kind"] == ORACLE]
    if present:
        return False, present[0], f"OPF oracle: {present[0]!r}"
    source = str(Path(path))
    for feeder, (s, d) in {draw(source, s, 0, days).scenario.grid.feeder: (s, 0) for s in range(seeds)}.items():
        buses = len(assemble(draw(source, s, d, days)).model.feeder.net.bus)
        if buses > ORACLE_MAX_BUSES:
            return False, None, (f"OPF oracle skipped: feeder {feeder} (held-out seed {s}) has {buses} buses, more than "
                                 f"the {ORACLE_MAX_BUSES} it runs on in reasonable time; no gap to the oracle reported")
    first = draw(source, 0, 0, days)
    first.scenario.controller = parse_spec(ORACLE)
    problem = check(assemble(first))
    if problem is not None:
        return False, None, f"OPF oracle skipped: it cannot run on {first.scenario.grid.feeder}: {problem}"
    return True, ORACLE, f"OPF oracle: {ORACLE!r} (added; --no-oracle leaves it out)"


def evaluate(path: Path, specs: list[str], seeds: int, days: int, jobs: int = 0, backend: str = "local",
             address: str | None = None, on_done: Callable[[Run], None] | None = None) -> Iterator[Run]:
    """Every controller on every (seed, day), on a backend; yields runs as they finish."""
    check_counts(seeds, days)
    blocks = controller_blocks(specs)
    source = str(Path(path))
    check_controllers(source, blocks, days)
    tasks = [(source, label, block, s, d, days) for s in range(seeds) for d in range(days)
             for label, block in blocks.items()]
    try:
        with open_backend(backend, jobs, address) as pool:
            for i, run in pool.map(run_one, tasks):
                if isinstance(run, BaseException):  # the worker died
                    _, label, _, s, d, _ = tasks[i]
                    run = Run(label, s, d, *seeds_of(s, d, days), "", 0, "failed", f"{type(run).__name__}: {run}", {})
                if on_done is not None:
                    on_done(run)
                yield run
    except BackendError as exc:
        raise EvaluateInputError(str(exc)) from None
