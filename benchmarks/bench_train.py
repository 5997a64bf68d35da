"""Parallel training speed (issue 12): env steps/s with 1 and N worker environments, side by side in one run.

Two measurements per worker count, on the same scenario and seed:
- `collect`: the vector environment alone, stepped with random actions for `--seconds`
  (1: `DummyVecEnv` in this process; N: `cosim train`'s `SubprocVecEnv` workers); start-up excluded;
- `sac`: `cosim train --algo sac --envs N` for `--steps` steps (one gradient step per vector step,
  so N workers also do N times fewer updates per transition); wall time includes building the
  environments and starting the workers. A short warm-up run first pays the imports.
The figures depend on free cores: this machine has 2, shared with other jobs (load printed).

Usage: python benchmarks/bench_train.py [--steps 3000] [--envs 2] [--seconds 10] [--scenario ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from controllers.drl.sources import open_source  # noqa: E402
from controllers.drl.train import TrainConfig, train, vector_env, worker_env  # noqa: E402


def collect(scenario: Path, envs: int, seconds: float) -> dict:
    """Vector-environment steps per second (transitions, all workers) with random actions."""
    source, cfg = open_source(scenario), TrainConfig(envs=envs)
    vec = vector_env(source, cfg) if envs > 1 else DummyVecEnv([partial(worker_env, source, cfg)])
    try:
        vec.seed(0)
        vec.reset()
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, (256, envs, vec.action_space.shape[0])).astype(np.float32)
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for a in actions:
                vec.step(a)
            steps += len(actions) * envs
        wall = time.perf_counter() - t0
    finally:
        vec.close()
    return {"setting": "collect", "envs": envs, "env_steps": steps, "wall_s": round(wall, 2),
            "env_steps_per_s": round(steps / wall, 1)}


def sac(scenario: Path, steps: int, envs: int) -> dict:
    """One `cosim train` SAC run; its env steps/s over the whole training wall time."""
    cfg = TrainConfig(algo="sac", steps=steps, seed=0, envs=envs)
    with tempfile.TemporaryDirectory() as out:
        result = train(scenario, cfg, Path(out), command="bench_train")
    return {"setting": "sac", "envs": envs, "env_steps": result.env_steps, "wall_s": round(result.wall_s, 2),
            "env_steps_per_s": round(result.env_steps / result.wall_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--envs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "ieee33-pv-wind.yaml")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bench_train.json")
    args = parser.parse_args()
    sac(args.scenario, 300, 1)  # warm-up: imports, compiled code
    rows = [collect(args.scenario, n, args.seconds) for n in (1, args.envs)]
    rows += [sac(args.scenario, args.steps, n) for n in (1, args.envs)]
    print(f"{args.scenario.name}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'setting':8} {'envs':>4} {'steps':>7} {'wall s':>8} {'env steps/s':>12} {'speed-up':>9}")
    for row in rows:
        base = next(r for r in rows if r["setting"] == row["setting"] and r["envs"] == 1)
        row["speedup"] = round(row["env_steps_per_s"] / base["env_steps_per_s"], 2)
        print(f"{row['setting']:8} {row['envs']:>4} {row['env_steps']:>7} {row['wall_s']:>8.1f} "
              f"{row['env_steps_per_s']:>12.1f} {row['speedup']:>8.2f}x")
    result = {"cores": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1), "rows": rows}
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
