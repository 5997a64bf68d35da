"""A lean power flow for the RL environment: backward/forward sweep on radial feeders, compiled with numba.

`GridModel.step` costs ~100 us, mostly Python around the solver; the environment needs a few.
The sweep runs on the admittance matrix pandapower builds for the same net (series branch
admittances plus bus shunts), and one compiled call also applies the DER capability limits,
so the physics is the co-simulation's. The constructor checks the result against the
model's own engine and refuses feeders it cannot reproduce (meshes, voltage-dependent
loads, off-nominal transformers, ...): callers then fall back to `GridModel`.
"""

from __future__ import annotations

import copy

import numba
import numpy as np
import pandapower as pp

from cosim.grid.model import GridModel
from cosim.inputs import Inputs

TOL = 1e-10  # pu, largest voltage change between sweeps at convergence
MAX_ITER = 100
AGREEMENT_PU = 1e-6  # voltage agreement with GridModel required at construction
AGREEMENT_KW = 1e-3


class FastFlowUnsupported(ValueError):
    """The feeder has elements the fast power flow does not model (use GridModel instead)."""


@numba.njit(cache=True)
def _capability(p_avail: float, p_limit: float, q_set: float, rating: float) -> tuple[float, float]:
    """`GridModel.capability` for one device: P <= available and limit, |S| <= rating."""
    p = min(p_avail, p_limit)
    p = min(max(p, 0.0), rating)
    q_max = np.sqrt(max(rating * rating - p * p, 0.0))
    return p, min(max(q_set, -q_max), q_max)


@numba.njit(cache=True)
def _step(base: np.ndarray, der_bus: np.ndarray, p_avail: np.ndarray, p_limit: np.ndarray, q_set: np.ndarray,
          rating: np.ndarray, base_mva: float, order: np.ndarray, parent: np.ndarray, z: np.ndarray,
          y_shunt: np.ndarray, slack: int, v: np.ndarray, vm: np.ndarray, der_p: np.ndarray,
          der_q: np.ndarray, tol: float, max_iter: int) -> tuple[float, int]:
    """One operating point: clip DER setpoints, sweep to convergence (v warm-started in place).

    Writes bus voltage magnitudes to `vm` and delivered DER powers to `der_p`/`der_q`; returns
    (losses in MW, sweeps used), sweeps -1 when the sweep does not converge.
    """
    n = v.shape[0]
    s = base.copy()
    for k in range(der_bus.shape[0]):
        p, q = _capability(p_avail[k], p_limit[k], q_set[k], rating[k])
        der_p[k] = p
        der_q[k] = q
        s[der_bus[k]] += complex(p, q) / base_mva
    branch = np.empty(n, np.complex128)  # current from parent into each bus's subtree
    sweeps = -1
    for it in range(max_iter):
        for i in range(n):
            branch[i] = y_shunt[i] * v[i] - (s[i] / v[i]).conjugate()
        for idx in range(n - 1, 0, -1):  # leaves first
            i = order[idx]
            branch[parent[i]] += branch[i]
        delta = 0.0
        for idx in range(1, n):  # root outwards
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
    injected = 0.0
    for i in range(n):
        vm[i] = abs(v[i])
        if i != slack:
            injected += s[i].real
    # current the slack pushes into the network: its subtree current plus its own injection's share
    slack_net = v[slack] * (branch[slack] + (s[slack] / v[slack]).conjugate()).conjugate()
    return (slack_net.real + injected) * base_mva, sweeps


