"""The gradient checker: is a hand-written backward right, and if not, what is wrong?

Modules, one job each:

- ``target``: what is checked (Function or callable) and how to call it;
- ``numeric``: float64 finite differences;
- ``analytic``: the backward's gradients, raw through Context and through autograd;
- ``diagnose``: the diagnosis codes; ``judge``: one input's verdict;
- ``extras``: manual chaining, double backward, forward mode, native dtype;
- ``report``: the report; ``check``: the entry points;
- ``builtin``: the project's own Functions, for ``handgrad check``.
"""

from handgrad.checking.check import assert_gradients, check
from handgrad.checking.diagnose import CODES
from handgrad.checking.report import ExtraCheck, GradientReport, InputReport

__all__ = ["CODES", "ExtraCheck", "GradientReport", "InputReport", "assert_gradients", "check"]
