"""The WLS detector's cost per step, sparse against dense algebra, on IEEE 33, IEEE 69 and SimBench
1-MVLV-urban-all-0-sw (10,458 buses), side by side in one run.

Each (feeder, algebra) runs in a fresh process pinned to one BLAS thread: the feeder at nominal
load solved by pandapower is the truth, every bus V, P, Q and line P, Q is metered (the default
detector block) with seeded noise. Per step: a cold estimate (flat start), the warm estimate the
runtime does on the next step (started at the last estimate), both with the chi-square and
normalised-residual statistics, and the stealthy-attack builder (a = h(x + c) - h(x), full access,
0.05 MW at one bus); peak RSS of the process after loading the feeder and after the steps. `dense`
is the formula of the dense implementation (H densified, G = H^T W H, numpy solve, Omega from
G^-1 H^T); it is not run where H alone would not fit in 4 GB.

Writes benchmarks/results/bench_wls_sparse.json. Usage: python benchmarks/bench_wls_sparse.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEEDERS = ("ieee33", "ieee69", "simbench:1-MVLV-urban-all-0-sw")
DENSE_LIMIT_BYTES = 4e9  # H as a dense float64 array


def rss_mb() -> float:
    """Peak resident set size of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dense_estimate(wls, z: np.ndarray, topo, start: np.ndarray | None = None):
    """The dense formula: Gauss-Newton with numpy solves, Omega = R - H G^-1 H^T from G^-1 H^T."""
    from cosim.detection.wls import Estimate

    net, m = wls.network, wls.meters
    use = np.isfinite(z) & net.usable(topo, m)
    w, zu = 1.0 / m.sigma[use] ** 2, z[use]
    V = net.flat_start(topo) if start is None else start
    converged = False
    for _ in range(wls.max_iter):
        h, H = net.measure(topo, V, m)
        h, H = h[use], H[use].toarray()
        dx = np.linalg.solve(H.T @ (w[:, None] * H), H.T @ (w * (zu - h)))
        V = net.with_states(topo, V, dx)
        if np.max(np.abs(dx)) < wls.tol:
            converged = True
            break
    h, H = net.measure(topo, V, m)
    h, H = h[use], H[use].toarray()
    K = np.linalg.solve(H.T @ (w[:, None] * H), H.T)
    r = zu - h
    omega = m.sigma[use] ** 2 - np.einsum("ij,ji->i", H, K)
    normalised = np.full(len(z), np.nan)
    normalised[use] = np.abs(r) / np.sqrt(np.maximum(omega, 1e-300))
    dof = int(use.sum()) - topo.n_states
    return Estimate(V, np.full(len(z), np.nan), normalised, float(np.sum(w * r**2)), dof, wls.threshold(dof),
                    converged)


def one(feeder_name: str, algebra: str, repeat: int) -> dict:
    """Figures of one (feeder, algebra) in this process."""
    import pandapower as pp
    from threadpoolctl import threadpool_limits

    from cosim.detection.network import VM, P, PF, Q, QF, Network, plan_for
    from cosim.detection.stealthy import stealthy_false_data
    from cosim.detection.wls import WLS
    from cosim.grid.feeders import load_feeder
    from cosim.scenario.schema import Detector

    t0 = time.perf_counter()
    feeder = load_feeder(feeder_name)
    load_s = time.perf_counter() - t0
    net = copy.deepcopy(feeder.net)
    pp.runpp(net)
    t0 = time.perf_counter()
    network = Network(feeder)
    plan = plan_for(Detector(), feeder)
    meters = network.meters(plan)
    topo = network.topology()
    model_s = time.perf_counter() - t0
    bus = dict(zip(feeder.bus_labels.tolist(), net.bus.index))
    line = dict(zip(feeder.line_labels.tolist(), net.line.index))
    read = {VM: lambda m: net.res_bus.vm_pu[bus[m.label]], P: lambda m: -net.res_bus.p_mw[bus[m.label]],
            Q: lambda m: -net.res_bus.q_mvar[bus[m.label]], PF: lambda m: net.res_line.p_from_mw[line[m.label]],
            QF: lambda m: net.res_line.q_from_mvar[line[m.label]]}
    kept = set(meters.names)
    truth = np.array([read[m.kind](m) for m in plan if m.name in kept])
    z = truth + np.random.default_rng(1).normal(0, 1, len(truth)) * meters.noise
    wls = WLS(network, meters)
    n_states, n_meters = topo.n_states, int(network.usable(topo, meters).sum())
    out = {"feeder": feeder_name, "algebra": algebra, "buses": len(feeder.bus_labels), "meters": n_meters,
           "states": n_states, "load_s": round(load_s, 2), "model_s": round(model_s, 2),
           "rss_after_load_mb": round(rss_mb())}
    if algebra == "dense" and n_meters * n_states * 8 > DENSE_LIMIT_BYTES:
        out["skipped"] = f"dense H alone is {n_meters * n_states * 8 / 1e9:.1f} GB"
        return out
    estimate = wls.estimate if algebra == "sparse" else lambda z, topo, start=None: dense_estimate(wls, z, topo, start)
    with threadpool_limits(1):
        t0 = time.perf_counter()
        est = estimate(z, topo)
        out["cold_s"] = round(time.perf_counter() - t0, 4)
        warm = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            again = estimate(z, topo, est.V)
            warm.append(time.perf_counter() - t0)
        out["warm_s"] = round(float(np.median(warm)), 4)
        delta = np.zeros((2, len(network.bus)))
        target = feeder.bus_labels[len(feeder.bus_labels) // 2]
        delta[0, network.bus_row[int(target)]] = 0.05
        t0 = time.perf_counter()
        a = stealthy_false_data(network, topo, est.V, meters, np.ones(len(meters.names), bool), *delta)
        out["stealthy_s"] = round(time.perf_counter() - t0, 4)
        attacked = estimate(z + a, topo, est.V)
    out.update(converged=bool(est.converged and again.converged), J=round(est.J, 3), dof=est.dof,
               threshold=round(est.threshold, 3), lnr=round(est.lnr, 4), J_attacked=round(attacked.J, 3),
               max_vm_error=float(np.max(np.abs(np.abs(est.V)[[network.bus_row[b] for b in bus]]
                                                 - net.res_bus.vm_pu.to_numpy()))),
               rss_peak_mb=round(rss_mb()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm estimates per figure (median)")
    parser.add_argument("--one", nargs=2, metavar=("FEEDER", "ALGEBRA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args.repeat)))
        return
    rows = []
    for feeder in FEEDERS:
        for algebra in ("dense", "sparse"):
            done = subprocess.run([sys.executable, __file__, "--one", feeder, algebra, "--repeat", str(args.repeat)],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "benchmarks" / "results" / "bench_wls_sparse.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
