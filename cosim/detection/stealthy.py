"""The false data a stealthy attacker can write with access to some meters only.

a = h(x + c) - h(x) moves the estimate by c and leaves every residual where it was, but it rewrites
every meter whose reading c changes. An attacker that can write only the meters A picks c in the
null space of H_B, the meters it cannot write: among those shifts, the one whose faked injections
come nearest (least squares) to the ones it wants, refined by Gauss-Newton on the nonlinear model
until every meter of B reads the same to machine precision. If no shift in that null space fakes
any of the wanted injections, no stealthy attack exists for that access. H is sparse; the null
space is that of H_B over the states it reaches (`null_space_reach`: the others are pinned by B),
dense over those only, so a local access set costs little on a large feeder.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import null_space

from cosim.detection.network import P, Q, Meters, Network, Topology
from cosim.detection.sparse import null_space_reach

MIN_SHARE = 1e-3  # a shift that fakes less of the wanted injections than this is no attack


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
