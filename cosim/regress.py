"""Regression testing of a controller: run scenarios with it, check their criteria and a stored baseline.

Every scenario runs with the controller given on the command line (on a backend: a local process pool or Ray), then
its metrics are checked against the scenario's `criteria:` thresholds and against the
metrics stored in a baseline file for the same controller SPEC and scenario, with
tolerances. With `seeds`, every scenario runs on that many seeds and the checks are statistical
(cosim.regress_stats). Bad input (a scenario, the SPEC, the baseline file, a criterion naming no
metric, --seeds or --alpha out of range) raises `RegressInputError`; everything else ends up as
passed or failed checks.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from controllers.base import ControllerError
from controllers.registry import parse_spec
from cosim import regress_stats
from cosim.metrics import metric_info, worse_directions
from cosim.metrics import tolerances as default_tolerances
from cosim.runner import run_scenario
from cosim.scenario.errors import ScenarioError
from cosim.scenario.loader import LoadedScenario, load_scenario
from cosim.scenario.schema import Controller as ControllerBlock
from cosim.sweep.backends import BackendError, open_backend
from cosim.validation import validate

# Metrics a baseline keeps, and which way is worse (+1 higher is worse, -1 lower is worse), and their
# tolerances: all from the metric table of cosim.metrics.
WORSE = worse_directions()
DEFAULT_TOLERANCES = default_tolerances()


class RegressInputError(Exception):
    """Input that keeps the suite from running (or from being judged); `str()` is ready for a terminal."""


@dataclass
class Check:
    """One pass/fail judgement on a run: a criterion or a baseline comparison."""

    name: str
    passed: bool
    detail: str
    figures: dict[str, float | str] = field(default_factory=dict)  # the statistics of a check over seeds


@dataclass
class CaseResult:
    """One scenario run with the controller and its checks."""

    scenario: str
    path: Path
    out_dir: Path
    status: str = "not run"
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    criteria: list[Check] = field(default_factory=list)
    baseline: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    per_seed: dict[int, dict] = field(default_factory=dict)  # with --seeds: seed -> metrics of its completed run

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.criteria + self.baseline if not c.passed]

    @property
    def completed(self) -> bool:
        """The run went to its horizon (ok, or degraded by non-converged power flows): it has metrics to judge."""
        return self.status in ("ok", "degraded")

    @property
    def passed(self) -> bool:
        """The run completed without degradation and every check passed."""
        return self.status == "ok" and not self.failures


@dataclass
class SuiteResult:
    """All cases of one `cosim regress` call."""

    spec: str
    cases: list[CaseResult]
    seeds: int | None = None  # runs per scenario (None: one run on the scenario's own seed)
    alpha: float = 0.05

    @property
    def failed(self) -> list[str]:
        """Names of the scenarios that did not pass."""
        return [c.scenario for c in self.cases if not c.passed]


def expand(paths: Iterable[Path]) -> list[Path]:
    """Scenario files from the arguments: a folder stands for the *.yaml files in it."""
    out: list[Path] = []
    for p in paths:
        out += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    return out


def load_cases(paths: list[Path], spec: str) -> list[LoadedScenario]:
    """Load every scenario with the SPEC's controller in place; one RegressInputError lists all problems."""
    try:
        block = parse_spec(spec)
    except ControllerError as exc:
        raise RegressInputError(str(exc)) from None
    if not paths:
        raise RegressInputError("no scenario files given (a folder must contain *.yaml files)")
    errors, loaded, names = [], [], {}
    for path in paths:
        try:
            case = load_scenario(path)
        except ScenarioError as exc:
            errors.append(str(exc))
            continue
        case.scenario.controller = block
        try:
            validate(case)
        except ScenarioError as exc:
            errors.append(str(ScenarioError(path, [replace(p, message=f"{p.message} (controller {spec!r})")
                                                   for p in exc.problems])))
            continue
        name = case.scenario.name
        if name in names:
            errors.append(f"{path}: scenario name {name!r} is also used by {names[name]}; "
                          "baseline entries need unique names")
            continue
        names[name] = path
        loaded.append(case)
    if errors:
        raise RegressInputError("\n".join(errors))
    return loaded


