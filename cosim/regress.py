"""Regression testing of a controller: run scenarios with it, check their criteria and a stored baseline.

Every scenario runs with the controller given on the command line (on a backend: a local process pool or Ray), then
its metrics are checked against the scenario's `criteria:` thresholds and against the
metrics stored in a baseline file for the same controller SPEC and scenario, with
tolerances. Bad input (a scenario, the SPEC, the baseline file, a criterion naming no metric)
raises `RegressInputError`; everything else ends up as passed or failed checks.
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


def run_case(path: str, controller: dict, out_dir: str) -> tuple[str, str, dict, float]:
    """Worker: run one scenario with a controller block; (status, message, metrics, wall seconds)."""
    loaded = load_scenario(path)
    loaded.scenario.controller = ControllerBlock.model_validate(controller)
    t0 = time.perf_counter()
    outcome = run_scenario(loaded, Path(out_dir))
    return outcome.status, outcome.message, outcome.metrics, time.perf_counter() - t0


def run_all(cases: list[LoadedScenario], out_root: Path, jobs: int,
            on_done: Callable[[CaseResult], None] | None = None, backend: str = "local",
            address: str | None = None) -> list[CaseResult]:
    """Run the cases on a backend (cosim.sweep.backends; local: in this process when jobs is 1); results in case order."""
    results = [CaseResult(c.scenario.name, c.path, out_root / c.scenario.name) for c in cases]
    args = [(str(c.path), c.scenario.controller.model_dump(), str(r.out_dir)) for c, r in zip(cases, results)]

    def store(result: CaseResult, value: tuple[str, str, dict, float]) -> None:
        result.status, result.message, result.metrics, result.wall_s = value
        if on_done is not None:
            on_done(result)

    try:
        with open_backend(backend, jobs, address) as pool:
            for i, value in pool.map(run_case, args):
                if isinstance(value, BaseException):  # the worker itself died: report it as a failed run
                    value = ("failed", f"{type(value).__name__}: {value}", {}, 0.0)
                store(results[i], value)
    except BackendError as exc:
        raise RegressInputError(str(exc)) from None
    return results


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


def check_criteria(case: CaseResult, criteria: dict) -> list[str]:
    """Judge the case's metrics against the scenario's thresholds; return criteria naming no metric.

    A criterion fails when its metric is null (cannot be computed) or the run is degraded, and its
    detail says why.
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
        ok = (bound.min is None or value >= bound.min) and (bound.max is None or value <= bound.max)
        detail = f"{metric} = {value:.6g}, required {limits}"
        if case.status == "degraded":
            ok, detail = False, f"{detail}; not judged: run degraded ({case.message})"
        case.criteria.append(Check(f"criteria.{metric}", ok, detail))
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


def compare_baseline(case: CaseResult, stored: dict | None, tolerances: dict) -> None:
    """Add one check per stored metric: it fails when the new value is worse beyond the tolerance."""
    if not stored:
        case.notes.append("no baseline entry for this controller and scenario")
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


def update_baseline(path: Path, data: dict, spec: str, cases: list[CaseResult]) -> None:
    """Store the tracked metrics of every successful case under the SPEC; other entries are kept."""
    entry = data.setdefault("results", {}).setdefault(spec, {})
    for case in cases:
        if case.status == "ok":
            entry[case.scenario] = {m: case.metrics[m] for m in WORSE if m in case.metrics}
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
        unknown += check_criteria(case, criteria[case.scenario])
        if compare and case.completed:
            compare_baseline(case, stored.get(case.scenario), baseline.get("tolerances", {}))
    return unknown


def regress(paths: list[Path], spec: str, baseline_path: Path | None = None, update: bool = False, jobs: int = 0,
            out_root: Path = Path("runs"), on_done: Callable[[CaseResult], None] | None = None,
            backend: str = "local", address: str | None = None) -> SuiteResult:
    """Load, run and judge a suite; with `update`, store the new metrics instead of comparing with them."""
    if update and baseline_path is None:
        raise RegressInputError("--update-baseline needs --baseline FILE (the file to write)")
    cases = load_cases(expand(paths), spec)
    baseline = read_baseline(baseline_path, must_exist=baseline_path is not None and not update)
    suite = SuiteResult(spec, run_all(cases, out_root, jobs, on_done, backend, address))
    unknown = judge(suite, {c.scenario.name: c.scenario.criteria for c in cases}, baseline,
                    compare=baseline_path is not None and not update)
    if unknown:
        raise RegressInputError("\n".join(unknown))
    if update:
        update_baseline(baseline_path, baseline, spec, suite.cases)
    return suite
