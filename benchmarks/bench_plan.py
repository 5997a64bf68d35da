"""DG planning: time and gap to the published 3-DG optimum of exact / NSGA-II / DE / DQN, and the seed's tables re-checked.

    python benchmarks/bench_plan.py                 # IEEE 33 and 69, losses, every method
    python benchmarks/bench_plan.py --dqn-steps 0   # skip the DQN
    python benchmarks/bench_plan.py --tables        # seed 001's Tables II and III re-evaluated (markdown)

Gap = (method's losses - published optimum) / published optimum. Timing is wall time of the
method alone on this machine (the feeder and engine built beforehand).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandapower as pp

from cosim.grid.feeders import load_feeder
from cosim.planning.network import PlanningGrid
from cosim.planning.objectives import resolve
from cosim.planning.problem import Problem
from cosim.planning.solve import solve

OPTIMUM = {"ieee33": 71.457, "ieee69": 69.426}  # kW, shared/data/ieee69/README.md

# seed 001 (Ton et al., ETASR 2025), Tables II and III: (method, [(bus, MW)], F, Ploss kW, C USD, Vdev pu, CO2 kg)
SEED_TABLES = {
    "ieee33": [("COA", [(14, 1.07), (24, 0.75), (30, 1.1)], 0.256, 71.46, 240_000, 0.010, 293),
               ("SSA", [(14, 1.05), (24, 0.78), (30, 1.12)], 0.261, 72.45, 245_000, 0.015, 293),
               ("NSGA-II + DE", [(14, 1.1), (24, 0.72), (30, 1.15)], 0.230, 68.30, 235_000, 0.009, 293),
               ("DRL", [(14, 1.08), (24, 0.74), (30, 1.11)], 0.220, 65.80, 230_000, 0.008, 293)],
    "ieee69": [("COA", [(12, 1.15), (33, 0.85), (55, 1.2)], 0.265, 69.39, 255_000, 0.01, 293),
               ("SSA", [(12, 1.12), (33, 0.88), (55, 1.18)], 0.270, 70.45, 260_000, 0.015, 300),
               ("NSGA-II + DE", [(12, 1.18), (33, 0.8), (55, 1.25)], 0.240, 66.80, 250_000, 0.009, 320),
               ("DRL", [(12, 1.14), (33, 0.84), (55, 1.22)], 0.230, 63.50, 245_000, 0.007, 320)],
}


def pandapower_terms(feeder: str, dgs: list[tuple[int, float]]) -> dict[str, float]:
    """The seed's four terms of a placement, solved by pandapower's Newton-Raphson (unity-pf DGs)."""
    fed = load_feeder(feeder)
    net = fed.net
    for bus, p in dgs:
        pp.create_sgen(net, fed.bus_index(bus), p_mw=p)
    pp.runpp(net, numba=False)
    obj = resolve("seed001")
    mw = sum(p for _, p in dgs)
    share = obj.renewable_share
    return {"loss_kw": float(net.res_line.pl_mw.sum()) * 1000, "vdev_pu": float(np.mean(np.abs(net.res_bus.vm_pu - 1))),
            "cost_usd": mw * (share * obj.cost_usd_per_mw["renewable"] + (1 - share) * obj.cost_usd_per_mw["fossil"]),
            "emission_kg": mw * (share * obj.emission_kg_per_mw["renewable"] + (1 - share) * obj.emission_kg_per_mw["fossil"]),
            "vm_min_pu": float(net.res_bus.vm_pu.min())}


def tables() -> None:
    """Markdown: each seed placement re-evaluated, F by the seed's equation (5), and the true optima."""
    obj = resolve("seed001")
    for feeder, rows in SEED_TABLES.items():
        print(f"\n### {feeder}\n")
        print("| method | sites (bus: MW) | F claimed | F by eq. (5) | Ploss claimed kW | Ploss pandapower kW "
              "| C claimed USD | C by Table I USD | Vdev claimed | Vdev pandapower | CO2 claimed kg | CO2 by Table I kg |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, dgs, f, loss, cost, vdev, co2 in rows:
            t = pandapower_terms(feeder, dgs)
            sites = ", ".join(f"{b}: {p}" for b, p in dgs)
            print(f"| {name} | {sites} | {f} | {obj.value(t):.3f} | {loss} | {t['loss_kw']:.2f} | {cost:,} "
                  f"| {t['cost_usd']:,.0f} | {vdev} | {t['vdev_pu']:.4f} | {co2} | {t['emission_kg']:.0f} |")
        grid = PlanningGrid(load_feeder(feeder))
        for goal in ("losses", "seed001"):
            plan = solve(Problem(grid, resolve(goal), 3, 0.1, 2.0), "exact")
            dgs = [(d["bus"], round(d["p_mw"], 4)) for d in plan.dgs]
            t = pandapower_terms(feeder, dgs)
            sites = ", ".join(f"{b}: {p:.3f}" for b, p in dgs)
            print(f"| **exact, min {goal}** | {sites} | – | {obj.value(t):.3f} | – "
                  f"| {t['loss_kw']:.2f} | – | {t['cost_usd']:,.0f} | – | {t['vdev_pu']:.4f} | – | {t['emission_kg']:.0f} |")


def methods(dqn_steps: int, seed: int) -> None:
    """Time and gap to the published optimum of every method on IEEE 33 and 69 (losses, 3 DGs, 0.1-2 MW)."""
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| feeder | method | sites | losses kW | gap to optimum | time s | power flows |")
    print("|---|---|---|---:|---:|---:|---:|")
    for feeder, optimum in OPTIMUM.items():
        grid = PlanningGrid(load_feeder(feeder))
        for method in ("exact", "nsga2", "de", "dqn"):
            if method == "dqn" and dqn_steps <= 0:
                continue
            started = time.perf_counter()
            plan = solve(Problem(grid, resolve("losses"), 3, 0.1, 2.0), method, seed=seed, dqn_steps=dqn_steps)
            wall = time.perf_counter() - started
            sites = ", ".join(f"{d['bus']}: {d['p_mw']:.3f}" for d in plan.dgs)
            gap = (plan.loss_kw - optimum) / optimum * 100
            print(f"| {feeder} | {method} | {sites} | {plan.loss_kw:.3f} | {gap:+.3f} % | {wall:.2f} | {plan.solves:,} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", action="store_true", help="re-evaluate the seed's Tables II and III instead")
    parser.add_argument("--dqn-steps", type=int, default=20_000, help="DQN training steps (0: skip the DQN)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tables() if args.tables else methods(args.dqn_steps, args.seed)


if __name__ == "__main__":
    main()