def run_case(path: str, controller: dict, out_dir: str, seed: int | None = None) -> tuple[str, str, dict, float]:
    """Worker: run one scenario with a controller block (and another seed); (status, message, metrics, wall seconds)."""
    loaded = load_scenario(path)
    loaded.scenario.controller = ControllerBlock.model_validate(controller)
    if seed is not None:
        loaded.scenario.seed = seed
    t0 = time.perf_counter()
    outcome = run_scenario(loaded, Path(out_dir))
    return outcome.status, outcome.message, outcome.metrics, time.perf_counter() - t0


def case_seeds(case: LoadedScenario, seeds: int | None, offset: int = 0) -> list[int | None]:
    """The seeds a case runs on: its own (None), or `seeds` consecutive ones from its seed + offset."""
    return [None] if seeds is None else [case.scenario.seed + offset + i for i in range(seeds)]


def run_all(cases: list[LoadedScenario], out_root: Path, jobs: int,
            on_done: Callable[[CaseResult], None] | None = None, backend: str = "local",
            address: str | None = None, seeds: int | None = None, seed_offset: int = 0) -> list[CaseResult]:
    """Run the cases (on each of their seeds) on a backend (cosim.sweep.backends; local: in this process when jobs
    is 1); results in case order. A run on seed s keeps its results in <out>/<scenario>/seed-<s>/."""
    results = [CaseResult(c.scenario.name, c.path, out_root / c.scenario.name) for c in cases]
    units = [(r, s, r.out_dir if s is None else r.out_dir / f"seed-{s}")
             for c, r in zip(cases, results) for s in case_seeds(c, seeds, seed_offset)]
    blocks = {r.scenario: c.scenario.controller.model_dump() for c, r in zip(cases, results)}
    args = [(str(r.path), blocks[r.scenario], str(out), s) for r, s, out in units]
    runs: dict[str, dict[int, CaseResult]] = {r.scenario: {} for r in results}

    def store(i: int, value: tuple[str, str, dict, float]) -> None:
        result, seed, out = units[i]
        one = result if seed is None else CaseResult(f"{result.scenario} seed {seed}", result.path, out)
        one.status, one.message, one.metrics, one.wall_s = value
        if seed is not None:
            runs[result.scenario][seed] = one
        if on_done is not None:
            on_done(one)

    try:
        with open_backend(backend, jobs, address) as pool:
            for i, value in pool.map(run_case, args):
                if isinstance(value, BaseException):  # the worker itself died: report it as a failed run
                    value = ("failed", f"{type(value).__name__}: {value}", {}, 0.0)
                store(i, value)
    except BackendError as exc:
        raise RegressInputError(str(exc)) from None
    if seeds is not None:
        for result in results:
            merge_seeds(result, runs[result.scenario])
    return results


def merge_seeds(case: CaseResult, runs: dict[int, CaseResult]) -> None:
    """A case over its seeds: the worst status, the messages of the runs not ok, mean metrics, total wall time."""
    rank = {"ok": 0, "degraded": 1}
    ordered = sorted(runs.items())
    case.status = max((r.status for _, r in ordered), key=lambda s: rank.get(s, 2))
    case.message = "; ".join(f"seed {s}: {r.message}" for s, r in ordered if r.status != "ok")
    case.per_seed = {s: r.metrics for s, r in ordered if r.completed}
    case.wall_s = sum(r.wall_s for _, r in ordered)
    values = list(case.per_seed.values())
    for key in values[0] if values else ():
        column = [v.get(key) for v in values]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) or x is None for x in column)
        case.metrics[key] = (math.nan if any(_is_null(x) for x in column) else sum(column) / len(column)) \
            if numeric else column[0]


