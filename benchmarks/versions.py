"""Whether the running PyTorch is one that ``pyproject.toml`` declares.

The declared range holds only the releases the whole suite has passed on (README,
"Versions"). A GPU machine may carry another (the lent H200 has 2.11): a run there is
still worth having, but its pass does not make that release declared, and the suite
and the GPU figures say so in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def declared_torch() -> SpecifierSet:
    """The torch requirement of pyproject.toml's dependencies, e.g. ``>=2.10,<2.15``."""
    return SpecifierSet(declared_torch_text())


def declared_torch_text() -> str:
    """That requirement as pyproject.toml writes it (the README quotes it)."""
    found = re.search(r'^\s*"torch\s*([^";]*)"', PYPROJECT.read_text(), flags=re.MULTILINE)
    return found.group(1) if found else ""


def torch_range_note() -> str | None:
    """One line when the running torch is outside the declared range; else None."""
    declared = declared_torch()
    running = Version(torch.__version__.split("+")[0])
    if running in declared:
        return None
    return (
        f"torch {running} is outside the range pyproject.toml declares ({declared}): "
        "results here are not those of a declared release; a full pass of "
        f"'make test-torch TORCH={running}' is what would let the README and "
        "pyproject.toml add it."
    )
