"""The false data a stealthy attacker can write with access to some meters only.

a = h(x + c) - h(x) moves the estimate by c and leaves every residual where it was, but it rewrites
every meter whose reading c changes. An attacker that can write only the meters A picks c in the
null space of H_B, the meters it cannot write: among those shifts, the one whose faked injections
come nearest (least squares) to the ones it wants, refined by Gauss-Newton on the nonlinear model
until every meter of B reads the same to machine precision. If no shift in that null space fakes
any of the wanted injections, no stealthy attack exists for that access. H is sparse; the null
space is that of H_B over the states it reaches (`null_space_reach`: the others are pinned by B),
dense over those only, so a local access set costs little on a large feeder.

Where no stealthy shift fakes what the attacker wants, `least_residual_false_data` writes the false
data that does with the least rise of the chi-square statistic; `best_false_data` picks between them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import null_space

from cosim.detection.network import P, Q, Meters, Network, Topology
from cosim.detection.sparse import factorise, null_space_reach

MIN_SHARE = 1e-3  # a shift that fakes less of the wanted injections than this is no attack
FAKE_TOLERANCE = 0.01  # stealthy false data that fakes the attacked injections to within this share is taken
STEALTHY_RISE = 1e-3  # a least-residual attack predicted to raise J less than this is stealthy
MAX_SHIFT = 0.2  # pu / rad: an estimate moved further than this by false data is outside the linearised model


def _injections(topo: Topology) -> Meters:
    """P and Q injection meters at every energised bus but the slack (unit sigma)."""
    rows = topo.theta
    ones = np.ones(2 * len(rows))
    return Meters((), np.r_[np.full(len(rows), P), np.full(len(rows), Q)], np.r_[rows, rows], ones, ones)


def stealthy_false_data(network: Network, topo: Topology, V: np.ndarray, meters: Meters, writable: np.ndarray,
                        delta_mw: np.ndarray, delta_mvar: np.ndarray, rounds: int = 3) -> np.ndarray | None:
    """a per meter (zero outside `writable`) that makes the buses seem to inject delta (MW / Mvar per bus row)
    more at state V, or as near as the access allows without changing what the other meters read; None when
    no stealthy attack exists."""
    h0 = network.measure(topo, V, meters)[0]
    fixed = network.usable(topo, meters) & ~writable
    if not fixed.any():
        return network.measure(topo, network.shifted_state(topo, V, delta_mw, delta_mvar), meters)[0] - h0
    injections = _injections(topo)
    wanted = np.r_[delta_mw[topo.theta], delta_mvar[topo.theta]]
    base = network.measure(topo, V, injections)[0]
    c = np.zeros(topo.n_states)
    for i in range(rounds):  # a least-squares step towards the wanted injections within the null space of H_B ...
        W = network.with_states(topo, V, c)
        H_B = network.measure(topo, W, meters)[1][fixed]
        free = np.flatnonzero(null_space_reach(H_B))  # every state outside is pinned by the meters of B
        basis = null_space(_columns(H_B, free, touching=True))
        if basis.shape[1] == 0:
            return None
        now, J = network.measure(topo, W, injections)
        J = _columns(J, free)
        faked = J @ basis
        y = _least_squares(faked, wanted - (now - base), 1e-8 * np.linalg.norm(J, 2))
        if i == 0 and wanted @ (faked @ y) < MIN_SHARE * (wanted @ wanted):
            return None
        c[free] += basis @ y
        c = _restore(network, topo, V, c, meters, fixed, h0, free)  # ... then back onto h_B(V + c) = h_B(V)
    a = network.measure(topo, network.with_states(topo, V, c), meters)[0] - h0
    return np.where(writable, a, 0.0)


def _columns(A: sp.csr_matrix, cols: np.ndarray, touching: bool = False) -> np.ndarray:
    """A's columns `cols` as a dense array: every row, or only the rows with an entry there (`touching`)."""
    sub = sp.csr_matrix(A[:, cols])
    return (sub[np.flatnonzero(np.diff(sub.indptr))] if touching else sub).toarray()


