"""The checks beyond first derivatives, each an :class:`ExtraCheck` that never passes silently.

- manual chaining: ``handgrad.forward`` + ``ctx.backward`` gives autograd's gradients;
- double backward: ``torch.autograd.gradgradcheck``, where backward is differentiable;
- forward mode: ``gradcheck(check_forward_ad=True)``, where the Function defines ``jvp``;
- (the backward rerun with one input requiring grad, or in the inputs' own dtype, is
  in ``reruns.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch.autograd.gradcheck import GradcheckError

from handgrad.checking.analytic import Attempt, autograd_vjp, describe_error
from handgrad.checking.outputs import Outputs
from handgrad.checking.report import ExtraCheck
from handgrad.checking.target import Target

CHAINING = "manual chaining (handgrad.forward + ctx.backward vs autograd)"
DOUBLE = "double backward (gradgradcheck)"
FORWARD = "forward mode (jvp, gradcheck with check_forward_ad)"


def check_chaining(
    target: Target,
    direct: Attempt,
    through_autograd: Attempt,
    comparable: Sequence[int],
    left_out: Sequence[str] = (),
    explained: bool = False,
) -> ExtraCheck:
    """Compare the raw gradients of the manual chain with autograd's, input by input.

    ``comparable`` lists the inputs whose raw gradient is well shaped; ``left_out``
    labels the others, whose input diagnoses already say what is wrong; ``explained``
    says whether those diagnoses explain why autograd would reject backward's result.
    When the manual chain raises where autograd runs, that is a limit of handgrad's
    Context, not a fault of the Function: the status is ``unsupported``.
    """
    if not target.is_function:
        return ExtraCheck(CHAINING, "not applicable", "a plain callable has no Context")
    if not direct.ok and not through_autograd.ok:
        return ExtraCheck(CHAINING, "skipped", "backward raised by both routes: see the inputs")
    if not direct.ok:
        return ExtraCheck(
            CHAINING,
            "unsupported",
            f"autograd runs {target.name}, but handgrad.forward + ctx.backward raised "
            f"{direct.error}; this is a limit of handgrad's Context, not a fault of "
            f"{target.name}: the gradients above were taken through autograd",
        )
    if not through_autograd.ok:
        rejected = f"autograd rejected backward's result ({through_autograd.error})"
        if explained:
            return ExtraCheck(CHAINING, "skipped", f"{rejected}: see the inputs")
        return ExtraCheck(CHAINING, "failed", rejected)
    differ = []
    for i in comparable:
        raw, auto = direct.value[i], through_autograd.value[i]
        if raw is None or auto is None:
            other = auto if raw is None else raw
            if (raw is None) != (auto is None) and bool(other.nan_to_num().any()):
                differ.append(i)
        elif not torch.allclose(
            raw.to(auto.device, auto.dtype), auto, rtol=1e-7, atol=1e-10, equal_nan=True
        ):
            differ.append(i)
    if differ:
        return ExtraCheck(
            CHAINING, "failed", f"the two routes give different gradients for inputs {differ}"
        )
    detail = f"{', '.join(left_out)} left out: wrong-shape" if left_out else ""
    return ExtraCheck(CHAINING, "passed", detail)


def check_double_backward(
    target: Target,
    inputs: list[Any],
    grad_outputs: Sequence[Any],
    outputs: Outputs,
    indices: Sequence[int],
    skip: str | None,
    seed: int,
) -> ExtraCheck:
    """Run ``gradgradcheck`` on float64 ``inputs`` if backward builds a graph.

    ``skip`` is a reason not to run it (the first derivatives are wrong, say), or None;
    ``seed`` draws its random directions.
    """
    if not target.is_function:
        return ExtraCheck(DOUBLE, "not applicable", "a plain callable's backward is autograd's")
    if skip:
        return ExtraCheck(DOUBLE, "skipped", skip)
    first = autograd_vjp(target, inputs, grad_outputs, indices, create_graph=True)
    if not first.ok:
        return ExtraCheck(DOUBLE, "failed", f"backward with create_graph=True raised {first.error}")
    if not any(g is not None and g.requires_grad for g in first.value.values()):
        return ExtraCheck(
            DOUBLE,
            "not applicable",
            "backward is not differentiable: its gradients carry no graph back to the "
            "inputs (built from tensors saved in forward, which have none, or computed "
            "under no_grad, through numpy, or marked @once_differentiable)",
        )
    try:
        with _random_from(seed, inputs):
            torch.autograd.gradgradcheck(
                differentiable_outputs(target, outputs), _leaves(inputs, indices), fast_mode=True
            )
    except GradcheckError as error:
        where = " ".join(str(error).split("\n")[0].split()).rstrip(",")
        return ExtraCheck(
            DOUBLE,
            "failed",
            f"the second derivatives disagree with finite differences ({where}); the "
            "usual cause is a tensor computed from an input in forward and saved for "
            "backward, which carries no graph back to that input: recompute it in backward",
        )
    except Exception as error:  # whatever the code under test raises
        return ExtraCheck(DOUBLE, "failed", describe_error(error))
    return ExtraCheck(DOUBLE, "passed")


def check_forward_mode(
    target: Target,
    inputs: list[Any],
    outputs: Outputs,
    indices: Sequence[int],
    skip: str | None,
    seed: int,
) -> ExtraCheck:
    """Check a Function's ``jvp`` against finite differences, in float64."""
    if not target.is_function:
        return ExtraCheck(FORWARD, "not applicable", "a plain callable's jvp is autograd's")
    if not target.defines_jvp:
        return ExtraCheck(FORWARD, "not applicable", f"{target.name} defines no jvp")
    if skip:
        return ExtraCheck(FORWARD, "skipped", skip)
    try:
        with _random_from(seed, inputs), warnings.catch_warnings():
            # Forward AD's first use scripts torch's own jvp decompositions, and
            # torch.jit.script warns of its deprecation (a FutureWarning from torch 2.14,
            # shown to every user): about torch's code, not the code under check.
            warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated")
            torch.autograd.gradcheck(
                differentiable_outputs(target, outputs),
                _leaves(inputs, indices),
                check_forward_ad=True,
                check_backward_ad=False,
                check_undefined_grad=False,
                fast_mode=True,
            )
    except Exception as error:  # GradcheckError, or whatever the code under test raises
        return ExtraCheck(FORWARD, "failed", describe_error(error))
    return ExtraCheck(FORWARD, "passed")


@contextmanager
def _random_from(seed: int, inputs: list[Any]) -> Iterator[None]:
    """gradcheck's random directions (and gradgradcheck's grad_outputs) drawn from
    ``seed``: the same verdict on every call, and the caller's random streams, on the CPU
    and on the inputs' GPUs, left as they were."""
    gpus = sorted({x.device.index for x in inputs if _on_cuda(x)})
    with torch.random.fork_rng(devices=gpus):
        torch.default_generator.manual_seed(seed)
        for index in gpus:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def _on_cuda(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.device.type == "cuda"


def differentiable_outputs(target: Target, outputs: Outputs):
    """The target as gradcheck wants it: only the outputs that autograd differentiates."""

    def call(*inputs: Any) -> Any:
        raw = target.call(*inputs)
        if outputs.single:
            return raw
        return tuple(v for v, d in zip(raw, outputs.differentiable, strict=True) if d)

    return call


def _leaves(inputs: list[Any], indices: Sequence[int]) -> tuple[Any, ...]:
    return tuple(
        x.detach().clone().requires_grad_(i in indices) if isinstance(x, torch.Tensor) else x
        for i, x in enumerate(inputs)
    )