def _is_null(value) -> bool:
    """A metric that could not be computed: null in metrics.json, NaN in memory."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def null_reason(metrics: dict) -> str:
    """Why a run's metrics can be null: no steps, no converged step, no load, or the metric does not apply."""
    if not metrics.get("steps"):
        return "the run recorded no steps"
    if metrics.get("converged_share") == 0:
        return f"no step converged (0 of {metrics['steps']})"
    if metrics.get("load_energy_kwh") == 0:
        return "the run had no load energy"
    return "the run's recorded signals do not define it"


def check_criteria(case: CaseResult, criteria: dict, alpha: float = 0.05) -> list[str]:
    """Judge the case's metrics against the scenario's thresholds; return criteria naming no metric.

    A criterion fails when its metric is null (cannot be computed; on any seed) or the run is
    degraded, and its detail says why. Over seeds, it fails only when the mean is significantly
    beyond the threshold at `alpha` (cosim.regress_stats.criterion).
    """
    unknown = []
    for metric, bound in criteria.items():
        if metric not in case.metrics:
            if case.completed:
                guess = difflib.get_close_matches(metric, list(case.metrics), n=1)
                hint = f"; did you mean {guess[0]!r}?" if guess else f" (known: {', '.join(sorted(case.metrics))})"
                unknown.append(f"{case.path}: criteria.{metric}: no such metric{hint}")
            continue
        value = case.metrics[metric]
        limits = " and ".join(s for s in (f">= {bound.min:g}" if bound.min is not None else "",
                                          f"<= {bound.max:g}" if bound.max is not None else "") if s)
        if _is_null(value):
            detail = f"{metric} is null (cannot be computed: {null_reason(case.metrics)}), required {limits}"
            case.criteria.append(Check(f"criteria.{metric}", False, detail))
            continue
        figures: dict = {}
        if case.per_seed:
            ok, detail, figures = regress_stats.criterion(metric, bound.min, bound.max,
                                                          [m[metric] for m in case.per_seed.values()], alpha,
                                                          _unit(metric))
        else:
            ok = (bound.min is None or value >= bound.min) and (bound.max is None or value <= bound.max)
            detail = f"{metric} = {value:.6g}, required {limits}"
        if case.status == "degraded":
            ok, detail = False, f"{detail}; not judged: run degraded ({case.message})"
        case.criteria.append(Check(f"criteria.{metric}", ok, detail, figures))
    return unknown


def read_baseline(path: Path | None, must_exist: bool) -> dict:
    """The baseline file's content ({} when it is absent and need not exist)."""
    if path is None or (not path.exists() and not must_exist):
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegressInputError(f"{path}: baseline file does not exist (create it with --update-baseline)") from None
    except (OSError, ValueError) as exc:
        raise RegressInputError(f"{path}: cannot read the baseline file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results", {}), dict):
        raise RegressInputError(f"{path}: expected a JSON object with 'results' and 'tolerances'")
    return data


def _unit(metric: str) -> str:
    """' <unit>' of a metric for check details ('' for unknown metrics and ratios)."""
    info = metric_info(metric)
    return f" {info.unit}" if info is not None and info.unit != "ratio" else ""


def _tolerance(tolerances: dict, metric: str) -> tuple[float, float]:
    merged = {**DEFAULT_TOLERANCES["default"], **tolerances.get("default", {}), **tolerances.get(metric, {})}
    return float(merged.get("rel", 0.0)), float(merged.get("abs", 0.0))


