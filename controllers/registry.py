"""Controller kinds and SPECs -> ready controller instances, or a message naming what is wrong.

A `controller:` block (or a SPEC such as `droop`, `opf`, `python:my_ctrl.py:MyController`,
`drl:policies/x.pt`, or a YAML mapping `{kind: droop, params: {gain: 1}}`) names a class;
`params` are passed to its constructor as keyword arguments (and are in `info.params`).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import yaml
from pydantic import ValidationError

from controllers.base import Controller, ControllerError, ControllerInfo, DERInfo, StorageInfo, Truth, time_features
from controllers.baselines import KINDS, baseline_class
from controllers.plugin import load_class, split_target
from cosim.files import resolve_path
from cosim.forecast.build import observed_names
from cosim.grid.feeders import load_feeder
from cosim.kernel import check_actions
from cosim.scenario.loader import LoadedScenario
from cosim.scenario.schema import Controller as ControllerBlock
from cosim.scenario.schema import Scenario
from cosim.scenario.schema_errors import schema_problems

if TYPE_CHECKING:
    from cosim.assembly import Assembly

DRL = "controllers.drl.policy:PolicyController"  # imported only when a drl controller is used


class BlockError(ControllerError):
    """A controller block that cannot be built; `field` is the key to blame, e.g. `controller.path`."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def parse_spec(spec: str, cwd: Path | None = None) -> ControllerBlock:
    """A command-line SPEC as a controller block; relative paths become absolute from `cwd`."""
    cwd = Path.cwd() if cwd is None else cwd
    text = spec.strip()
    if text.startswith("{"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ControllerError(f"controller SPEC {spec!r} is not a valid YAML mapping: {exc}") from None
    else:
        kind, _, rest = text.partition(":")
        data = {"kind": kind}
        key = {"python": "path", "drl": "policy"}.get(kind)
        if key and rest:
            data[key] = rest
        elif rest:
            raise ControllerError(f"controller SPEC {spec!r}: kind {kind!r} takes nothing after ':'")
    try:
        block = ControllerBlock.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{p.field + ': ' if p.field else ''}{p.message}"
                            for p in schema_problems(ControllerBlock, data, exc, {}))
        raise ControllerError(f"controller SPEC {spec!r}: {reasons} (expected {', '.join(KINDS)}, "
                              f"python:<file.py>:<Class>, drl:<policy file> or a {{kind: ...}} mapping)") from None
    if block.path:
        file, name = split_target(block.path)
        block.path = f"{resolve_path(file, cwd).resolve()}:{name}"
    if block.policy:
        block.policy = str(resolve_path(block.policy, cwd).resolve())
    return block


def _import(target: str) -> type:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def controller_class(block: ControllerBlock, base_dir: Path) -> type[Controller]:
    """The class a block names (a user's file is imported here)."""
    if block.kind == "python":
        try:
            file, name = split_target(block.path)
            return load_class(resolve_path(file, base_dir), name)
        except ControllerError as exc:
            raise BlockError("controller.path", str(exc)) from None
    if block.kind == "drl":
        try:
            return _import(DRL)
        except ImportError as exc:
            raise BlockError("controller.kind", f"drl controllers are not available: {exc}") from None
    return baseline_class(block.kind)


def instantiate(cls: type[Controller], block: ControllerBlock, base_dir: Path) -> Controller:
    """`cls(**params)` (a drl policy gets its file first), with clear messages for bad params."""
    args: Sequence[Any] = (resolve_path(block.policy, base_dir),) if block.kind == "drl" else ()
    field = "controller.policy" if block.kind == "drl" else "controller.params"
    label = cls.__name__
    try:
        inspect.signature(cls).bind(*args, **block.params)
    except TypeError:
        accepted = [p for p in list(inspect.signature(cls).parameters)[len(args):] if p not in ("args", "kwargs")]
        unknown = sorted(set(block.params) - set(accepted))
        detail = f"unknown parameter {', '.join(map(repr, unknown))}" if unknown else "missing parameters"
        allowed = f"accepted: {', '.join(accepted)}" if accepted else f"{label} takes no parameters"
        raise BlockError("controller.params", f"{detail} for {label} ({allowed})") from None
    except ValueError:  # no signature available (a builtin): let the call decide
        pass
    try:
        return cls(*args, **block.params)
    except Exception as exc:
        raise BlockError(field, _explain(block, exc, f"{label}({_show(block.params)})")) from None


