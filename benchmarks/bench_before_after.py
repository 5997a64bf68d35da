"""Before / after a change, side by side in one run: co-simulation steps/s and RL environment steps/s.

Checks out REV (default: the last commit before the one-core refactoring) into a temporary git
worktree and times the same two workloads on both trees, interleaved round by round in fresh
processes pinned to one core, so both see the same machine load:
1. IEEE 33, one day at 1-min steps, PV + wind + loads + recorder: the full mosaik co-simulation;
2. the RL environment on `scenarios/ieee33-pv-wind.yaml` (4 inverters), random actions, resets included.
Prints the best of the rounds for each tree and their ratio.

Usage: python benchmarks/bench_before_after.py [--rev 04c1fda] [--rounds 3] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from bench_core import IEEE33_DAY as DAY  # the same day as the core benchmark

ROOT = Path(__file__).resolve().parents[1]

COSIM = textwrap.dedent("""
    import json, os, sys, time, warnings
    warnings.filterwarnings("ignore")
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sys.path.insert(0, os.getcwd())
    from pathlib import Path
    from cosim.recording import Recording
    from cosim.scenario.loader import load_scenario
    from cosim.world import run_world
    try:
        from cosim.assembly import assemble
    except ImportError:  # before the refactoring
        from cosim.world import assemble
    work = Path(sys.argv[1])
    (work / "day.yaml").write_text(sys.argv[2])
    best = 0.0
    for _ in range(3):
        asm = assemble(load_scenario(work / "day.yaml"))
        rec = Recording(work / "ts.parquet", asm.inputs.times[0], asm.step_s)
        t0 = time.perf_counter()
        run_world(asm, rec)
        best = max(best, asm.n_steps / (time.perf_counter() - t0))
        rec.close()
    print(json.dumps({"steps_per_s": best, "code": __import__("cosim").__file__}))
""")

ENV = textwrap.dedent("""
    import json, os, sys, time, warnings
    warnings.filterwarnings("ignore")
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sys.path.insert(0, os.getcwd())
    import numpy as np
    from controllers.drl.env import GridEnv
    env = GridEnv("scenarios/ieee33-pv-wind.yaml")
    actions = np.random.default_rng(0).uniform(-1, 1, (512, env.action_space.shape[0])).astype(np.float32)
    env.reset(seed=0)
    for a in actions[:64]:
        env.step(a)  # compiled code warm
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < float(sys.argv[1]):
        for a in actions:
            *_, terminated, truncated, _ = env.step(a)
            steps += 1
            if terminated or truncated:
                env.reset()
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - t0), "code": __import__("cosim").__file__}))
""")

def measure(tree: Path, code: str, *args: str) -> float:
    """Run one timing snippet with `tree`'s code (first on sys.path) in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tree)
    if proc.returncode:
        raise SystemExit(f"{tree}: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out["code"].startswith(str(tree)):
        raise SystemExit(f"{tree}: imported {out['code']} instead of the tree's own code")
    return out["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="04c1fda", help="the 'before' revision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="environment stepping per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.rev], check=True)
        try:
            trees = {"before": before, "after": ROOT}
            best = {(t, w): 0.0 for t in trees for w in ("cosim", "env")}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    work = Path(tmp) / name
                    work.mkdir(exist_ok=True)
                    best[name, "cosim"] = max(best[name, "cosim"], measure(tree, COSIM, str(work), DAY))
                    best[name, "env"] = max(best[name, "env"], measure(tree, ENV, str(args.seconds)))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    results = {w: {"before": round(best["before", w], 1), "after": round(best["after", w], 1),
                   "after_over_before": round(best["after", w] / best["before", w], 3)} for w in ("cosim", "env")}
    print(f"revision {args.rev} vs working tree, best of {args.rounds} interleaved rounds, one core")
    print(f"{'workload':<44}{'before':>10}{'after':>10}{'ratio':>8}")
    labels = {"cosim": "co-simulation, IEEE 33 day (steps/s)", "env": "RL environment, IEEE 33 (steps/s)"}
    for w, r in results.items():
        print(f"{labels[w]:<44}{r['before']:>10,.0f}{r['after']:>10,.0f}{r['after_over_before']:>8.2f}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_before_after.json").write_text(json.dumps({"rev": args.rev, **results}, indent=2))


if __name__ == "__main__":
    main()
