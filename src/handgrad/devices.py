"""Devices as users name them: resolved, checked against this machine, and named back.

Every entry that takes a device (``handgrad train --device``, ``handgrad check
--device``, ``GDRegressor(device=...)``) resolves it here, so that a device this machine
lacks fails with the same sentence everywhere, before any tensor is made.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from handgrad.errors import UserError

_LABELS = {"cuda": "CUDA", "mps": "Apple MPS"}


_PLAIN = re.compile(r"[\w:.]+")  # a name that needs no quotes to be read back


def _flag(value: str) -> str:
    return f"--device {value}" if _PLAIN.fullmatch(value) else f"--device {value!r}"


def _parse(name: str) -> torch.device | None:
    """``torch.device(name)``, or None where torch knows no such device."""
    try:
        return torch.device(name)
    except RuntimeError:
        return None


def resolve_device(
    name: str, ask: Callable[[str], str] = _flag, float64: bool = True
) -> torch.device:
    """The device ``name`` stands for; ``auto`` is CUDA, else another accelerator torch
    has here (Intel's XPU, a registered backend), else the CPU (or, where float64 is not
    needed, Apple's MPS before the CPU).

    Parameters
    ----------
    name : str
        "auto", "cpu", or a device torch knows ("cuda", "cuda:1", "xpu", "mps").
    ask : callable, default: the CLI's ``--device VALUE``
        How the caller's user writes a device choice, for the error messages.
    float64 : bool, default=True
        Whether the work needs float64 tensors on the device. Training does (its
        statistics, metrics and iterate means); Apple's MPS has none, so it is refused.
        The checker does not (it computes on CPU copies there).

    Raises
    ------
    UserError
        ``name`` is not a device, this machine has no such device, or it has no
        float64 where that is needed.
    """
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        if cuda:
            return torch.device("cuda")
        if torch.accelerator.is_available():  # Intel's XPU, a registered backend
            other = torch.accelerator.current_accelerator()
            if other is not None and other.type not in ("cuda", "mps"):
                return torch.device(other.type)
        return torch.device("mps" if mps and not float64 else "cpu")
    device = _parse(name)
    if device is None:
        names = "auto, cpu, cuda or cuda:1" if float64 else "auto, cpu, cuda, cuda:1 or mps"
        lower = name.lower()
        hint = f" (did you mean {ask(lower)}?)" if lower != name and _parse(lower) else ""
        raise UserError(f"{ask(name)} is not a device{hint}; use {names}.")
    kind = device.type
    if kind == "cpu":
        return device
    if kind == "mps" and float64:
        raise UserError(
            f"{ask(name)}: training keeps its statistics, metrics and iterate means in "
            f"float64, which Apple's MPS does not have; use {ask('cpu')}."
        )
    backend = torch.backends.mps if kind == "mps" else getattr(torch, kind, None)
    if backend is None or not backend.is_available():
        label = _LABELS.get(kind, kind)
        raise UserError(f"{ask(name)}: no {label} device is available here; use {ask('cpu')}.")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if device.index is not None and device.index >= count:
        have = f"{kind}:0" if count == 1 else f"{kind}:0 to {kind}:{count - 1}"
        raise UserError(
            f"{ask(name)}: this machine has {count} {_LABELS.get(kind, kind)} "
            f"device{'s' * (count > 1)} ({have}); use one of those, or {ask('cpu')}."
        )
    return device


def device_name(device: torch.device) -> str:
    """The device as runs report it: "cpu", "xpu:1", or "cuda:0 (NVIDIA H200)"."""
    if device.type != "cuda":
        return str(device)
    index = torch.cuda.current_device() if device.index is None else device.index
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
