"""Weighted-least-squares state estimation with the two classic bad-data tests.

Gauss-Newton on J(x) = sum(((z - h(x)) / sigma)^2). The chi-square test compares J with the
(1 - significance) quantile of chi2(m - n); the largest-normalised-residual test divides each
residual by the square root of its variance, Omega = R - H G^-1 H^T, and names the meter with
the largest one. H and G = H^T W H are sparse; only the diagonal of Omega is computed
(`cosim.detection.sparse`), so G^-1 is never formed. False data of the form
a = h(x + c) - h(x) (a = H c for the linearised model) moves the estimate by c and leaves the
residual where it was: neither test can see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import chi2, norm

from cosim.detection.network import Meters, Network, Topology, plan_for
from cosim.detection.sparse import factorise, null_space_reach, quadratic_diagonal
from cosim.grid.feeders import Feeder
from cosim.scenario.schema import Detector


@dataclass
class Estimate:
    """One estimate: voltages, residuals per meter (NaN where unused) and the test statistics."""

    V: np.ndarray
    residual: np.ndarray
    normalised: np.ndarray
    J: float
    dof: int
    threshold: float
    converged: bool

    @property
    def score(self) -> float:
        """J over its chi-square threshold: above 1 the chi-square test fails."""
        return self.J / self.threshold if self.converged else float("nan")

    @property
    def lnr(self) -> float:
        """The largest normalised residual."""
        return float(np.nanmax(self.normalised)) if np.isfinite(self.normalised).any() else float("nan")

    @property
    def signed(self) -> np.ndarray:
        """Normalised residuals with the residual's sign (NaN where a meter was unused or the estimate failed)."""
        return np.copysign(self.normalised, self.residual) if self.converged else np.full(len(self.residual), np.nan)

    @property
    def suspect(self) -> int:
        """Index of the meter with the largest normalised residual (-1 if none)."""
        return int(np.nanargmax(self.normalised)) if np.isfinite(self.normalised).any() else -1


def bonferroni_lnr(significance: float, meters: int) -> float:
    """The largest-normalised-residual threshold that alarms at about `significance` over `meters` meters
    (two-sided, Bonferroni): the LNR test's default."""
    return float(norm.ppf(1 - significance / (2 * max(1, meters))))


class WLS:
    """State estimator over a fixed measurement set; `estimate` takes the measured values (NaN = missing)."""

    def __init__(self, network: Network, meters: Meters, significance: float = 0.01,
                 lnr_threshold: float | None = None, alarm: str = "chi2", max_iter: int = 15, tol: float = 1e-8):
        self.network, self.meters = network, meters
        self.significance, self.alarm_on = significance, alarm
        # default: Bonferroni over the meters, so the LNR test alone alarms at about `significance` too
        self.lnr_threshold = lnr_threshold or bonferroni_lnr(significance, len(meters.names))
        self.max_iter, self.tol = max_iter, tol
        self._thresholds: dict[int, float] = {}

    def threshold(self, dof: int) -> float:
        """Chi-square quantile for `dof` degrees of freedom at the configured significance."""
        if dof not in self._thresholds:
            self._thresholds[dof] = float(chi2.ppf(1 - self.significance, dof)) if dof > 0 else float("nan")
        return self._thresholds[dof]

    def estimate(self, z: np.ndarray, topo: Topology, start: np.ndarray | None = None) -> Estimate:
        """Estimate the state from measurements `z` (ordered like the meters) on topology `topo`."""
        net, m = self.network, self.meters
        use = np.isfinite(z) & net.usable(topo, m)
        w = 1.0 / m.sigma[use] ** 2
        W = sp.diags(w)
        zu = z[use]
        V = net.flat_start(topo) if start is None else start
        nan = np.full(len(z), np.nan)
        dof = int(use.sum()) - topo.n_states
        converged = False
        try:
            for _ in range(self.max_iter):
                h, H = net.measure(topo, V, m)
                h, H = h[use], H[use]
                dx = factorise(H.T @ (W @ H)).solve(H.T @ (w * (zu - h)))
                V = net.with_states(topo, V, dx)
                if np.max(np.abs(dx)) < self.tol:
                    converged = True
                    break
            h, H = net.measure(topo, V, m)
            h, H = h[use], H[use]
            # diag(H G^-1 H^T); solved for where Omega is under 5 % of R (nearly critical meters)
            explained = quadratic_diagonal(factorise(H.T @ (W @ H)), H, 0.95 * m.sigma[use] ** 2)
        except np.linalg.LinAlgError:  # unobservable with the meters that reported
            return Estimate(V, nan, nan, float("nan"), dof, self.threshold(dof), False)
        r = zu - h
        omega = m.sigma[use] ** 2 - explained
        critical = omega <= 1e-9 * m.sigma[use] ** 2  # a critical meter's residual is always zero
        residual, normalised = nan.copy(), nan.copy()
        residual[use] = r
        normalised[use] = np.where(critical, 0.0, np.abs(r) / np.sqrt(np.where(critical, 1.0, omega)))
        return Estimate(V, residual, normalised, float(np.sum(w * r**2)), dof, self.threshold(dof), converged)

    def ratio(self, est: Estimate, test: str | None = None) -> float:
        """The statistic of `test` (default: the configured one) over its threshold, the larger for `any`:
        above 1 the test fails (NaN when the estimate did not converge)."""
        if not est.converged:
            return float("nan")
        ratios = {"chi2": est.score, "lnr": est.lnr / self.lnr_threshold}
        test = test or self.alarm_on
        return float(np.fmax(*ratios.values())) if test == "any" else ratios[test]

    def alarm(self, est: Estimate) -> bool:
        """The configured test (chi2, lnr or any) fails on this estimate."""
        return self.ratio(est) > 1.0


def unobservable_buses(network: Network, meters: Meters, topo: Topology) -> list[int]:
    """Published numbers of the buses whose angle or magnitude the meters cannot determine (empty: the feeder is
    observable), from the null space of H at flat start."""
    use = network.usable(topo, meters)
    loose = null_space_reach(network.measure(topo, network.flat_start(topo), meters)[1][use])
    rows = set(np.r_[topo.theta, topo.vm][loose].tolist())
    return sorted(label for label, row in network.bus_row.items() if row in rows)


def estimator_for(detector: Detector, feeder: Feeder) -> WLS:
    """The estimator a detector block describes, on `feeder`."""
    network = Network(feeder)
    return WLS(network, network.meters(plan_for(detector, feeder)), detector.significance,
               detector.lnr_threshold, detector.alarm)
