"""The inputs ``handgrad check`` draws from ``--input`` specs: tensors in a domain, or scalars.

One spec per argument of the forward, in order::

    10,5             a float64 tensor of shape (10, 5), drawn from the default domain
    10,5:positive    ... drawn from a named domain (see DOMAINS)
    10,5:-2..3       ... uniform in [-2, 3]
    ()               a 0-dim tensor
    8:index=5        an int64 tensor of shape (8,), class indices in 0..4
    int:3  float:0.5  bool:true  str:mean  none      a Python value, passed as is

A domain keeps the inputs where the forward is defined: positive ones for ``log`` and
``sqrt``, values in (−1, 1) for ``atanh``, probabilities for a binary cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handgrad.errors import UserError

if TYPE_CHECKING:  # torch is imported where tensors are drawn: see make_inputs
    import torch

# name -> (low, high) of a uniform draw, or None for the standard normal
DOMAINS: dict[str, tuple[float, float] | None] = {
    "normal": None,  # N(0, 1): the default, for Functions defined everywhere
    "positive": (0.5, 2.0),  # away from 0, where log, sqrt and 1/x are steep
    "unit": (-0.9, 0.9),  # inside (−1, 1), away from its ends (asin, atanh)
    "prob": (0.05, 0.95),  # inside (0, 1), away from its ends (log(p), log(1 − p))
}
SCALARS = ("int", "float", "bool", "str")
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
SYNTAX = (
    "use SHAPE[:DOMAIN] (e.g. 10,5 or 10,5:positive or 10,5:-1..1 or 8:index=5), "
    "int:N, float:X, bool:true|false, str:TEXT or none"
)


@dataclass(frozen=True)
class Spec:
    """One parsed ``--input``: a tensor to draw, or a value to pass as is."""

    text: str
    shape: tuple[int, ...] | None = None  # None for a scalar
    domain: str | None = None  # None: the default domain
    value: Any = None

    @property
    def is_tensor(self) -> bool:
        return self.shape is not None


def parse_spec(text: str) -> Spec:
    """Parse one ``--input``; raise UserError with the accepted syntax if it is not one."""
    stripped = text.strip()
    if stripped.lower() == "none":
        return Spec(text, value=None)
    head, colon, rest = stripped.partition(":")
    if head.strip().lower() in SCALARS and colon:
        return Spec(text, value=_scalar(text, head.strip().lower(), rest.strip()))
    shape = parse_shape(head, text)
    domain = rest.strip() if colon else None
    if domain is not None:
        check_domain(domain, f"--input {text!r}")
    return Spec(text, shape=shape, domain=domain)


def parse_shape(text: str, whole: str | None = None) -> tuple[int, ...]:
    """``"10,5"`` → (10, 5); ``"3"`` and ``"3,"`` → (3,); ``"()"`` → ()."""
    stripped = text.strip().strip("()").strip()
    if not stripped:
        return ()
    try:
        shape = tuple(int(part) for part in stripped.rstrip(",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(size < 1 for size in shape):
        raise UserError(
            f"--input {whole or text!r} is not a shape; give positive sizes separated by "
            f"commas, e.g. --input 10,5 (or --input '()' for a 0-dim tensor); {SYNTAX}."
        )
    return shape


def check_domain(domain: str, where: str) -> None:
    """Raise UserError unless ``domain`` is a name of DOMAINS, LOW..HIGH or index=K."""
    if domain in DOMAINS or _range(domain) is not None or _classes(domain) is not None:
        return
    raise UserError(
        f"{where}: {domain!r} is not a domain; use {', '.join(DOMAINS)}, LOW..HIGH "
        "(e.g. -1..1, LOW < HIGH) or index=K (class indices 0..K-1, K ≥ 1)."
    )


def describe_domain(domain: str) -> str:
    """``"positive (uniform in [0.5, 2])"``, for the line that lists the inputs."""
    if domain == "normal":
        return "normal (N(0, 1))"
    if domain in DOMAINS:
        low, high = DOMAINS[domain]
        return f"{domain} (uniform in [{low:g}, {high:g}])"
    if _classes(domain) is not None:
        return f"int64 class indices in 0..{_classes(domain) - 1}"
    low, high = _range(domain)
    return f"uniform in [{low:g}, {high:g}]"


def make_inputs(
    specs: Sequence[Spec], default_domain: str, seed: int, device: str | torch.device = "cpu"
) -> tuple[list[Any], list[str]]:
    """Draw the inputs (tensors on ``device``), and one line describing each."""
    import torch  # not at the top: the parser reads this module's tables, torch-free

    generator = torch.Generator().manual_seed(seed)
    inputs, lines = [], []
    for i, spec in enumerate(specs):
        if not spec.is_tensor:
            inputs.append(spec.value)
            lines.append(f"input {i}: {type(spec.value).__name__} {spec.value!r}")
            continue
        domain = spec.domain or default_domain
        inputs.append(_draw(spec.shape, domain, generator).to(device))
        lines.append(f"input {i}: {spec.shape} {describe_domain(domain)}")
    return inputs, lines


def _draw(shape: tuple[int, ...], domain: str, generator: torch.Generator) -> torch.Tensor:
    import torch

    classes = _classes(domain)
    if classes is not None:
        return torch.randint(0, classes, shape, generator=generator)
    bounds = DOMAINS[domain] if domain in DOMAINS else _range(domain)
    if bounds is None:
        return torch.randn(shape, generator=generator, dtype=torch.float64)
    low, high = bounds
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def _scalar(text: str, kind: str, value: str) -> Any:
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            return value
        if value.lower() in TRUE + FALSE:
            return value.lower() in TRUE
    except ValueError:
        pass
    raise UserError(f"--input {text!r}: {value!r} is not a {kind}; {SYNTAX}.")


def _range(domain: str) -> tuple[float, float] | None:
    low, dots, high = domain.partition("..")
    try:
        bounds = (float(low), float(high)) if dots else None
    except ValueError:
        return None
    return bounds if bounds is not None and bounds[0] < bounds[1] else None


def _classes(domain: str) -> int | None:
    name, equals, count = domain.partition("=")
    if name.strip() != "index" or not equals:
        return None
    try:
        k = int(count)
    except ValueError:
        return None
    return k if k >= 1 else None
