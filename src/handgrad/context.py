"""A stand-in for autograd's ``ctx``: chain forward and backward passes by hand.

The classic lab calls each Function's forward, then each backward in reverse order,
passing the gradient along, with no autograd engine involved::

    Y_hat, lin = handgrad.forward(Linear, X, W, b)    # (q, p)
    loss, err = handgrad.forward(MSE, Y_hat, Y)       # ()
    grad_Y_hat, grad_Y = err.backward()               # seeded with 1
    grad_X, grad_W, grad_b = lin.backward(grad_Y_hat)

Functions of both kinds work: the ``forward(ctx, …)`` style and the ``setup_context``
style (``forward`` without ctx, then ``setup_context(ctx, inputs, output)``). No graph
is built: everything runs under ``torch.no_grad()``, which makes the manual path cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch


class Context:
    """What a Function may use of autograd's ``ctx``, as a plain object.

    It supports what torch's ``ctx`` offers a Function: ``save_for_backward`` and
    ``saved_tensors`` (with the deprecated alias ``saved_variables``),
    ``needs_input_grad``, ``mark_non_differentiable``, ``mark_dirty``,
    ``set_materialize_grads``, ``save_for_forward``, and any attribute a Function sets.
    handgrad's own bookkeeping lives in attributes that start with ``_handgrad`` (the
    Function and its output), so a Function may set ``ctx.output`` or ``ctx.function``
    freely.

    Parameters
    ----------
    needs_input_grad : sequence of bool, optional
        Which inputs want a gradient; ``backward`` computes only those. Default: all
        of them, once ``forward`` knows how many inputs there are.
    """

    # Defaults as class attributes, so that a Context costs little to make: the manual
    # chain makes one per Function per step. The methods below set them per instance.
    materialize_grads: bool = True
    dirty_tensors: tuple = ()
    non_differentiable: tuple = ()
    to_save: tuple = ()
    saved_for_forward: tuple = ()
    _handgrad_function: type | None = None
    _handgrad_output: Any = None

    def __init__(self, needs_input_grad: Sequence[bool] | None = None) -> None:
        self.needs_input_grad = None if needs_input_grad is None else tuple(needs_input_grad)

    # --- the parts of autograd's ctx that Functions call ---------------------------
    def save_for_backward(self, *tensors: torch.Tensor | None) -> None:
        self.to_save = tensors

    def save_for_forward(self, *tensors: torch.Tensor | None) -> None:
        """Kept for ``jvp``; forward mode does not run on the manual path."""
        self.saved_for_forward = tensors

    @property
    def saved_tensors(self) -> tuple:
        return tuple(self.to_save)

    @property
    def saved_variables(self) -> tuple:
        """The deprecated alias of :attr:`saved_tensors`, which torch still supports."""
        warnings.warn("'saved_variables' is deprecated; use 'saved_tensors'", DeprecationWarning, 2)
        return self.saved_tensors

    def mark_dirty(self, *tensors: torch.Tensor) -> None:
        """Recorded only: nothing tracks versions on the manual path."""
        self.dirty_tensors = tensors

    def mark_non_differentiable(self, *tensors: torch.Tensor) -> None:
        """Recorded; :meth:`backward` passes zeros for these outputs, as autograd does."""
        self.non_differentiable = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """With False, a missing grad_output reaches backward as None, not as zeros."""
        self.materialize_grads = value

    # --- the manual chain ---------------------------------------------------------
    def backward(self, *grad_outputs: torch.Tensor | None) -> tuple:
        """Run the Function's backward with ``grad_outputs``; return one gradient per input.

        Give one grad_output per output of forward. With no argument, a scalar output is
        seeded with 1 (∂C/∂C). As autograd does, outputs marked non-differentiable get
        zeros, and a None becomes zeros unless ``set_materialize_grads(False)`` was called.
        """
        function, output = self._handgrad_function, self._handgrad_output
        if function is None:
            raise RuntimeError(
                "this Context has no Function yet; fill it with "
                "handgrad.forward(Function, *inputs) before calling backward."
            )
        if not grad_outputs:
            if not isinstance(output, torch.Tensor) or output.ndim != 0:
                raise ValueError(
                    "backward() needs a grad_output for a non-scalar output; "
                    "pass a tensor shaped like each of the forward's outputs."
                )
            grad_outputs = (torch.ones_like(output),)
        filled = grad_outputs
        single = len(grad_outputs) == 1 and grad_outputs[0] is not None
        if isinstance(output, tuple) or self.non_differentiable or not single:
            filled = self._fill(output, grad_outputs)  # off the one-output hot path
        with torch.no_grad():
            grads = function.backward(self, *filled)
        return grads if isinstance(grads, tuple) else (grads,)

    def _fill(self, output: Any, grad_outputs: tuple) -> list:
        """The grad_outputs as autograd passes them: zeros for outputs marked
        non-differentiable, and for None unless materializing is switched off."""
        outputs = output if isinstance(output, tuple) else (output,)
        if len(grad_outputs) != len(outputs):
            raise ValueError(
                f"backward() got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs; "
                "give one per output (None for an output with no gradient)."
            )
        frozen = {id(t) for t in self.non_differentiable}
        filled = []
        for out, grad in zip(outputs, grad_outputs, strict=True):
            if isinstance(out, torch.Tensor) and (
                id(out) in frozen or grad is None and self.materialize_grads
            ):
                grad = torch.zeros_like(out)
            filled.append(grad)
        return filled


def is_setup_context_style(function: type) -> bool:
    """Whether ``function`` defines ``setup_context`` (its forward takes no ``ctx``)."""
    return function.setup_context is not torch.autograd.Function.setup_context


def forward(
    function: type, *inputs: Any, needs_input_grad: Sequence[bool] | None = None
) -> tuple[Any, Context]:
    """Run ``function``'s forward by hand; return its output and the filled Context.

    Parameters
    ----------
    function : subclass of torch.autograd.Function
        ``forward(ctx, …)`` style, or ``setup_context`` style (``forward`` without ctx,
        then ``setup_context(ctx, inputs, output)``).
    *inputs
        The forward's inputs, tensors or not.
    needs_input_grad : sequence of bool, optional
        Default: True for every floating-point tensor input, False for the rest.

    Returns
    -------
    output, ctx
        ``ctx.backward(grad_output)`` then runs the matching backward.
    """
    if needs_input_grad is None:
        needs_input_grad = [
            isinstance(x, torch.Tensor) and x.dtype.is_floating_point for x in inputs
        ]
    ctx = Context(needs_input_grad)
    ctx._handgrad_function = function
    with torch.no_grad():
        if is_setup_context_style(function):
            output = function.forward(*inputs)
            function.setup_context(ctx, inputs, output)
        else:
            output = function.forward(ctx, *inputs)
    ctx._handgrad_output = output
    return output, ctx
