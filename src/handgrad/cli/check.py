"""``handgrad check``: check hand-written backward passes against finite differences.

- ``handgrad check``: the project's own Functions, over several shapes, in float32
  and float64; prints a table.
- ``handgrad check module:Attr --input 10,5 --input 5,3``: a user's Function or
  callable, on random float64 inputs of those shapes; prints the report.

Exit codes: 0 when every check is ok, 1 when a gradient is wrong, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

from handgrad.errors import UserError

MAX_ELEMENTS = 20_000  # finite differences cost two forward calls per input element


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        help="check hand-written backward passes against finite differences",
        description=(
            "Check backward passes against float64 finite differences and name the "
            "mistake (scaled, sign-flipped, transposed, wrong-shape...). With no target, "
            "check handgrad's own Functions. Exit code: 0 ok, 1 a gradient is wrong, "
            "2 usage error."
        ),
    )
    parser.add_argument(
        "target",
        nargs="?",
        help="module:Attr, a torch.autograd.Function or callable; the module is imported "
        "from the current directory (e.g. my_functions:MyLinear)",
    )
    parser.add_argument(
        "--input",
        action="append",
        dest="shapes",
        metavar="SHAPE",
        help="the shape of one tensor input, e.g. 10,5 (or () for a 0-dim tensor); "
        "give one --input per argument, in order",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random inputs (default: 0)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)
    return parser  # the wiring in cli/__init__.py may add shared options to it


def run(args: argparse.Namespace) -> int:
    # Imported here, not above: `handgrad --help` builds this parser and must not wait for torch.
    import torch

    from handgrad.checking import check
    from handgrad.checking.analytic import describe_error
    from handgrad.checking.builtin import check_builtin, format_table

    if args.target is None:
        if args.shapes:
            raise UserError("--input needs a target: handgrad check module:Attr --input 10,5 ...")
        rows = check_builtin(args.seed)
        if args.json:
            print(json.dumps([_row_dict(row) for row in rows], indent=2))
        else:
            print(format_table(rows))
        return 0 if all(row.report.ok for row in rows) else 1

    function = load_target(args.target)
    if not args.shapes:
        raise UserError(
            f"give the shape of each input of {args.target} with --input, in order, "
            "e.g. --input 10,5 --input 5,3."
        )
    shapes = [parse_shape(text) for text in args.shapes]
    total = sum(torch.Size(shape).numel() for shape in shapes)
    if total > MAX_ELEMENTS:
        raise UserError(
            f"the inputs have {total} elements in all, more than {MAX_ELEMENTS}; finite "
            "differences would be slow. Use smaller shapes: the verdict does not depend "
            "on size."
        )
    generator = torch.Generator().manual_seed(args.seed)
    inputs = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    try:
        report = check(function, *inputs, seed=args.seed)
    except Exception as error:  # forward, or the target itself, rejected these inputs
        shown = ", ".join(str(shape) for shape in shapes)
        raise UserError(
            f"calling {args.target} on float64 inputs of shapes {shown} raised "
            f"{describe_error(error)}. Check that --input gives one shape per argument, "
            "in forward's order."
        ) from error
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0 if report.ok else 1


def parse_shape(text: str) -> tuple[int, ...]:
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
            f"--input {text!r} is not a shape; give positive sizes separated by commas, "
            "e.g. --input 10,5 (or --input '()' for a 0-dim tensor)."
        )
    return shape


def load_target(text: str) -> Any:
    """Import ``module:Attr`` (Attr may be dotted) from the current directory."""
    from handgrad.checking.analytic import describe_error

    module_name, colon, attribute = text.partition(":")
    if not colon or not module_name or not attribute:
        raise UserError(
            f"target {text!r} must have the form module:Attr, e.g. my_functions:MyLinear "
            "for class MyLinear in my_functions.py in the current directory."
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # so that module.py in the current directory imports
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise UserError(
                f"no module named {module_name!r} in {cwd} or on sys.path; run handgrad "
                f"check from the folder that holds {module_name.replace('.', '/')}.py."
            ) from error
        raise UserError(f"importing {module_name} failed: {describe_error(error)}") from error
    except Exception as error:  # the user's module may raise anything while importing
        raise UserError(f"importing {module_name} raised {describe_error(error)}") from error
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            found = sorted(
                name
                for name, item in vars(module).items()
                if callable(item)
                and not name.startswith("_")
                and getattr(item, "__module__", None) == module.__name__
            )
            listed = ", ".join(found) or "none"
            raise UserError(
                f"{module_name} has no attribute {attribute!r}; its Functions and "
                f"callables are: {listed}."
            )
        value = getattr(value, part)
    if not callable(value):
        raise UserError(
            f"{text} is a {type(value).__name__}, not a torch.autograd.Function or a "
            "callable; name the Function class or function to check."
        )
    return value


def _row_dict(row: Any) -> dict[str, Any]:
    return {
        "function": row.name,
        "sizes": dict(zip(("q", "n", "p"), row.sizes, strict=True)),
        "dtype": str(row.dtype).removeprefix("torch."),
        "report": row.report.to_dict(),
    }
