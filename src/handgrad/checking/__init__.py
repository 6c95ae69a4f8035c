"""The gradient checker: is a hand-written backward right, and if not, what is wrong?

Modules, one job each:

- ``target``: what is checked (Function or callable) and how to call it;
- ``placement``: where the float64 copies live (the inputs' device, or the CPU);
- ``outputs``: which outputs carry a gradient, where they are defined, their V_j;
- ``numeric``: float64 finite differences;
- ``analytic``: the backward's gradients, raw through Context and through autograd;
- ``diagnose`` and ``factors``: the diagnosis codes; ``judge``: one input's verdict;
- ``extras``: manual chaining, double backward, forward mode;
- ``reruns``: the backward with one input requiring grad, and in the inputs' dtype;
- ``report``: the report; ``entry``: the entry points, ``check`` and ``assert_gradients``;
- ``builtin``, ``inputs``, ``loading``: what ``handgrad check`` checks, on what inputs.
"""

import importlib

# Public name -> its module, imported on first use (PEP 562): ``handgrad --help`` builds
# the check subcommand's parser from ``inputs``' syntax table and must not import torch.
_SOURCES = {
    "assert_gradients": "handgrad.checking.entry",
    "check": "handgrad.checking.entry",
    "CODES": "handgrad.checking.diagnose",
    "ExtraCheck": "handgrad.checking.report",
    "GradientReport": "handgrad.checking.report",
    "InputReport": "handgrad.checking.report",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name in _SOURCES:
        value = getattr(importlib.import_module(_SOURCES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'handgrad.checking' has no attribute {name!r}")
