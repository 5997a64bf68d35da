"""RL environment speed (issue 4): GridEnv steps per second on IEEE 33 with 4 inverters, on one core.

Random actions, whole days including each reset (new input profiles and events); the environment
on the sweep engine (its default) against the same environment on the scenario's own engine.

Usage: python benchmarks/bench_env.py [--seconds 5] [--scenario scenarios/ieee33-pv-wind.yaml]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controllers.drl.env import GridEnv  # noqa: E402


def steps_per_second(env: GridEnv, seconds: float) -> tuple[float, int]:
    """Step `env` with random actions for about `seconds`; returns (steps/s, resets)."""
    actions = np.random.default_rng(0).uniform(-1, 1, (4096, env.action_space.shape[0])).astype(np.float32)
    env.reset(seed=0)
    env.step(actions[0])  # compiled code warm
    steps = resets = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for a in actions[:512]:
            _, _, terminated, truncated, _ = env.step(a)
            steps += 1
            if terminated or truncated:
                env.reset()
                resets += 1
    return steps / (time.perf_counter() - t0), resets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "ieee33-pv-wind.yaml"))
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the issue asks
    env = GridEnv(args.scenario)
    print(f"{Path(args.scenario).name}: feeder {env.loaded.scenario.grid.feeder}, {len(env.ders)} inverters, "
          f"{env.n_steps} steps per day, engine {env.model.engine.name} {env.engine_note}".rstrip())
    fast, resets = steps_per_second(env, args.seconds)
    print(f"GridEnv, {env.model.engine.name} engine: {fast:10,.0f} steps/s ({resets} day resets included)")
    own = GridEnv(args.scenario, engine=None)
    slow, _ = steps_per_second(own, min(args.seconds, 3.0))
    print(f"GridEnv, {own.model.engine.name} engine: {slow:10,.0f} steps/s")
    print(f"target >= 10,000 steps/s: {'met' if fast >= 10_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
