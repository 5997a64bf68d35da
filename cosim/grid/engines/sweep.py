"""Backward/forward sweep on radial feeders, compiled with numba: the fastest engine, for training and sweeps.

Branch and shunt admittances come from pandapower's own model of the net (its ppc), so the
physics is pandapower's; one compiled call aggregates the injections per bus, sweeps to
convergence and computes every branch flow. It models what a radial feeder with nominal-ratio
branches has: lines, transformers at nominal ratio, bus shunts (capacitor steps), outages and
de-energised islands. It refuses, naming the reason, what it cannot model: meshes, several
slacks, voltage-controlled generators, off-nominal or phase-shifting transformers (tap
changers), voltage-dependent loads and fused buses.
"""

from __future__ import annotations

import copy

import numba
import numpy as np
import pandapower as pp
from pandapower.pypower.idx_brch import F_BUS, SHIFT, T_BUS, TAP
from pandapower.pypower.idx_bus import BS, GS
from pandapower.pypower.makeYbus import branch_vectors

from cosim.grid.engines.base import (SQRT3, EngineUnsupported, InService, PowerFlowResult, failed_result,
                                     line_rating_ka, register)

TOL = 1e-10  # pu, largest voltage change between sweeps at convergence
MAX_ITER = 100


@numba.njit(cache=True)
def _branch_results(i_f, i_t, s_f, ka_f, ka_t, kv_f, kv_t, nl, line_rating, trafo_sn, base):
    """Line currents (kA, the larger end), line and trafo loading (%, pandapower's current-based
    definitions) and from-end line flows (MW, Mvar) from the per-unit branch results."""
    nb = i_f.shape[0]
    line_i, loading = np.empty(nl), np.empty(nl)
    line_p, line_q = np.empty(nl), np.empty(nl)
    trafo = np.empty(nb - nl)
    for b in range(nb):
        a, c = i_f[b] * ka_f[b], i_t[b] * ka_t[b]
        if b < nl:
            line_i[b] = max(a, c)
            loading[b] = line_i[b] / line_rating[b] * 100.0
            line_p[b], line_q[b] = s_f[b].real * base, s_f[b].imag * base
        else:
            trafo[b - nl] = max(a * kv_f[b], c * kv_t[b]) * SQRT3 / trafo_sn[b - nl] * 100.0
    return line_i, loading, trafo, line_p, line_q


