"""Power-flow engines, one module each (pandapower, lightsim2grid, sweep), and the choice between them."""

from __future__ import annotations

import numpy as np
import pandapower as pp

from cosim.grid.engines import lightsim, pandapower_engine, sweep  # noqa: F401  (they register themselves)
from cosim.grid.engines.base import (ENGINES, Engine, EngineUnsupported, InService, PowerFlowResult, compare,
                                     failed_result)
from cosim.grid.engines.pandapower_engine import PandapowerEngine

AGREEMENT_PU, AGREEMENT_KW = 1e-6, 1e-3  # what a fast engine must reproduce of pandapower at start-up

__all__ = ["ENGINES", "Engine", "EngineUnsupported", "InService", "PowerFlowResult", "build_engine", "compare",
           "failed_result"]


def build_engine(net: pp.pandapowerNet, preferred: str, probe: tuple[np.ndarray, ...]) -> tuple[Engine, str]:
    """Build the preferred engine and check it against pandapower on the probe injections.

    An engine that fails to build, does not converge where pandapower does, or disagrees
    (> 1e-6 pu or 1e-3 kW) is not used: lightsim2grid falls back to pandapower and the note
    says why; an engine without fallback (sweep) raises EngineUnsupported with the reason.
    Returns the engine and the note ('' if none).
    """
    if preferred == "pandapower":
        return PandapowerEngine(net), ""
    reference = PandapowerEngine(net, numba=False)  # one solve: not worth numba's compile time
    cls = ENGINES[preferred]
    fallback = getattr(cls, "fallback", True)

    def refuse(why: str) -> tuple[Engine, str]:
        if not fallback:
            raise EngineUnsupported(why)
        return PandapowerEngine(net), f"{why}; using pandapower"

    ref = reference.solve(*probe)
    try:
        fast = cls(net)
        got = fast.solve(*probe)
    except EngineUnsupported as exc:
        return refuse(str(exc))
    except Exception as exc:  # lightsim2grid rejects some element types
        return refuse(f"{preferred} could not build this feeder ({exc})")
    if ref.converged and not got.converged:
        return refuse(f"{preferred} does not converge on this feeder where pandapower does")
    dv, dloss = compare(got, ref)
    if ref.converged and (dv > AGREEMENT_PU or dloss > AGREEMENT_KW):
        return refuse(f"{preferred} disagrees with pandapower (dV {dv:.2e} pu, dloss {dloss:.2e} kW)")
    return fast, ""
