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
- ``report``: the report; ``check``: the entry points;
- ``builtin``, ``inputs``, ``loading``: what ``handgrad check`` checks, on what inputs.
"""

from handgrad.checking.check import assert_gradients, check
from handgrad.checking.diagnose import CODES
from handgrad.checking.report import ExtraCheck, GradientReport, InputReport

__all__ = ["CODES", "ExtraCheck", "GradientReport", "InputReport", "assert_gradients", "check"]
