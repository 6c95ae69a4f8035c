"""A stand-in for autograd's ``ctx``: chain forward and backward passes by hand.

The classic lab calls each Function's forward, then each backward in reverse order,
passing the gradient along, with no autograd engine involved::

    Y_hat, lin = handgrad.forward(Linear, X, W, b)    # (q, p)
    loss, err = handgrad.forward(MSE, Y_hat, Y)       # ()
    grad_Y_hat, grad_Y = err.backward()               # seeded with 1
    grad_X, grad_W, grad_b = lin.backward(grad_Y_hat)

Both new-style Functions (``forward`` + ``setup_context``) and old-style ones
(``forward(ctx, ...)``) work. No graph is built: everything runs under
``torch.no_grad()``, which is what makes the manual path cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class Context:
    """What a Function may use of autograd's ``ctx``, as a plain object.

    Parameters
    ----------
    needs_input_grad : sequence of bool, optional
        Which inputs want a gradient; ``backward`` computes only those. Default: all
        of them, once ``forward`` knows how many inputs there are.

    Attributes
    ----------
    function : type or None
        The Function whose forward filled this context (set by :func:`forward`).
    output : object
        The forward's output, kept so that :meth:`backward` can seed a scalar with 1.
    """

    def __init__(self, needs_input_grad: Sequence[bool] | None = None) -> None:
        self.needs_input_grad = None if needs_input_grad is None else tuple(needs_input_grad)
        self.function = None
        self.output = None
        self.materialize_grads = True
        self._saved: tuple = ()
        self._saved_for_forward: tuple = ()

    # --- the parts of autograd's ctx that Functions call ---------------------------
    def save_for_backward(self, *tensors: torch.Tensor | None) -> None:
        self._saved = tensors

    def save_for_forward(self, *tensors: torch.Tensor | None) -> None:
        self._saved_for_forward = tensors

    @property
    def saved_tensors(self) -> tuple:
        return self._saved or self._saved_for_forward

    def mark_dirty(self, *tensors: torch.Tensor) -> None:
        """Accepted and ignored: nothing tracks versions on the manual path."""

    def mark_non_differentiable(self, *tensors: torch.Tensor) -> None:
        """Accepted and ignored: nothing builds a graph on the manual path."""

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value

    # --- the manual chain ---------------------------------------------------------
    def backward(self, *grad_outputs: torch.Tensor) -> tuple:
        """Run the Function's backward with ``grad_outputs``; return one gradient per input.

        With no argument, a scalar output is seeded with 1 (∂C/∂C).
        """
        if self.function is None:
            raise RuntimeError(
                "this Context has no Function yet; fill it with "
                "handgrad.forward(Function, *inputs) before calling backward."
            )
        if not grad_outputs:
            if not isinstance(self.output, torch.Tensor) or self.output.ndim != 0:
                raise ValueError(
                    "backward() needs a grad_output for a non-scalar output; "
                    "pass a tensor shaped like the forward's output."
                )
            grad_outputs = (torch.ones_like(self.output),)
        with torch.no_grad():
            grads = self.function.backward(self, *grad_outputs)
        return grads if isinstance(grads, tuple) else (grads,)


def is_new_style(function: type) -> bool:
    """Whether ``function`` defines ``setup_context`` (forward without ``ctx``)."""
    return function.setup_context is not torch.autograd.Function.setup_context


def forward(
    function: type, *inputs: Any, needs_input_grad: Sequence[bool] | None = None
) -> tuple[Any, Context]:
    """Run ``function``'s forward by hand; return its output and the filled Context.

    Parameters
    ----------
    function : subclass of torch.autograd.Function
        New style (``forward`` + ``setup_context``) or old style (``forward(ctx, ...)``).
    *inputs
        The forward's inputs, tensors or not.
    needs_input_grad : sequence of bool, optional
        Default: True for every tensor input, False for the rest.

    Returns
    -------
    output, ctx
        ``ctx.backward(grad_output)`` then runs the matching backward.
    """
    if needs_input_grad is None:
        needs_input_grad = [isinstance(x, torch.Tensor) for x in inputs]
    ctx = Context(needs_input_grad)
    ctx.function = function
    with torch.no_grad():
        if is_new_style(function):
            output = function.forward(*inputs)
            function.setup_context(ctx, inputs, output)
        else:
            output = function.forward(ctx, *inputs)
    ctx.output = output
    return output, ctx
