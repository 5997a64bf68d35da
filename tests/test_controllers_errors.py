"""Bad controller input: one clear paragraph naming file, line and field, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controllers.base import Controller, ControllerError
from controllers.registry import parse_spec
from tests.conftest import BASE

FILES = {
    "ok.py": "from controllers.base import Controller\n\n\nclass Good(Controller):\n"
             "    def __init__(self, gain=1.0):\n        self.gain = gain\n\n"
             "    def act(self, observation):\n        return {}\n\n\n"
             "class NoAct(Controller):\n    pass\n\n\nclass Plain:\n    pass\n\n\n"
             "class Grumpy(Good):\n    def __init__(self, gain=1.0):\n        raise ValueError('gain out of range')\n\n\n"
             "class Picky(Good):\n    def setup(self, info):\n        raise KeyError('bus.99.vm_pu')\n\n\n"
             "class Typo(Good):\n    def act(self, observation):\n        return {'pv1.q_set_mvar': 0.1, 'pv1.qset': 0.2}\n\n\n"
             "class NotANumber(Good):\n    def act(self, observation):\n        return {'wt1.p_limit_mw': float('nan')}\n\n\n"
             "class Crashes(Good):\n    def act(self, observation):\n        return {'pv1.q_set_mvar': 1 / 0}\n",
    "raising.py": "import math\n\nx = 1\nraise RuntimeError('no licence server')\n",
    "broken.py": "def f(:\n    pass\n",
    "needs_pkg.py": "import no_such_package_xyz\n",
}

CASES = {
    # name: (controller block, field, words in the message)
    "file_missing": ("{kind: python, path: nothing.py:Good}", "controller.path", "nothing.py does not exist"),
    "class_missing": ("{kind: python, path: ok.py:Gud}", "controller.path", "has no class 'Gud' (controller classes there: Crashes, Good, Grumpy"),
    "raises_on_import": ("{kind: python, path: raising.py:C}", "controller.path",
                         "raised RuntimeError: no licence server (line 4)"),
    "syntax_error": ("{kind: python, path: broken.py:C}", "controller.path", "raised SyntaxError"),
    "import_error": ("{kind: python, path: needs_pkg.py:C}", "controller.path", "No module named 'no_such_package_xyz'"),
    "not_a_controller": ("{kind: python, path: ok.py:Plain}", "controller.path", "not a subclass of controllers.base.Controller"),
    "abstract": ("{kind: python, path: ok.py:NoAct}", "controller.path", "does not implement act"),
    "bad_target": ("{kind: python, path: ok.py}", "controller.path", "expected <file.py>:<ClassName>"),
    "unknown_param": ("{kind: python, path: ok.py:Good, params: {gian: 2}}", "controller.params",
                      "unknown parameter 'gian' for Good (accepted: gain)"),
    "constructor_raises": ("{kind: python, path: ok.py:Grumpy}", "controller.params",
                           "Grumpy() raised ValueError: gain out of range"),
    "setup_raises": ("{kind: python, path: ok.py:Picky}", "controller", "Picky.setup raised KeyError"),
    "unknown_action": ("{kind: python, path: ok.py:Typo}", "controller.path",
                       "Typo.act on the first step: pv1.qset is not an action of this scenario (setpoints of this "
                       "scenario: pv1.p_limit_mw, pv1.q_set_mvar, wt1.p_limit_mw, wt1.q_set_mvar)"),
    "nan_action": ("{kind: python, path: ok.py:NotANumber}", "controller.path", "wt1.p_limit_mw is nan"),
    "act_raises": ("{kind: python, path: ok.py:Crashes}", "controller.path",
                   "Crashes.act raised ZeroDivisionError: division by zero on the first step"),
    "python_without_path": ("{kind: python}", "controller", "kind python needs path"),
    "path_on_baseline": ("{kind: droop, path: ok.py:Good}", "controller", "path is only for kind python"),
    "unknown_kind": ("{kind: pid}", "controller.kind", "'none', 'consensus', 'droop', 'droop_tuned', 'mpc', 'opf', 'volt_watt', 'python' or 'drl'"),
    "baseline_param": ("{kind: droop, params: {v: [0.9, 1.1], q: [0.4]}}", "controller.params", "droop: a curve needs"),
    "baseline_unknown_param": ("{kind: volt_watt, params: {q: [1, 0]}}", "controller.params",
                               "unknown parameter 'q' for VoltWatt (accepted: v, p, gain)"),
    "policy_missing": ("{kind: drl, policy: policies/none.pt}", "controller.policy", "does not exist"),
}


@pytest.fixture
def scenario_with(write_scenario):
    def make(block: str) -> Path:
        for name, text in FILES.items():
            write_scenario(text, name)
        return write_scenario(BASE + f"controller: {block}\n")
    return make


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_controller_exits_2_naming_the_field(case, scenario_with, cli):
    block, field, words = CASES[case]
    path = scenario_with(block)
    code, output, result = cli("validate", path)
    assert code == 2, output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    text = " ".join(output.split())
    assert path.name in text and "line 9" in text and f"field {field}:" in text
    assert words in text
    assert "Traceback" not in output


class MismatchedPolicy(Controller):
    """Stands in for controllers.drl.policy.PolicyController: rejects the scenario in setup."""

    def __init__(self, path: Path):
        self.path = path

    def setup(self, info):
        raise ValueError(f"policy {self.path.name} was trained on feeder ieee69, this scenario uses {info.feeder}")

    def act(self, observation):
        return {}


def test_policy_metadata_mismatch_is_exit_2(scenario_with, cli, monkeypatch, tmp_path):
    monkeypatch.setattr("controllers.registry.DRL", f"{__name__}:MismatchedPolicy")
    path = scenario_with("{kind: drl, policy: p.pt}")
    code, output, _ = cli("run", path, "--out", tmp_path / "out")
    assert code == 2
    text = " ".join(output.split())
    assert "field controller.policy: drl: policy p.pt was trained on feeder ieee69, this scenario uses ieee33" in text
    assert not (tmp_path / "out").exists()  # refused before anything ran


@pytest.mark.slow  # a whole day or a real process; CI runs it in the slow step
def test_no_traceback_from_a_real_process(scenario_with):
    path = scenario_with("{kind: python, path: raising.py:C}")
    proc = subprocess.run([sys.executable, "-m", "cosim", "run", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no licence server" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_parse_spec(tmp_path):
    assert parse_spec("droop").kind == "droop" and parse_spec(" opf ").kind == "opf"
    block = parse_spec("python:ctrl/my.py:Mine", cwd=tmp_path)
    assert block.kind == "python" and block.path == f"{tmp_path / 'ctrl' / 'my.py'}:Mine"
    assert parse_spec("drl:policies/x.pt", cwd=tmp_path).policy == str(tmp_path / "policies" / "x.pt")
    block = parse_spec("{kind: volt_watt, params: {gain: 0.25}}")
    assert block.kind == "volt_watt" and block.params == {"gain": 0.25}
    for bad, words in [("pid", "expected none, consensus, droop"), ("droop:fast", "takes nothing after ':'"),
                       ("python:my.py", "expected <file.py>:<ClassName>"), ("{kind: droop", "not a valid YAML"),
                       ("drl", "kind drl needs policy")]:
        with pytest.raises(ControllerError, match=words):
            parse_spec(bad)
