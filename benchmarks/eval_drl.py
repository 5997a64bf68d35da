"""Held-out evaluation (issue 4): a DRL policy against none, droop (IEEE 1547 Cat B volt-var) and the OPF oracle.

Every controller runs the co-simulation's loop on `GridModel` (controllers.rollout: same
physics, timing, observations and KPI code as `cosim run`, without mosaik) on days whose
seeds training never draws (`controllers.drl.env.heldout_days`). Prints a Markdown table of
per-day means and the goal checks.

Usage: python benchmarks/eval_drl.py [--policy policies/ieee33-voltvar.pt] [--days 5]
                                     [--scenario scenarios/ieee33-pv-wind.yaml] [--skip-opf]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controllers.baselines.droop import VoltVar  # noqa: E402
from controllers.baselines.none import DoNothing  # noqa: E402
from controllers.baselines.opf import OPFOracle  # noqa: E402
from controllers.drl.env import heldout_days  # noqa: E402
from controllers.drl.policy import PolicyController  # noqa: E402
from controllers.rollout import run_day  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402

COLUMNS = [("voltage_violation_bus_minutes", "violation bus-min"), ("loss_energy_kwh", "losses kWh"),
           ("curtailed_energy_kwh", "curtailed kWh"), ("reactive_energy_kvarh", "reactive |Q| kvarh")]


def evaluate(scenario: Path, policy: Path, days: list[int], skip_opf: bool) -> dict[str, dict[str, float]]:
    """Per-day mean KPIs of each controller over `days`."""
    loaded = load_scenario(scenario)
    factories = {"none": DoNothing, "droop": VoltVar, "opf": OPFOracle, "drl": lambda: PolicyController(policy)}
    if skip_opf:
        del factories["opf"]
    table = {}
    for name, make in factories.items():
        t0 = time.perf_counter()
        runs = [run_day(loaded, make(), day) for day in days]
        table[name] = {key: sum(r[key] for r in runs) / len(runs) for key, _ in COLUMNS}
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return table


def markdown(table: dict[str, dict[str, float]]) -> str:
    """The table as Markdown, one row per controller."""
    lines = ["| controller | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for name, kpis in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{kpis[key]:,.1f}" for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def goals(table: dict[str, dict[str, float]]) -> list[str]:
    """The issue's goals, each with the measured figures and met / not met."""
    drl, droop = table["drl"], table["droop"]
    v, loss = "voltage_violation_bus_minutes", "loss_energy_kwh"
    out = [f"DRL violation bus-minutes <= half of droop's: {drl[v]:.1f} vs {0.5 * droop[v]:.1f} -> "
           f"{'met' if drl[v] <= 0.5 * droop[v] else 'not met'}",
           f"DRL losses <= droop's: {drl[loss]:.1f} vs {droop[loss]:.1f} kWh -> "
           f"{'met' if drl[loss] <= droop[loss] else 'not met'}"]
    if "opf" in table:
        ratio = drl[loss] / table["opf"][loss] - 1.0
        out.append(f"DRL losses within 10 % of the oracle's: {100 * ratio:+.1f} % -> "
                   f"{'met' if ratio <= 0.10 else 'not met'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "ieee33-voltvar.pt")
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "ieee33-pv-wind.yaml")
    parser.add_argument("--days", type=int, default=5, help="number of held-out days")
    parser.add_argument("--skip-opf", action="store_true", help="leave out the (slow) OPF oracle")
    args = parser.parse_args()
    days = heldout_days(args.days)
    print(f"{args.scenario.name}, policy {args.policy.name}, {len(days)} held-out days (seeds {days[0]}..{days[-1]}); "
          "per-day means", file=sys.stderr)
    table = evaluate(args.scenario, args.policy, days, args.skip_opf)
    print(markdown(table))
    print()
    print("\n".join(goals(table)))


if __name__ == "__main__":
    main()
