"""pandapower Newton-Raphson: slow, the reference and the fallback."""

from __future__ import annotations

import numpy as np
import pandapower as pp

from cosim.grid.engines.base import InService, PowerFlowResult, failed_result, register


@register("pandapower")
class PandapowerEngine:
    """pandapower Newton-Raphson: slow, the reference and the fallback."""

    def __init__(self, net: pp.pandapowerNet, numba: bool | None = None):
        self.net = net
        self._init = "auto"
        # JIT compile time (~20 s on 10^4 buses) only pays off over many solves of a large feeder
        self._numba = len(net.bus) > 500 if numba is None else numba
        self._lines_on: np.ndarray | None = None  # set once a topology change took lines out

    def set_in_service(self, status: InService) -> None:
        """Write the element statuses into the net; pandapower drops isolated buses itself."""
        net = self.net
        net.line["in_service"] = status.lines
        net.trafo["in_service"] = status.trafos
        net.bus["in_service"] = status.buses
        net.load["in_service"] = status.loads
        net.sgen["in_service"] = status.sgens
        self._lines_on = status.lines
        self._init = "auto"

    def restart(self) -> None:
        """Initialise the next runpp afresh instead of from the last results."""
        self._init = "auto"

    def network_changed(self) -> None:
        """Tap or shunt positions changed in the net: runpp reads them from the net on the next solve."""

    def solve(self, load_p, load_q, sgen_p, sgen_q) -> PowerFlowResult:
        net = self.net
        net.load["p_mw"] = np.array(load_p)  # copies: the caller refills its buffers every step
        net.load["q_mvar"] = np.array(load_q)
        net.sgen["p_mw"] = np.array(sgen_p)
        net.sgen["q_mvar"] = np.array(sgen_q)
        try:
            pp.runpp(net, init=self._init, numba=self._numba)
        except pp.LoadflowNotConverged:
            self._init = "auto"
            return failed_result(net)
        self._init = "results"
        ext = net.res_ext_grid
        line = net.res_line[["i_ka", "loading_percent", "p_from_mw", "q_from_mvar"]].to_numpy(float)
        if self._lines_on is not None:  # lines out of service or in a dead island carry nothing
            line[~self._lines_on] = 0.0
        return PowerFlowResult(
            converged=True,
            vm_pu=net.res_bus.vm_pu.to_numpy(float),
            line_i_ka=line[:, 0],
            line_loading_pct=line[:, 1],
            trafo_loading_pct=np.nan_to_num(net.res_trafo.loading_percent.to_numpy(float)),
            loss_mw=float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()),
            ext_p_mw=float(ext.p_mw.sum()),
            ext_q_mvar=float(ext.q_mvar.sum()),
            line_p_mw=line[:, 2],
            line_q_mvar=line[:, 3],
        )