def compare_baseline(case: CaseResult, stored: dict | None, tolerances: dict, alpha: float = 0.05) -> None:
    """Add one check per stored metric: it fails when the new value is worse beyond the tolerance (over seeds:
    significantly worse at `alpha` and worse beyond the tolerance, cosim.regress_stats.baseline)."""
    if not stored:
        case.notes.append("no baseline entry for this controller and scenario")
        return
    if case.per_seed:
        _compare_seeds(case, stored, tolerances, alpha)
        return
    for metric, old in stored.items():
        new = case.metrics.get(metric)
        sign = WORSE.get(metric)
        if sign is None or old is None:
            continue
        rel, abs_ = _tolerance(tolerances, metric)
        allowed = max(abs_, rel * abs(old))
        if _is_null(new):
            why = "missing" if new is None and metric not in case.metrics else \
                f"null (cannot be computed: {null_reason(case.metrics)})"
            case.baseline.append(Check(f"baseline.{metric}", False, f"{metric} {why}, baseline {old:.6g}"))
            continue
        worse = (new - old) * sign
        unit = _unit(metric)
        detail = f"{metric} = {new:.6g}{unit}, baseline {old:.6g}{unit} (tolerance {allowed:.3g}{unit})"
        case.baseline.append(Check(f"baseline.{metric}", worse <= allowed, detail))
        if worse < -allowed:
            case.notes.append(f"{metric} improved: {new:.6g} vs baseline {old:.6g}; consider --update-baseline")


def _compare_seeds(case: CaseResult, stored: dict, tolerances: dict, alpha: float) -> None:
    """compare_baseline over seeds: per-seed values against the baseline's per-seed values (or its one value)."""
    per_seed = {int(s): v for s, v in stored.get("seeds", {}).items()}
    if not per_seed:
        case.notes.append("the baseline has one value per metric (made without --seeds): one-sample t-tests")
    for metric, old in stored.items():
        sign = WORSE.get(metric)
        if sign is None or old is None:
            continue
        new = {s: m.get(metric) for s, m in case.per_seed.items()}
        nulls = [s for s, v in new.items() if _is_null(v)]
        if nulls:
            case.baseline.append(Check(f"baseline.{metric}", False, f"{metric} null or missing on seed(s) "
                                       f"{', '.join(map(str, nulls))}, baseline {old:.6g}"))
            continue
        ref = {s: v[metric] for s, v in per_seed.items() if not _is_null(v.get(metric))} if per_seed else old
        rel, abs_ = _tolerance(tolerances, metric)
        (ok, detail, figures), better = regress_stats.baseline(metric, sign, new, ref, max(abs_, rel * abs(old)),
                                                               alpha, _unit(metric))
        case.baseline.append(Check(f"baseline.{metric}", ok, detail, figures))
        if better:
            case.notes.append(f"{metric} improved significantly: {figures['mean']:.6g} vs baseline "
                              f"{figures['baseline']:.6g}; consider --update-baseline")