@numba.njit(cache=True)
def _solve(load_p: np.ndarray, load_q: np.ndarray, sgen_p: np.ndarray, sgen_q: np.ndarray, v: np.ndarray,
           s_bus0: np.ndarray, load_bus: np.ndarray, sgen_bus: np.ndarray, load_on: np.ndarray, sgen_on: np.ndarray,
           base_mva: float, order: np.ndarray, parent: np.ndarray, z: np.ndarray, y_shunt: np.ndarray, slack: int,
           br_f: np.ndarray, br_t: np.ndarray, yff: np.ndarray, yft: np.ndarray, ytf: np.ndarray, ytt: np.ndarray,
           br_on: np.ndarray, ysh_slack: complex, tol: float, max_iter: int, vm: np.ndarray, ka_f: np.ndarray,
           ka_t: np.ndarray, kv_f: np.ndarray, kv_t: np.ndarray, nl: int, line_rating: np.ndarray,
           trafo_sn: np.ndarray):
    """One operating point (v warm-started in place): (sweeps or -1, losses, slack P and Q, vm, line kA,
    line and trafo loading %, line from-end P and Q), powers in MW / Mvar.

    `order` lists the energised buses from the slack outwards; `parent[i]` and `z[i]` are the bus
    towards the slack and the series impedance to it; `vm` holds the last magnitudes (NaN if dead).
    """
    s = s_bus0.copy()
    for k in range(load_bus.shape[0]):
        if load_on[k]:
            s[load_bus[k]] -= complex(load_p[k], load_q[k]) / base_mva
    for k in range(sgen_bus.shape[0]):
        if sgen_on[k]:
            s[sgen_bus[k]] += complex(sgen_p[k], sgen_q[k]) / base_mva
    n = order.shape[0]
    branch = np.zeros(v.shape[0], np.complex128)  # current from the parent into each bus's subtree
    sweeps = -1
    for it in range(max_iter):
        for idx in range(n):
            i = order[idx]
            branch[i] = y_shunt[i] * v[i] - (s[i] / v[i]).conjugate()
        for idx in range(n - 1, 0, -1):  # leaves first
            i = order[idx]
            branch[parent[i]] += branch[i]
        delta = 0.0
        for idx in range(1, n):  # slack outwards
            i = order[idx]
            new = v[parent[i]] - z[i] * branch[i]
            d = abs(new - v[i])
            if d > delta:
                delta = d
            v[i] = new
        if not np.isfinite(delta):
            break
        if delta < tol:
            sweeps = it + 1
            break
    if sweeps < 0:
        empty = np.empty(0)
        return -1, 0.0, 0.0, 0.0, empty, empty, empty, empty, empty, empty
    for idx in range(n):
        i = order[idx]
        vm[i] = abs(v[i])
    nbr = br_f.shape[0]
    i_f, i_t, s_f = np.empty(nbr), np.empty(nbr), np.empty(nbr, np.complex128)
    loss = 0.0
    slack_in = 0.0j
    for b in range(nbr):
        if not br_on[b]:
            i_f[b], i_t[b], s_f[b] = 0.0, 0.0, 0.0j
            continue
        vf, vt = v[br_f[b]], v[br_t[b]]
        cf = yff[b] * vf + yft[b] * vt
        ct = ytf[b] * vf + ytt[b] * vt
        sf, st = vf * cf.conjugate(), vt * ct.conjugate()
        i_f[b], i_t[b], s_f[b] = abs(cf), abs(ct), sf
        loss += (sf + st).real
        if br_f[b] == slack:
            slack_in += sf
        elif br_t[b] == slack:
            slack_in += st
    # the slack bus supplies its branches, its own bus shunt and its own net load
    slack_in += v[slack] * (ysh_slack * v[slack]).conjugate() - s[slack]
    line_i, loading, trafo, line_p, line_q = _branch_results(i_f, i_t, s_f, ka_f, ka_t, kv_f, kv_t, nl, line_rating,
                                                             trafo_sn, base_mva)
    return (sweeps, loss * base_mva, slack_in.real * base_mva, slack_in.imag * base_mva, vm.copy(), line_i, loading,
            trafo, line_p, line_q)


def _ppc_of(net: pp.pandapowerNet) -> tuple[dict, np.ndarray, dict]:
    """pandapower's full model (ppc) of the net at no load with every line in (a normally-open line gets its
    admittances, for restoration to close it), its bus lookup and branch ranges."""
    trial = copy.deepcopy(net)
    trial.line["in_service"] = True
    for table in ("load", "sgen"):
        trial[table]["p_mw"] = 0.0
        trial[table]["q_mvar"] = 0.0
    pp.runpp(trial, numba=False, init="dc")  # a DC start copes with phase-shifting transformers
    lookup = np.asarray(trial._pd2ppc_lookups["bus"][trial.bus.index.to_numpy()], dtype=np.int64)
    return trial._ppc, lookup, trial._pd2ppc_lookups["branch"]


def _check_supported(net: pp.pandapowerNet) -> None:
    """Refuse elements the sweep does not model, naming them."""
    problems = []
    if len(net.ext_grid[net.ext_grid.in_service.astype(bool)]) != 1:
        problems.append("needs exactly one in-service external grid")
    for table in ("gen", "ward", "xward", "storage", "impedance", "dcline", "trafo3w", "svc", "tcsc", "ssc"):
        if table in net and len(net[table]):
            problems.append(f"has {table} elements")
    for col in ("const_z_percent", "const_i_percent", "const_z_p_percent", "const_i_p_percent",
                "const_z_q_percent", "const_i_q_percent"):
        if col in net.load and net.load[col].fillna(0).abs().sum() > 0:
            problems.append("has voltage-dependent loads")
            break
    tap = net.trafo.get("tap_step_percent")
    if tap is not None and (tap.fillna(0).astype(float) > 0).any():
        problems.append("has transformer tap changers (off-nominal ratios); use lightsim2grid or pandapower")
    if problems:
        raise EngineUnsupported("the sweep engine cannot model this feeder: it " + ", ".join(problems))


