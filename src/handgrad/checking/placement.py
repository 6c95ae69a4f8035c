"""Where the checker computes: the device of its float64 copies, decided in one place.

The rule for ``device="auto"``:

- inputs all on the CPU: the CPU;
- inputs on one accelerator that computes in float64 (cuda, xpu, ...), with or without
  0-dim CPU tensors beside them (torch mixes those with CUDA ones): that device, so that
  a Function with device-specific code is checked where it runs;
- an accelerator without float64 (mps): float64 copies on the CPU, since finite
  differences in float32 are noise;
- inputs on two accelerators, CPU tensors of one or more dimensions beside accelerator
  ones (the forward would fail on them, but not on the checker's copies, which all
  live on one device), or inputs on the meta device (no values): a ValueError.

``device="cpu"`` asks for CPU copies whatever the inputs' device; another device name
asks for that device. :func:`choose_device` decides from device objects alone, so the
rule is tested without the hardware.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

NO_FLOAT64 = frozenset({"mps"})  # backends that cannot hold float64 tensors
NO_VALUES = frozenset({"meta"})  # tensors without data: nothing to differentiate


@dataclass(frozen=True)
class Placement:
    """Where the float64 copies live, and why, in words for the report.

    Attributes
    ----------
    device : torch.device
        Where numeric and analytic gradients are computed.
    given : tuple of str
        The devices the tensor inputs were given on, in order of first appearance.
    reason : str
        Why this device, as the end of a sentence.
    """

    device: torch.device
    given: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        where = "CPU copies" if self.device.type == "cpu" else f"copies on {self.device}"
        return f"{where} of the inputs ({self.reason})"


def choose_device(
    devices: Iterable[torch.device | str],
    requested: str | torch.device = "auto",
    cpu_arrays: bool = False,
) -> Placement:
    """Decide where to compute, from the inputs' devices and the caller's request.

    Parameters
    ----------
    devices : iterable of torch.device or str
        The devices of the tensor inputs.
    requested : {"auto", "cpu"} or a device name, default="auto"
        See the module docstring.
    cpu_arrays : bool, default=False
        Whether a CPU tensor of one or more dimensions is among the inputs.

    Raises
    ------
    ValueError
        Inputs on the meta device, on two accelerators, or on the CPU and an
        accelerator (beyond 0-dim tensors); or a requested device without float64.
    """
    given = tuple(dict.fromkeys(str(torch.device(d)) for d in devices))
    found = [torch.device(name) for name in given]
    for device in found:
        if device.type in NO_VALUES:
            raise ValueError(
                f"an input is on the {device} device, which holds no values; give "
                "tensors with values, on the CPU or on an accelerator."
            )
    accelerators = [d for d in found if d.type != "cpu"]
    if len(accelerators) > 1:
        raise ValueError(
            f"the inputs are on several devices ({', '.join(given)}); put them on one, "
            "as the forward would need."
        )
    if accelerators and cpu_arrays:
        raise ValueError(
            f"the inputs are on {', '.join(given)}: a CPU tensor of one or more dimensions "
            f"beside {accelerators[0]} tensors would fail in the forward, yet pass on the "
            f"checker's copies, which all live on one device; move it to {accelerators[0]} "
            "(0-dim CPU tensors may stay)."
        )
    on = f"given on {', '.join(given)}" if given else "no tensor input"
    if str(requested) != "auto":
        device = torch.device(requested)
        if device.type in NO_FLOAT64:
            raise ValueError(
                f"device={str(requested)!r} has no float64, which finite differences need; "
                "use device='cpu' or 'auto'."
            )
        return Placement(device, given, f"{on}; device={str(requested)!r} asked for")
    if not accelerators:
        return Placement(torch.device("cpu"), given, on)
    device = accelerators[0]
    if device.type in NO_FLOAT64:
        return Placement(torch.device("cpu"), given, f"{on}, which has no float64")
    return Placement(device, given, on)


def placement_for(inputs: Sequence[Any], requested: str | torch.device = "auto") -> Placement:
    """:func:`choose_device` for the tensors among ``inputs``."""
    tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
    cpu_arrays = any(x.device.type == "cpu" and x.dim() > 0 for x in tensors)
    return choose_device((x.device for x in tensors), requested, cpu_arrays)


def to_float64(inputs: Sequence[Any], device: torch.device | str = "cpu") -> list[Any]:
    """Detached copies on ``device``: floating-point tensors in float64, other tensors as
    they are; everything else is passed through."""
    copies = []
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.dtype.is_floating_point:
            # contiguous, so that finite differences can perturb it through a flat view
            x = x.detach().to(device, torch.float64).clone(memory_format=torch.contiguous_format)
        elif isinstance(x, torch.Tensor):
            x = x.detach().to(device).clone()
        copies.append(x)
    return copies