class FastFlow:
    """Power flow of one GridModel's net, DER capability included; same results as the model's engine."""

    def __init__(self, model: GridModel):
        net = model.feeder.net
        _check_supported(net)
        y, slack, v0, self.base_mva = _admittance(net)
        self.order, self.parent = _tree(y, slack)
        series = -y[self.parent, np.arange(len(y))]  # admittance of the branch to each bus's parent
        series[slack] = 1.0
        self.z = 1.0 / series
        self.z[slack] = 0.0
        self.y_shunt = y.sum(axis=1)  # Y_ii + sum_j Y_ij: what stays at the bus
        self.slack = slack
        self.v0 = v0
        self.v = np.full(len(y), v0, complex)
        self.vm = np.ones(len(y))
        self.model = model
        self.load_bus = net.bus.index.get_indexer(net.load.bus)
        self.sgen_bus = net.bus.index.get_indexer(net.sgen.bus)
        self.der_bus = self.sgen_bus[model.native_sgens:].astype(np.int64)
        self.der_p = np.zeros(len(model.ders))
        self.der_q = np.zeros(len(model.ders))
        self._base = np.zeros((0, len(y)), complex)
        self._check_against(model)

    def start_day(self, inputs: Inputs) -> None:
        """Precompute the day's load and native-generator injections; forget the warm start."""
        self._base = self._base_injection(inputs.load_scale, inputs.native_pv_pu, inputs.native_wind_pu)
        self.v[:] = self.v0

    def solve(self, t: int, p_avail: np.ndarray, p_limit: np.ndarray, q_set: np.ndarray) -> tuple[float, bool]:
        """Solve step `t` of the day; losses in MW and the convergence flag.

        Results live in `vm` (every bus, pandapower order; NaN without convergence), `der_p`
        and `der_q` (delivered) until the next call. Warm-starts from the last solution.
        """
        args = (self._base[t], self.der_bus, p_avail, p_limit, q_set, self.model.der_rating, self.base_mva,
                self.order, self.parent, self.z, self.y_shunt, self.slack)
        loss, sweeps = _step(*args, self.v, self.vm, self.der_p, self.der_q, TOL, MAX_ITER)
        if sweeps < 0:  # retry from a flat start
            self.v[:] = self.v0
            loss, sweeps = _step(*args, self.v, self.vm, self.der_p, self.der_q, TOL, MAX_ITER)
        if sweeps < 0:
            self.v[:] = self.v0
            self.vm[:] = np.nan
            return float("nan"), False
        return loss, True

    def _base_injection(self, load_scale: np.ndarray, native_pv_pu: np.ndarray,
                        native_wind_pu: np.ndarray) -> np.ndarray:
        """Per-bus injections in pu of loads and the feeder's own generators, (steps, buses)."""
        m = self.model
        s = np.zeros((len(self.v), load_scale.shape[0]), complex)
        np.add.at(s, self.load_bus, (-(m.load_p_nom + 1j * m.load_q_nom) * m.load_on * load_scale).T)
        pv, wind = np.asarray(native_pv_pu)[:, None], np.asarray(native_wind_pu)[:, None]
        native_scale = np.where(m.native_is_pv, pv, np.where(m.native_is_wind, wind, 1.0))
        np.add.at(s, self.sgen_bus[: m.native_sgens], ((m.native_p_nom + 1j * m.native_q_nom) * native_scale).T)
        return np.ascontiguousarray(s.T) / self.base_mva

    def _check_against(self, model: GridModel) -> None:
        rng = np.random.default_rng(0)
        n_der, n_load = len(model.ders), len(model.load_p_nom)
        nameplate = np.array([d.p_mw for d in model.ders])
        probe = Inputs(np.zeros(3, "datetime64[s]"), rng.uniform(0.3, 1.2, (3, n_load)),
                       rng.uniform(0.0, 1.0, (3, n_der)) * nameplate, rng.uniform(0, 1, 3), rng.uniform(0, 1, 3))
        self.start_day(probe)
        for t in range(3):
            limit = rng.uniform(0.0, 1.0, n_der) * nameplate
            q = rng.uniform(-1, 1, n_der) * model.der_rating
            ref = model.step(probe.load_scale[t], probe.der_p_avail_mw[t], limit, q, probe.native_pv_pu[t],
                             probe.native_wind_pu[t])
            if not ref.pf.converged:
                continue
            loss, ok = self.solve(t, probe.der_p_avail_mw[t], limit, q)
            dv = float(np.max(np.abs(self.vm - ref.pf.vm_pu))) if ok else np.inf
            dl = abs(loss - ref.pf.loss_mw) * 1000.0 if ok else np.inf
            if dv > AGREEMENT_PU or dl > AGREEMENT_KW:
                raise FastFlowUnsupported(f"fast power flow disagrees with {model.engine.name} "
                                          f"(dV {dv:.1e} pu, dloss {dl:.1e} kW)")