@register("sweep")
class SweepEngine:
    """Radial backward/forward sweep over pandapower's admittances; see the module docstring."""

    fallback = False  # chosen explicitly: refuse, do not silently swap engines

    def __init__(self, net: pp.pandapowerNet):
        _check_supported(net)
        self.net = net
        self.line_rating = line_rating_ka(net)
        self.trafo_sn = (net.trafo.sn_mva * net.trafo.parallel).to_numpy(float)
        nb = len(net.bus)
        self.v0 = complex(net.ext_grid.vm_pu.iloc[0] * np.exp(1j * np.deg2rad(net.ext_grid.va_degree.iloc[0])))
        self.v = np.full(nb, self.v0, complex)
        self.vm = np.full(nb, np.nan)
        self.load_bus = net.bus.index.get_indexer(net.load.bus).astype(np.int64)
        self.sgen_bus = net.bus.index.get_indexer(net.sgen.bus).astype(np.int64)
        self.load_scaling = net.load.scaling.to_numpy(float)
        self.sgen_scaling = net.sgen.scaling.to_numpy(float)
        self._scaled = bool((self.load_scaling != 1).any() or (self.sgen_scaling != 1).any())
        self._no_injection = np.zeros(nb, complex)
        self.status = InService(net.line.in_service.to_numpy(bool), net.trafo.in_service.to_numpy(bool),
                                net.bus.in_service.to_numpy(bool), net.load.in_service.to_numpy(bool),
                                net.sgen.in_service.to_numpy(bool))
        self._build()

    # -- the network -----------------------------------------------------------------------
    def _build(self) -> None:
        """Branch admittances, bus shunts and base quantities from pandapower's model of the net."""
        net = self.net
        ppc, lookup, ranges = _ppc_of(net)
        if len(np.unique(lookup)) != len(net.bus):
            raise EngineUnsupported("the sweep engine cannot model this feeder: closed bus-bus switches fuse buses")
        if len(ppc["bus"]) != len(net.bus):
            raise EngineUnsupported("the sweep engine cannot model this feeder: pandapower added internal buses")
        position = np.empty(len(lookup), np.int64)
        position[lookup] = np.arange(len(lookup))  # ppc bus -> pandapower position
        branch = ppc["branch"]
        self.base_mva = float(ppc["baseMVA"])
        nl = len(net.line)
        line_rows = np.arange(*ranges["line"]) if "line" in ranges else np.arange(0)
        trafo_rows = np.arange(*ranges["trafo"]) if "trafo" in ranges else np.arange(0)
        if len(line_rows) != nl or len(trafo_rows) != len(net.trafo):
            raise EngineUnsupported("the sweep engine cannot model this feeder: unexpected branch layout")
        rows = np.concatenate([line_rows, trafo_rows]).astype(np.int64)
        br = branch[rows]
        tap = br[:, TAP].real.copy()
        tap[tap == 0] = 1.0
        if np.any(np.abs(tap - 1.0) > 1e-12) or np.any(np.abs(br[:, SHIFT].real) > 1e-12):
            raise EngineUnsupported("the sweep engine cannot model this feeder: it has off-nominal or phase-shifting "
                                    "transformers (tap changers); use lightsim2grid or pandapower")
        ytt, yff, yft, ytf = branch_vectors(branch, len(branch))
        self.yff, self.yft, self.ytf, self.ytt = (np.ascontiguousarray(a[rows]) for a in (yff, yft, ytf, ytt))
        self.br_f = position[br[:, F_BUS].real.astype(np.int64)]
        self.br_t = position[br[:, T_BUS].real.astype(np.int64)]
        self.nl = nl
        self.bus_shunt = ((ppc["bus"][:, GS] + 1j * ppc["bus"][:, BS]) / self.base_mva)[lookup]
        self.slack = int(net.bus.index.get_loc(net.ext_grid.bus.iloc[0]))
        vn = net.bus.vn_kv.to_numpy(float)
        base_ka = self.base_mva / (SQRT3 * vn)
        self.ka_f, self.ka_t = base_ka[self.br_f], base_ka[self.br_t]
        self.kv_f, self.kv_t = vn[self.br_f], vn[self.br_t]
        self._set_tree(self.status)

    def _set_tree(self, status: InService) -> None:
        """Order the energised buses from the slack outwards; refuse a mesh. The statuses decide which branches
        are in (a normally-open line closed by restoration too: pandapower's model has its admittances)."""
        on = np.concatenate([status.lines, status.trafos])
        on &= status.buses[self.br_f] & status.buses[self.br_t]
        nb = len(self.v)
        neighbours: list[list[tuple[int, int]]] = [[] for _ in range(nb)]
        for b in np.flatnonzero(on):
            f, t = int(self.br_f[b]), int(self.br_t[b])
            neighbours[f].append((t, b))
            neighbours[t].append((f, b))
        parent = np.full(nb, -1, np.int64)
        via = np.full(nb, -1, np.int64)
        parent[self.slack] = self.slack
        order = [self.slack]
        for i in order:
            for j, b in neighbours[i]:
                if b == via[i]:
                    continue
                if parent[j] >= 0:
                    raise EngineUnsupported("the sweep engine needs a radial feeder: the branches in service form "
                                            "a mesh; use lightsim2grid or pandapower")
                parent[j], via[j] = i, b
                order.append(j)
        z = np.zeros(nb, complex)
        y_shunt = self.bus_shunt.copy()
        np.add.at(y_shunt, self.br_f[on], (self.yff + self.yft)[on])
        np.add.at(y_shunt, self.br_t[on], (self.ytt + self.ytf)[on])
        linked = np.array(order[1:], np.int64)
        z[linked] = -1.0 / self.yft[via[linked]]
        self.order, self.parent, self.z, self.y_shunt, self.br_on = np.array(order, np.int64), parent, z, y_shunt, on
        self.live = np.zeros(nb, bool)
        self.live[self.order] = True
        self.v[:] = self.v0
        self.vm[:] = np.nan
        st = status
        self._static = (self._no_injection, self.load_bus, self.sgen_bus, st.loads, st.sgens, self.base_mva, self.order,
                        self.parent, self.z, self.y_shunt, self.slack, self.br_f, self.br_t, self.yff, self.yft,
                        self.ytf, self.ytt, self.br_on, complex(self.bus_shunt[self.slack]), TOL, MAX_ITER, self.vm,
                        self.ka_f, self.ka_t, self.kv_f, self.kv_t, self.nl, self.line_rating, self.trafo_sn)

    # -- the engine protocol ---------------------------------------------------------------
    def set_in_service(self, status: InService) -> None:
        """Take outaged branches and dead buses out of the tree; restart from a flat start."""
        self.status = status
        self._set_tree(status)

    def restart(self) -> None:
        """Start the next solve from the slack voltage everywhere."""
        self.v[:] = self.v0

    def network_changed(self) -> None:
        """Shunt steps (or other parameters) changed in the net: re-read pandapower's model."""
        self._build()

    def solve(self, load_p, load_q, sgen_p, sgen_q) -> PowerFlowResult:
        if self._scaled:  # pandapower multiplies by the tables' `scaling`
            load_p, load_q = load_p * self.load_scaling, load_q * self.load_scaling
            sgen_p, sgen_q = sgen_p * self.sgen_scaling, sgen_q * self.sgen_scaling
        out = _solve(load_p, load_q, sgen_p, sgen_q, self.v, *self._static)
        if out[0] < 0:  # retry from a flat start
            self.v[:] = self.v0
            out = _solve(load_p, load_q, sgen_p, sgen_q, self.v, *self._static)
        if out[0] < 0:
            self.v[:] = self.v0
            return failed_result(self.net)
        _, loss, ext_p, ext_q, vm, line_i, line_loading, trafo_loading, line_p, line_q = out
        return PowerFlowResult(True, vm, line_i, line_loading, trafo_loading, loss, ext_p, ext_q, line_p, line_q)