def update_baseline(path: Path, data: dict, spec: str, cases: list[CaseResult]) -> None:
    """Store the tracked metrics of every successful case under the SPEC (over seeds: their means, and per seed
    under "seeds"); other entries are kept."""
    entry = data.setdefault("results", {}).setdefault(spec, {})
    for case in cases:
        if case.status == "ok":
            entry[case.scenario] = {m: case.metrics[m] for m in WORSE if m in case.metrics}
            if case.per_seed:
                entry[case.scenario]["seeds"] = {str(s): {m: v[m] for m in WORSE if m in v}
                                                 for s, v in case.per_seed.items()}
    data.setdefault("tolerances", DEFAULT_TOLERANCES)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"tolerances": data["tolerances"], "results": data["results"]}, indent=2, sort_keys=False)
                   + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_junit(path: Path, suite: SuiteResult) -> None:
    """JUnit XML: one testcase per scenario; a failed check is a <failure>, a failed run an <error>."""
    failures = sum(1 for c in suite.cases if c.completed and not c.passed)
    errors = sum(1 for c in suite.cases if not c.completed)
    total_time = f"{sum(c.wall_s for c in suite.cases):.3f}"
    attrs = {"name": f"cosim regress {suite.spec}", "tests": str(len(suite.cases)), "failures": str(failures),
             "errors": str(errors), "time": total_time}
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(root, "testsuite", attrs)
    for case in suite.cases:
        tc = ET.SubElement(ts, "testcase", {"classname": f"regress.{suite.spec}", "name": case.scenario,
                                            "time": f"{case.wall_s:.3f}", "file": str(case.path)})
        figures = [(f"{c.name}.{k}", v) for c in case.criteria + case.baseline for k, v in c.figures.items()]
        if figures:
            props = ET.SubElement(tc, "properties")
            for name, value in [("seeds", ",".join(map(str, case.per_seed))), *figures]:
                ET.SubElement(props, "property", {"name": name, "value": f"{value:.6g}" if isinstance(value, float)
                                                  else str(value)})
        if not case.completed:
            error = ET.SubElement(tc, "error", {"message": f"run {case.status}: {case.message}", "type": "run"})
            error.text = case.message
        elif case.status == "degraded" and not case.failures:
            ET.SubElement(tc, "failure", {"message": f"run degraded: {case.message}", "type": "degraded"}).text = \
                case.message
        elif case.failures:
            names = ", ".join(c.name for c in case.failures)
            ET.SubElement(tc, "failure", {"message": f"{len(case.failures)} check(s) failed: {names}",
                                          "type": "regression"}).text = "\n".join(c.detail for c in case.failures)
        out = [c.detail for c in case.criteria + case.baseline] + case.notes + [f"results: {case.out_dir}"]
        ET.SubElement(tc, "system-out").text = "\n".join(out)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def judge(suite: SuiteResult, criteria: dict[str, dict], baseline: dict, compare: bool) -> list[str]:
    """Run every check of the suite; return the criteria that name no metric (bad input)."""
    unknown: list[str] = []
    stored = baseline.get("results", {}).get(suite.spec, {})
    for case in suite.cases:
        unknown += check_criteria(case, criteria[case.scenario], suite.alpha)
        if compare and case.completed:
            compare_baseline(case, stored.get(case.scenario), baseline.get("tolerances", {}), suite.alpha)
    return unknown


def check_options(seeds: int | None, alpha: float, seed_offset: int) -> None:
    """RegressInputError for --seeds, --alpha or --seed-offset out of range."""
    if seeds is not None and seeds < 2:
        raise RegressInputError(f"--seeds: expected 2 or more seeds (a statistical judgement needs at least two "
                                f"runs per scenario), got {seeds}; leave --seeds out to judge one run per scenario")
    if not 0 < alpha < 1:
        raise RegressInputError(f"--alpha: expected a significance level strictly between 0 and 1 (e.g. 0.05), "
                                f"got {alpha:g}")
    if seed_offset < 0:
        raise RegressInputError(f"--seed-offset: expected 0 or more, got {seed_offset}")


def regress(paths: list[Path], spec: str, baseline_path: Path | None = None, update: bool = False, jobs: int = 0,
            out_root: Path = Path("runs"), on_done: Callable[[CaseResult], None] | None = None,
            backend: str = "local", address: str | None = None, seeds: int | None = None, alpha: float = 0.05,
            seed_offset: int = 0) -> SuiteResult:
    """Load, run and judge a suite (on `seeds` seeds per scenario, judged at `alpha`); with `update`, store the
    new metrics instead of comparing with them."""
    check_options(seeds, alpha, seed_offset)
    if update and baseline_path is None:
        raise RegressInputError("--update-baseline needs --baseline FILE (the file to write)")
    cases = load_cases(expand(paths), spec)
    baseline = read_baseline(baseline_path, must_exist=baseline_path is not None and not update)
    suite = SuiteResult(spec, run_all(cases, out_root, jobs, on_done, backend, address, seeds, seed_offset),
                        seeds, alpha)
    unknown = judge(suite, {c.scenario.name: c.scenario.criteria for c in cases}, baseline,
                    compare=baseline_path is not None and not update)
    if unknown:
        raise RegressInputError("\n".join(unknown))
    if update:
        update_baseline(baseline_path, baseline, spec, suite.cases)
    return suite