def _least_squares(A: np.ndarray, b: np.ndarray, floor: float) -> np.ndarray:
    """Minimum-norm least squares, directions with a singular value below `floor` (absolute) left out: a
    null-space direction that fakes injections only by rounding error is no attack."""
    u, s, vt = np.linalg.svd(A, full_matrices=False)
    keep = s > floor
    return vt[keep].T @ ((u[:, keep].T @ b) / s[keep])


def _restore(network: Network, topo: Topology, V: np.ndarray, c: np.ndarray, meters: Meters, fixed: np.ndarray,
             h0: np.ndarray, free: np.ndarray, iterations: int = 10) -> np.ndarray:
    """c corrected (minimum-norm Gauss-Newton over the `free` states, the only ones c moves) until the meters
    `fixed` read h0 again to machine precision."""
    for _ in range(iterations):
        h, H = network.measure(topo, network.with_states(topo, V, c), meters)
        miss = h[fixed] - h0[fixed]
        if np.max(np.abs(miss)) < 1e-12:
            break
        sub = sp.csr_matrix(H[fixed][:, free])
        rows = np.flatnonzero(np.diff(sub.indptr))  # the others do not depend on the free states
        c[free] -= np.linalg.lstsq(sub[rows].toarray(), miss[rows], rcond=None)[0]
    return c