class ModelFlow:
    """The same interface over `GridModel.step` itself: the slow path for feeders FastFlow refuses."""

    def __init__(self, model: GridModel):
        self.model = model
        self.vm = np.ones(len(model.feeder.net.bus))
        self.der_p = np.zeros(len(model.ders))
        self.der_q = np.zeros(len(model.ders))

    def start_day(self, inputs: Inputs) -> None:
        """Keep the day's input series."""
        self._inputs = inputs

    def solve(self, t: int, p_avail: np.ndarray, p_limit: np.ndarray, q_set: np.ndarray) -> tuple[float, bool]:
        """Solve step `t` with the model's engine; results in `vm`, `der_p`, `der_q`."""
        inp = self._inputs
        r = self.model.step(inp.load_scale[t], p_avail, p_limit, q_set, inp.native_pv_pu[t], inp.native_wind_pu[t])
        self.vm, self.der_p, self.der_q = r.pf.vm_pu, r.der_p_mw, r.der_q_mvar
        return r.pf.loss_mw, r.pf.converged


def make_flow(model: GridModel) -> tuple[FastFlow | ModelFlow, str]:
    """FastFlow when it reproduces the model, else ModelFlow; returns the flow and why it fell back ('' if not)."""
    try:
        return FastFlow(model), ""
    except FastFlowUnsupported as exc:
        return ModelFlow(model), str(exc)


def _check_supported(net: pp.pandapowerNet) -> None:
    """Refuse elements the sweep does not model, naming them."""
    problems = []
    if len(net.ext_grid[net.ext_grid.in_service]) != 1:
        problems.append("needs exactly one in-service ext_grid")
    for table in ("gen", "shunt", "ward", "xward", "storage", "impedance", "dcline", "trafo3w"):
        if table in net and len(net[table]):
            problems.append(f"has {table} elements")
    for col in ("const_z_percent", "const_i_percent", "const_z_p_percent", "const_i_p_percent",
                "const_z_q_percent", "const_i_q_percent"):
        if col in net.load and net.load[col].fillna(0).abs().sum() > 0:
            problems.append("has voltage-dependent loads")
            break
    for table in ("load", "sgen"):
        if not net[table].in_service.all() or (net[table].scaling != 1.0).any():
            problems.append(f"has out-of-service or scaled {table}s")
    if not net.bus.in_service.all():
        problems.append("has out-of-service buses")
    if problems:
        raise FastFlowUnsupported("fast power flow: feeder " + ", ".join(problems))


def _admittance(net: pp.pandapowerNet) -> tuple[np.ndarray, int, complex, float]:
    """Dense Ybus in pandapower bus order from pandapower's own model of the net, the slack and base power."""
    trial = copy.deepcopy(net)
    pp.runpp(trial, numba=False)
    internal = trial._ppc["internal"]
    lookup = np.asarray(trial._pd2ppc_lookups["bus"][trial.bus.index.to_numpy()], dtype=np.int64)
    if internal["bus"].shape[0] != len(trial.bus) or not np.array_equal(np.sort(lookup), np.arange(len(trial.bus))):
        raise FastFlowUnsupported("fast power flow: pandapower merged buses (closed bus-bus switches)")
    ref = np.asarray(internal["ref"])
    if ref.size != 1:
        raise FastFlowUnsupported("fast power flow: needs exactly one slack bus")
    y = internal["Ybus"].toarray()[np.ix_(lookup, lookup)]
    if np.max(np.abs(y - y.T)) > 1e-9 * np.max(np.abs(y)):
        raise FastFlowUnsupported("fast power flow: off-nominal or phase-shifting transformers")
    eg = trial.ext_grid.iloc[0]
    v0 = complex(eg.vm_pu * np.exp(1j * np.deg2rad(eg.va_degree)))
    slack = int(np.flatnonzero(lookup == ref[0])[0])
    return y, slack, v0, float(internal["baseMVA"])


def _tree(y: np.ndarray, slack: int) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first order from the slack and each bus's parent; refuse meshed or split feeders."""
    n = len(y)
    adjacent = (np.abs(y) > 0) & ~np.eye(n, dtype=bool)
    if adjacent.sum() // 2 != n - 1:
        raise FastFlowUnsupported("fast power flow: feeder is not radial")
    parent = np.full(n, -1, dtype=np.int64)
    parent[slack] = slack
    order = [slack]
    for i in order:
        for j in np.flatnonzero(adjacent[i]):
            if parent[j] < 0:
                parent[j] = i
                order.append(int(j))
    if len(order) != n:
        raise FastFlowUnsupported("fast power flow: feeder has buses not connected to the slack")
    return np.asarray(order, dtype=np.int64), parent
