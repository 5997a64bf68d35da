"""Co-simulation speed and memory (issue 2), measured side by side in one run.

1. IEEE 33, one day at 1-min steps (1,440 steps), one PV, one wind turbine, loads, recorder:
   the full mosaik co-simulation, against the same day solved with one pandapower `runpp`
   call per step (default and init='results'), all on one core.
2. SimBench 1-MVLV-urban-all-0-sw (~10,000 buses), one day at 15-min steps: wall time and
   peak memory (RSS) of a whole `cosim run`, in a fresh process.

Usage: python benchmarks/bench_core.py [--skip-simbench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import pandapower as pp

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.recording import Recording  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402
from cosim.assembly import assemble  # noqa: E402
from cosim.world import run_world  # noqa: E402

IEEE33_DAY = """\
name: bench-ieee33-day
seed: 1
clock: {start: "2025-06-21T00:00:00", duration: 24h, step: 1min}
grid: {feeder: ieee33}
loads: {profile: residential, noise: 0.03}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 1.0}
  - {name: wt1, kind: wind, bus: 25, p_mw: 0.8}
"""

SIMBENCH_DAY = """\
name: bench-simbench-urban
seed: 1
clock: {{start: "2025-06-21T00:00:00", duration: 24h, step: 15min}}
grid: {{feeder: "simbench:1-MVLV-urban-all-0-sw", engine: {engine}}}
loads: {{profile: residential, noise: 0.03}}
"""


def cosim_day(path: Path, workdir: Path) -> tuple[float, float, int]:
    """Seconds for assembling and for running the mosaik world; number of steps."""
    t0 = time.perf_counter()
    asm = assemble(load_scenario(path))
    t1 = time.perf_counter()
    rec = Recording(workdir / "ts.parquet", asm.inputs.times[0], asm.step_s)
    run_world(asm, rec)
    rec.close()
    return t1 - t0, time.perf_counter() - t1, asm.n_steps


def runpp_day(path: Path, init: str) -> float:
    """Seconds to solve the same day's injections with one pandapower runpp per step."""
    asm = assemble(load_scenario(path))
    model, inp = asm.model, asm.inputs
    net = model.feeder.net
    p_nom, q_nom = model.load_p_nom, model.load_q_nom
    t0 = time.perf_counter()
    for k in range(asm.n_steps):
        net.load["p_mw"] = p_nom * inp.load_scale[k]
        net.load["q_mvar"] = q_nom * inp.load_scale[k]
        net.sgen["p_mw"] = inp.der_p_avail_mw[k]
        pp.runpp(net, init=init if k else "auto")
    return time.perf_counter() - t0


def simbench_run(workdir: Path, engine: str) -> dict:
    """A whole `cosim run` of the SimBench day on `engine` in a fresh process: wall time, per step, peak RSS."""
    path = workdir / f"simbench-{engine}.yaml"
    path.write_text(SIMBENCH_DAY.format(engine=engine))
    workdir = workdir / engine
    code = textwrap.dedent(f"""
        import json, resource, time, warnings
        warnings.filterwarnings("ignore")
        from pathlib import Path
        from cosim.scenario.loader import load_scenario
        from cosim.runner import run_scenario
        t0 = time.perf_counter()
        loaded = load_scenario({str(path)!r})
        t1 = time.perf_counter()
        out = run_scenario(loaded, Path({str(workdir / 'sb')!r}))
        t2 = time.perf_counter()
        run = json.loads((Path({str(workdir / 'sb')!r}) / "run.json").read_text())
        from cosim.assembly import assemble
        asm = assemble(loaded)  # the grid model alone: one step of the day's injections, 10 times
        inp, model = asm.inputs, asm.model
        t3 = time.perf_counter()
        for k in range(10):
            model.step(inp.load_scale[k], inp.der_p_avail_mw[k], None, None, inp.native_pv_pu[k], inp.native_wind_pu[k])
        model_step_s = (time.perf_counter() - t3) / 10
        print(json.dumps({{"load_s": t1 - t0, "run_s": t2 - t1, "status": out.status, "engine": run.get("engine"),
                          "grid_model_step_s": model_step_s,
                          "engine_note": run.get("engine_note"), "run_steps_per_s": run.get("steps_per_s"),
                          "steps": run.get("steps_completed"), "buses": len(loaded.feeder.net.bus),
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-simbench", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the issue asks
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "ieee33.yaml"
        path.write_text(IEEE33_DAY)
        cosim_day(path, work)  # warm-up: imports, caches
        setup, runs, n = min((cosim_day(path, work) for _ in range(3)), key=lambda r: r[1])
        pp_auto = runpp_day(path, "auto")
        pp_results = runpp_day(path, "results")
        results["ieee33_day"] = {
            "steps": n,
            "cosim_setup_s": round(setup, 3),
            "cosim_run_s": round(runs, 3),
            "cosim_steps_per_s": round(n / runs, 1),
            "runpp_auto_s": round(pp_auto, 3),
            "runpp_results_s": round(pp_results, 3),
            "speedup_vs_runpp_auto": round(pp_auto / runs, 1),
            "speedup_vs_runpp_results": round(pp_results / runs, 1),
        }
        if not args.skip_simbench:  # the two engines side by side, each in a fresh process
            fast, slow = (simbench_run(work, engine) for engine in ("lightsim2grid", "pandapower"))
            results["simbench_urban_day"] = {"lightsim2grid": fast, "pandapower": slow,
                                             "run_speedup": round(slow["run_s"] / fast["run_s"], 2),
                                             "grid_step_speedup": round(slow["grid_model_step_s"]
                                                                        / fast["grid_model_step_s"], 2)}
    print(json.dumps(results, indent=2))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_core.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
