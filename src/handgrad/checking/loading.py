"""Find the Function that ``handgrad check TARGET`` names.

TARGET is ``WHERE:Attr``, and WHERE is a module or a file:

- ``my_functions:MyLinear`` or ``package.module:MyLinear``: imported by name, with the
  current directory first on ``sys.path``;
- ``my_functions.py:MyLinear`` or ``dir/my_functions.py:MyLinear`` (``.py`` may be
  left out when there is a ``/``): loaded from the file. When every folder between
  the current directory and the file is a package (has ``__init__.py``), it is
  imported as ``dir.my_functions``, so that its relative imports work; otherwise its
  folder goes first on ``sys.path``, so that its own imports of neighbours work.

``Attr`` may be dotted (``Outer.Inner``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from handgrad.checking.analytic import describe_error
from handgrad.errors import UserError


def load_target(text: str) -> Any:
    """Import the Function or callable that ``text`` names; raise UserError if it cannot."""
    where, colon, attribute = text.rpartition(":")  # rpartition: C:\\dir\\f.py:Cls works
    if not colon or not where or not attribute:
        raise UserError(
            f"target {text!r} must have the form module:Attr or file.py:Attr, e.g. "
            "my_functions:MyLinear for class MyLinear in my_functions.py, or "
            "dir/my_functions.py:MyLinear."
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # so that module.py in the current directory imports
    module = _import_file(where, cwd) if is_path(where) else _import_module(where, cwd)
    return _attribute(module, where, attribute, text)


def is_path(where: str) -> bool:
    """Whether WHERE names a file rather than a module."""
    return where.endswith(".py") or "/" in where or os.sep in where


def _import_module(name: str, cwd: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and name.startswith(error.name):
            raise UserError(
                f"no module named {name!r} in {cwd} or on sys.path; run handgrad check "
                f"from the folder that holds {name.replace('.', '/')}.py, or give the "
                "file's path, e.g. dir/file.py:Attr."
            ) from error
        raise UserError(f"importing {name} failed: {describe_error(error)}") from error
    except Exception as error:  # the user's module may raise anything while importing
        raise UserError(f"importing {name} raised {describe_error(error)}") from error


def _import_file(where: str, cwd: str) -> ModuleType:
    path = Path(where if where.endswith(".py") else f"{where}.py")
    full = (Path(cwd) / path).resolve()
    if not full.is_file():
        raise UserError(f"no file {path} (looked from {cwd}); give the path of a .py file.")
    dotted = _package_name(full, Path(cwd).resolve())
    if dotted is not None:
        return _import_module(dotted, cwd)
    folder = str(full.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so that the file's own imports of neighbours work
    name = f"_handgrad_check_{full.stem}_{abs(hash(str(full))):x}"
    spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's module may raise anything while importing
        sys.modules.pop(name, None)
        raise UserError(f"importing {path} raised {describe_error(error)}") from error
    return module


def _package_name(full: Path, cwd: Path) -> str | None:
    """``dir.file`` when every folder from cwd down to the file is a package; else None."""
    try:
        relative = full.relative_to(cwd)
    except ValueError:
        return None
    folders = relative.parts[:-1]
    if not folders:  # loaded from the file: its name may clash with an installed module
        return None
    for k in range(1, len(folders) + 1):
        if not (cwd.joinpath(*folders[:k]) / "__init__.py").is_file():
            return None
    return ".".join((*folders, full.stem))


def _attribute(module: ModuleType, where: str, attribute: str, text: str) -> Any:
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            found = sorted(
                name
                for name, item in vars(module).items()
                if callable(item)
                and not name.startswith("_")
                and getattr(item, "__module__", None) == module.__name__
            )
            listed = ", ".join(found) or "none"
            raise UserError(
                f"{where} has no attribute {attribute!r}; its Functions and "
                f"callables are: {listed}."
            )
        value = getattr(value, part)
    if not callable(value):
        raise UserError(
            f"{text} is a {type(value).__name__}, not a torch.autograd.Function or a "
            "callable; name the Function class or function to check."
        )
    return value
