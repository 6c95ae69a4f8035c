"""Make the Functions traceable by ``torch.compile(fullgraph=True)``.

Dynamo (PyTorch 2.x) refuses to trace an ``autograd.Function`` that defines a custom
``jvp``, with "Unsupported custom jvp". ``without_jvp`` builds a twin of a Function
whose ``jvp`` is autograd's default; forward, ``setup_context`` and backward are the
very same methods. The functional forms apply the twin only while compiling, so eager
code, and forward-mode AD with it, uses the Function itself.
"""

from __future__ import annotations

import torch


def is_compiling() -> bool:
    """Whether Dynamo is tracing the caller (constant-folded to True while it does)."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        return compiler.is_compiling()
    return torch._dynamo.is_compiling()  # PyTorch 2.2


def without_jvp(function: type) -> type:
    """A subclass of ``function`` with autograd's default ``jvp``, for Dynamo to trace."""
    return type(
        function.__name__,
        (function,),
        {"jvp": staticmethod(torch.autograd.Function.jvp), "__module__": function.__module__},
    )