def _show(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _explain(block: ControllerBlock, exc: Exception, call: str) -> str:
    """Shipped controllers' messages are written for users; a user's class also gets the call and the type."""
    if block.kind != "python" or isinstance(exc, ControllerError):
        return f"{block.kind}: {exc}"
    return f"{call} raised {type(exc).__name__}: {exc}"


def controller_info(scn: Scenario, measurements: Sequence[str], truth: Truth | None = None,
                    discrete: Sequence[tuple[str, int, int]] = (), loaded: LoadedScenario | None = None) -> ControllerInfo:
    """The static facts a scenario gives its controller (`loaded`: for one with `uses_scenario`)."""
    ders = tuple(DERInfo(g.name, g.kind, g.bus, g.p_mw, g.rating_mva) for g in scn.generators)
    storage = tuple(StorageInfo(b.name, b.bus, b.p_mw, b.e_mwh, b.soc_min, b.soc_max, b.efficiency, b.rating_mva)
                    for b in scn.storage)
    return ControllerInfo(feeder=scn.grid.feeder, step_s=scn.clock.step, voltage_limits=tuple(scn.grid.voltage_limits),
                          ders=ders, measurements=tuple(measurements), params=dict(scn.controller.params), truth=truth,
                          discrete=tuple(discrete), scenario=loaded, storage=storage)


def prepare(scn: Scenario, base_dir: Path, measurements: Sequence[str],
            truth: Truth | None = None) -> tuple[Controller, ControllerInfo]:
    """Build the scenario's controller and set it up with its info; raise BlockError naming the field to fix.

    Only an oracle (`Controller.oracle`) is handed `truth`, only a `Controller.uses_scenario` one the scenario.
    """
    block = scn.controller
    controller = instantiate(controller_class(block, base_dir), block, base_dir)
    discrete = [(d.name, d.low, d.high) for d in truth.model.discrete.values()] if truth is not None else []
    loaded = None
    if controller.uses_scenario:  # the scenario as the loader gave it (its file's path is not needed)
        loaded = LoadedScenario(scn, base_dir, base_dir, {}, load_feeder(scn.grid.feeder, base_dir))
    info = controller_info(scn, measurements, truth if controller.oracle else None, discrete, loaded)
    try:
        controller.setup(info)
    except Exception as exc:
        field = "controller.policy" if block.kind == "drl" else "controller"
        raise BlockError(field, _explain(block, exc, f"{type(controller).__name__}.setup")) from None
    return controller, info


def check(asm: Assembly) -> BlockError | None:
    """Try the scenario's controller on its assembled run: build it, set it up, let it act on the first step.

    Returns the error, or None. The controller sees the run's measurement names, and the first
    step's observation is a real power flow of the run's own grid model: actions that are not
    setpoints of this scenario, or NaN, show up here as bad input instead of as events in the run.
    """
    scn, base_dir = asm.loaded.scenario, asm.loaded.base_dir
    if scn.controller.kind == "none":
        return None
    model, inputs = asm.model, asm.inputs
    try:
        observed = observed_names(model.signal_names, asm.forecasts)
        controller, info = prepare(scn, base_dir, observed, Truth(model, inputs))
        if not controller.oracle:  # an oracle acts on the truth, not on an observation
            first = model.step(inputs.load_scale[0], inputs.der_p_avail_mw[0], native_pv_pu=inputs.native_pv_pu[0],
                               native_wind_pu=inputs.native_wind_pu[0])
            ahead = asm.forecasts.at(0) if asm.forecasts is not None else {}
            _probe(controller, info, {**model.signals(first), **time_features(inputs.times[0], 0), **ahead},
                   scn.controller)
    except BlockError as exc:
        return exc
    return None


def _probe(controller: Controller, info: ControllerInfo, observation: dict, block: ControllerBlock) -> None:
    """Call `act` once; raise BlockError when it raises or returns anything but setpoints of this scenario."""
    field = {"python": "controller.path", "drl": "controller.policy"}.get(block.kind, "controller")
    name = type(controller).__name__
    try:
        actions = controller.act(observation)
    except Exception as exc:
        raise BlockError(field, f"{name}.act raised {type(exc).__name__}: {exc} on the first step") from None
    _, rejected = check_actions(actions, set(info.action_names))
    if rejected:
        shown = list(rejected.items())[:5]  # a flood of junk names stays one readable paragraph
        what = "; ".join(f"{target} {reason}" for target, reason in shown)
        if len(rejected) > len(shown):
            what += f"; and {len(rejected) - len(shown):,} more"
        raise BlockError(field, f"{name}.act on the first step: {what} (setpoints of this scenario: "
                                f"{', '.join(info.action_names)})")
