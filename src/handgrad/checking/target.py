"""What is being checked: a Function (either style) or a plain callable, and its inputs.

The checker needs the same few things from any target: a way to call it, the names of
its inputs for messages, and, for a Function, a way to call its backward directly. This
module is the only place that knows the difference between the three kinds of target.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from handgrad.context import is_setup_context_style


def is_function_class(function: Any) -> bool:
    """Whether ``function`` is a subclass of ``torch.autograd.Function``."""
    return isinstance(function, type) and issubclass(function, torch.autograd.Function)


SETUP_CONTEXT_STYLE = "Function, setup_context style"
CTX_STYLE = "Function, forward(ctx, …) style"


@dataclass(frozen=True)
class Target:
    """A thing to check, with the facts about it that the checker uses.

    Attributes
    ----------
    function : object
        The Function class or the callable, as given.
    name : str
        How messages call it: the class or function name.
    kind : {"Function, setup_context style", "Function, forward(ctx, …) style", "callable"}
    input_names : tuple of str or None
        The parameter names of forward (without ``ctx``) or of the callable, one per
        positional input; None where the signature says nothing useful (``*args``).
    """

    function: Any
    name: str
    kind: str
    input_names: tuple[str, ...] | None

    @property
    def is_function(self) -> bool:
        return self.kind != "callable"

    @property
    def defines_jvp(self) -> bool:
        """Whether a Function overrides ``jvp``: only then can forward mode be checked."""
        return self.is_function and self.function.jvp is not torch.autograd.Function.jvp

    @property
    def looks_like_mse(self) -> bool:
        """Whether the target is a mean squared error, by its name: only then is the
        hint about the square and the mean any help."""
        name = self.name.lower().replace("_", "")
        return "mse" in name or "squarederror" in name or "meansquare" in name

    def call(self, *inputs: Any) -> Any:
        """Run the target through autograd: ``Function.apply`` or the callable itself.

        Tensors are passed as clones, so that a forward that works in place (and says so
        with ``ctx.mark_dirty``) never changes the checker's inputs, and never modifies a
        leaf that requires grad, which autograd refuses.
        """
        inputs = clones(inputs)
        return self.function.apply(*inputs) if self.is_function else self.function(*inputs)

    def input_label(self, index: int) -> str:
        """``"input 2 (b)"``, or ``"input 2"`` when the name is unknown."""
        if self.input_names is not None and index < len(self.input_names):
            return f"input {index} ({self.input_names[index]})"
        return f"input {index}"


def make_target(function: Any, n_inputs: int) -> Target:
    """Describe ``function``; raise TypeError if it is neither a Function nor callable.

    ``MyFunction.apply``, as ``gradcheck`` users pass it, is checked as ``MyFunction``:
    through ``apply`` autograd would sum an unsummed gradient (a bias's) for it, and the
    backward could not be called directly to see what it really returns.
    """
    owner = getattr(function, "__self__", None)
    if getattr(function, "__name__", None) == "apply" and is_function_class(owner):
        function = owner
    if is_function_class(function):
        setup_style = is_setup_context_style(function)
        kind = SETUP_CONTEXT_STYLE if setup_style else CTX_STYLE
        names = _parameter_names(function.forward, skip=0 if setup_style else 1)
        return Target(function, function.__name__, kind, _fit(names, n_inputs))
    if isinstance(function, type) or not callable(function):
        raise TypeError(
            "function must be a torch.autograd.Function subclass or a callable of tensors; "
            f"got {function!r} of type {type(function).__name__}."
        )
    name = getattr(function, "__name__", type(function).__name__)
    return Target(function, name, "callable", _fit(_parameter_names(function, 0), n_inputs))


def _parameter_names(fn: Callable, skip: int) -> tuple[str, ...] | None:
    try:
        parameters = list(inspect.signature(fn).parameters.values())[skip:]
    except (TypeError, ValueError):  # builtins and C functions may have no signature
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = []
    for parameter in parameters:
        if parameter.kind not in positional:
            break
        names.append(parameter.name)
    return tuple(names)


def _fit(names: tuple[str, ...] | None, n_inputs: int) -> tuple[str, ...] | None:
    # Names are only trusted when there is one per input: with *args they would mislead.
    return names if names is not None and len(names) >= n_inputs else None


def differentiable_indices(inputs: Sequence[Any]) -> tuple[int, ...]:
    """The positions of the inputs whose gradients are checked.

    Floating-point tensors only. If any of them has ``requires_grad=True``, only those
    are checked (the caller chose); if none has, all of them are (the convenient
    default: ``check(Linear, X, W, b)`` with plain tensors checks every gradient).
    """
    floating = [i for i, x in enumerate(inputs) if _is_float_tensor(x)]
    chosen = [i for i in floating if inputs[i].requires_grad]
    return tuple(chosen or floating)


def clones(inputs: Sequence[Any]) -> list[Any]:
    """The inputs with each tensor cloned (differentiably), everything else as is."""
    return [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]


def scalar_arguments(target: Target, inputs: Sequence[Any]) -> list[tuple[float, str]]:
    """(value, label) of each int or float argument, to name a factor that equals one."""
    return [
        (float(x), target.input_label(i))
        for i, x in enumerate(inputs)
        if isinstance(x, (int, float)) and not isinstance(x, bool)
    ]


def _is_float_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.dtype.is_floating_point