class _Linear:
    """The WLS estimate's linear response to false data at state V: the meters' readings, H over the usable ones
    with their weights, the gain matrix's factors and the injections' readings and Jacobian, computed once for
    every question `best_false_data` asks."""

    def __init__(self, network: Network, topo: Topology, V: np.ndarray, meters: Meters):
        self.network, self.topo, self.V, self.meters = network, topo, V, meters
        self.h, H = network.measure(topo, V, meters)
        self.usable = network.usable(topo, meters)
        self.rows = np.flatnonzero(self.usable)
        self.H, self.Hu, self.w = H, H[self.rows], 1.0 / meters.sigma[self.rows] ** 2
        self.lu = factorise((self.Hu.T @ sp.diags(self.w) @ self.Hu).tocsc())
        self.injections = _injections(topo)
        self.inj, self.C = network.measure(topo, V, self.injections)

    def response(self, cols: np.ndarray) -> np.ndarray:
        """X = G^-1 H_cols^T W_cols: how the estimate moves per unit of false data on the meters `cols`."""
        weights = sp.diags(1.0 / self.meters.sigma[cols] ** 2)
        return self.lu.solve(np.asarray((self.H[cols].T @ weights).todense()))

    def faked(self, a: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """How far false data a moves the estimate's injections at `rows`."""
        cols = np.flatnonzero(a)
        return self.C[rows] @ (self.response(cols) @ a[cols])


def least_residual_false_data(network: Network, topo: Topology, V: np.ndarray, meters: Meters,
                              writable: np.ndarray, delta_mw: np.ndarray, delta_mvar: np.ndarray,
                              rounds: int = 3) -> np.ndarray | None:
    """a per meter (zero outside `writable`) that moves the WLS estimate so the attacked buses (those with a delta)
    seem to inject delta more with the least rise of the chi-square statistic; None when the access can move
    them only by moving the estimate further than MAX_SHIFT (e.g. through the substation's meters alone).

    Linearised at V: the estimate moves by X a (X = G^-1 H_A^T W_A), the residual by R a (R = E_A - H X), so the
    attacker solves min a^T R^T W R a subject to C X a = delta (C: the attacked buses' injections over the
    states): a = M^-1 N^T (N M^-1 N^T)^-1 delta with M = R^T W R, N = C X; the statistic then rises by about a^T R^T W R a."""
    return _least_residual(_Linear(network, topo, V, meters), writable, delta_mw, delta_mvar, rounds)


def _least_residual(lin: _Linear, writable: np.ndarray, delta_mw: np.ndarray, delta_mvar: np.ndarray,
                    rounds: int = 3) -> np.ndarray | None:
    """`least_residual_false_data` on a linearisation already made."""
    network, topo, V, meters = lin.network, lin.topo, lin.V, lin.meters
    A = np.flatnonzero(writable & lin.usable)
    rows, wanted = _attacked(topo, delta_mw, delta_mvar)
    if not len(A) or not len(rows):
        return None
    X = lin.response(A)
    R = -(lin.Hu @ X)
    R[np.searchsorted(lin.rows, A), np.arange(len(A))] += 1.0
    M = R.T @ (lin.w[:, None] * R)
    N = lin.C[rows] @ X
    ridge = 1e-12 * max(float(np.trace(M)), 1.0)
    Y = np.linalg.solve(M + ridge * np.eye(len(A)), N.T)  # a = M^-1 N^T (N M^-1 N^T)^-1 delta, scale-free
    base, target = lin.inj[rows], wanted
    for _ in range(rounds):  # aim off by what the nonlinear injections miss at the state the estimate moves to
        a_A = Y @ np.linalg.lstsq(N @ Y, target, rcond=None)[0]
        moved = X @ a_A
        if not np.all(np.isfinite(moved)) or np.abs(moved).max() > MAX_SHIFT:  # beyond the linearised model
            return None
        target = target - (network.measure(topo, network.with_states(topo, V, moved), lin.injections)[0][rows]
                           - base - wanted)
    a = np.zeros(len(lin.h))
    a[A] = a_A
    if a_A @ M @ a_A < STEALTHY_RISE:  # stealthy after all: written as h(V + c) - h(V), exact on the nonlinear model
        fixed, c = lin.usable & ~writable, moved.copy()
        if fixed.any():
            c = _restore(network, topo, V, c, meters, fixed, lin.h, np.arange(topo.n_states))
        a = np.where(writable, network.measure(topo, network.with_states(topo, V, c), meters)[0] - lin.h, 0.0)
    return a


def _attacked(topo: Topology, delta_mw: np.ndarray, delta_mvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows of `_injections`, P then Q at every non-slack live bus, of the buses with a delta; the delta there)."""
    attacked = (delta_mw[topo.theta] != 0) | (delta_mvar[topo.theta] != 0)
    rows = np.flatnonzero(np.r_[attacked, attacked])
    return rows, np.r_[delta_mw[topo.theta], delta_mvar[topo.theta]][rows]


def best_false_data(network: Network, topo: Topology, V: np.ndarray, meters: Meters, writable: np.ndarray,
                    delta_mw: np.ndarray, delta_mvar: np.ndarray) -> np.ndarray | None:
    """The false data an attacker that wants the attacked buses to seem to inject exactly delta more writes:
    stealthy if that fakes delta there to within FAKE_TOLERANCE, else the least-residual one, else the stealthy
    one that comes nearest; None if the access allows neither."""
    stealthy = stealthy_false_data(network, topo, V, meters, writable, delta_mw, delta_mvar)
    if stealthy is not None and not (network.usable(topo, meters) & ~writable).any():
        return stealthy  # every meter written: the exact shift, nothing to compromise on
    try:  # a gain matrix singular at V (an outage the estimate barely survives) leaves the stealthy data as is
        lin = _Linear(network, topo, V, meters)
        if stealthy is not None:
            rows, wanted = _attacked(topo, delta_mw, delta_mvar)
            if np.linalg.norm(lin.faked(stealthy, rows) - wanted) <= FAKE_TOLERANCE * np.linalg.norm(wanted):
                return stealthy
        least = _least_residual(lin, writable, delta_mw, delta_mvar)
    except np.linalg.LinAlgError:
        return stealthy
    return least if least is not None else stealthy
