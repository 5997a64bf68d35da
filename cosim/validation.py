"""The explicit validation step of `cosim validate`, `run` and `regress`: assemble the run once and try its controller.

Loading (`cosim.scenario.loader`) checks the file against the schema and the feeder; this step
builds what the run needs (grid model and engine, inputs, schedule) and lets the controller
act on the first step, so what only shows when things are built is bad input too (exit 2).
The returned assembly is the one the run uses.
"""

from __future__ import annotations

from cosim.assembly import Assembly, assemble
from cosim.grid.engines import EngineUnsupported
from cosim.scenario.errors import Problem, ScenarioError
from cosim.scenario.loader import LoadedScenario
from cosim.scenario.yamlpos import line_for


def _problem(loaded: LoadedScenario, field: str, message: str) -> ScenarioError:
    return ScenarioError(loaded.path, [Problem(field, message, line_for(loaded.lines, tuple(field.split("."))))])


def validate(loaded: LoadedScenario) -> Assembly:
    """The assembled run of a loaded scenario; ScenarioError naming file, line and field when it cannot run."""
    from controllers.registry import check

    try:
        asm = assemble(loaded)
    except EngineUnsupported as exc:
        raise _problem(loaded, "grid.engine", str(exc)) from None
    error = check(asm)
    if error is not None:
        raise _problem(loaded, error.field, str(error))
    return asm
