"""The core knows nothing of mosaik, Modbus or hil, and the packages import without cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

CORE = ["controllers.drl.env", "controllers.rollout", "cosim.scenario.loader", "cosim.grid", "cosim.inputs",
        "cosim.kernel", "cosim.assembly", "cosim.validation", "cosim.metrics", "cosim.events.build",
        "cosim.events.paths", "cosim.detection.wls", "cosim.signals", "cosim.planning.exact",
        "cosim.planning.evolutionary", "cosim.planning.dqn", "cosim.planning.hosting", "cosim.planning.profile",
        "cosim.planning.report", "cosim.planning.solve"]
ADAPTER_ONLY = {"mosaik", "mosaik_api_v3", "pymodbus", "hil"}
PACKAGES = ("cosim", "controllers", "hil", "firmware_stubs")


def test_the_core_leaves_mosaik_pymodbus_and_hil_out():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in CORE)
            + f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(ADAPTER_ONLY)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, name: str) -> set[str]:
    """Modules of ours imported when `path` is imported (module level only; imports inside functions are lazy)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" for a in node.names} | {base}
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
    return {m for m in found if m.split(".")[0] in PACKAGES}


def test_no_import_cycles():
    modules = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph = {name: {m for m in _top_level_imports(path, name) if m in modules and m != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
