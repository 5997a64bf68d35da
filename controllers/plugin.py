"""Load a user's controller class from `file.py:ClassName`, turning every way that fails into a clear message."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType

from controllers.base import Controller, ControllerError


def split_target(target: str) -> tuple[str, str]:
    """`path/to/file.py:ClassName` -> (path, class name); the last colon separates them."""
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ControllerError(f"expected <file.py>:<ClassName>, got {target!r}")
    return path, name


def _where(exc: BaseException, file: Path) -> str:
    """' (line N)' of the deepest frame inside the user's file, if any."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f" (line {exc.lineno})"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
    return f" (line {lines[-1]})" if lines else ""


def load_module(file: Path) -> ModuleType:
    """Import a Python file as a module of its own (re-importing the same file gives the same module)."""
    file = file.resolve()
    if not file.is_file():
        raise ControllerError(f"controller file {file} does not exist")
    if file.suffix != ".py":
        raise ControllerError(f"controller file {file} is not a .py file")
    name = f"cosim_user_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look classes up here
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # SyntaxError, ImportError, anything the file raises, even SystemExit
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise ControllerError(f"importing {file} raised {type(exc).__name__}: {text}{_where(exc, file)}") from None
    return module


def load_class(file: Path, name: str) -> type[Controller]:
    """The `Controller` subclass `name` defined in `file`."""
    module = load_module(file)
    cls = getattr(module, name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items()
                       if inspect.isclass(v) and issubclass(v, Controller) and v is not Controller)
        hint = f" (controller classes there: {', '.join(found)})" if found else " (it defines no Controller subclass)"
        raise ControllerError(f"{file.resolve()} has no class {name!r}{hint}")
    if not (inspect.isclass(cls) and issubclass(cls, Controller)):
        raise ControllerError(f"{name} in {file.resolve()} is not a subclass of controllers.base.Controller")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ControllerError(f"{name} in {file.resolve()} does not implement {missing}")
    return cls
