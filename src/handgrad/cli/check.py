"""``handgrad check``: check hand-written backward passes against finite differences.

- ``handgrad check``: the project's own Functions, over several shapes, in float32
  and float64; prints a table.
- ``handgrad check TARGET --input 10,5:positive --input int:3``: a user's Function or
  callable (``module:Attr``, ``package.module:Attr``, ``file.py:Attr`` or
  ``dir/file.py:Attr``), on random inputs drawn from the ``--input`` specs (see
  ``handgrad.checking.inputs``); prints the report.

Exit codes: 0 when every check is ok, 1 when a gradient (or another check) is wrong,
2 for a usage error, 3 when the forward is undefined at the drawn inputs (choose
their domain).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from handgrad.checking.inputs import DOMAINS, SYNTAX, check_domain, make_inputs, parse_spec
from handgrad.errors import UserError

if TYPE_CHECKING:
    import torch

MAX_ELEMENTS = 20_000  # finite differences cost two forward calls per input element
EXIT_CODES = {"OK": 0, "WRONG": 1, "UNDEFINED": 3}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        help="check hand-written backward passes against finite differences",
        description=(
            "Check backward passes against float64 finite differences and name the "
            "mistake (scaled, sign-flipped, transposed, wrong-shape...). With no target, "
            "check handgrad's own Functions. Exit code: 0 ok, 1 a gradient is wrong, "
            "2 usage error, 3 the forward is undefined at the drawn inputs."
        ),
    )
    parser.add_argument(
        "target",
        nargs="?",
        help="WHERE:Attr, a torch.autograd.Function or callable; WHERE is a module "
        "(my_functions, package.module) imported from the current directory, or a file "
        "(my_functions.py, dir/my_functions.py)",
    )
    parser.add_argument(
        "--input",
        action="append",
        dest="specs",
        metavar="SPEC",
        help=f"one argument of forward, in order: {SYNTAX}; give one --input per argument",
    )
    parser.add_argument(
        "--domain",
        default="normal",
        metavar="DOMAIN",
        help="where float tensors without their own :DOMAIN are drawn: "
        f"{', '.join(f'{d} (default)' if d == 'normal' else d for d in DOMAINS)}, or "
        "LOW..HIGH (a negative LOW needs =: --domain=-2..-1); e.g. positive for log and sqrt",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        metavar="DEVICE",
        help="where the drawn tensors live (cpu, cuda, cuda:1..., or auto: cuda, then "
        "another accelerator torch has, then mps, then cpu; default: cpu); the gradients are "
        "computed in float64 there, or on CPU copies for a device without float64",
    )
    parser.add_argument(
        "--compute-on",
        choices=("auto", "cpu"),
        default="auto",
        help="where the float64 gradients are computed: 'auto' is the inputs' device "
        "(CPU copies for one without float64), 'cpu' always CPU copies (default: auto)",
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
    from handgrad.checking.loading import load_target

    device = _device(args.device)
    if args.target is None:
        if args.specs:
            raise UserError("--input needs a target: handgrad check module:Attr --input 10,5 ...")
        rows = check_builtin(args.seed, device=device, compute_on=args.compute_on)
        if args.json:
            print(json.dumps([_row_dict(row) for row in rows], indent=2))
        else:
            print(format_table(rows))
        return 0 if all(row.report.ok for row in rows) else 1

    check_domain(args.domain, "--domain")
    if args.domain.startswith("index"):
        raise UserError("--domain index=K would make every tensor an index; give it per input.")
    function = load_target(args.target)
    if not args.specs:
        raise UserError(
            f"give each argument of {args.target} with --input, in order, e.g. "
            "--input 10,5 --input 5,3 (or --input int:3 for a number)."
        )
    specs = [parse_spec(text) for text in args.specs]
    total = sum(torch.Size(spec.shape).numel() for spec in specs if spec.is_tensor)
    if total > MAX_ELEMENTS:
        raise UserError(
            f"the inputs have {total} elements in all, more than {MAX_ELEMENTS}; finite "
            "differences would be slow. Use smaller shapes: the verdict does not depend "
            "on size."
        )
    inputs, drawn = make_inputs(specs, args.domain, args.seed, device)
    try:
        report = check(function, *inputs, seed=args.seed, device=args.compute_on)
    except Exception as error:  # forward, or the target itself, rejected these inputs
        shown = " ".join(f"--input {spec.text}" for spec in specs)
        raise UserError(
            f"calling {args.target} on {shown} raised {describe_error(error)}. Check that "
            "there is one --input per argument, in forward's order."
        ) from error
    if args.json:
        print(json.dumps({**report.to_dict(), "drawn_inputs": drawn}, indent=2))
    else:
        print(report)
        print(f"  inputs drawn (seed {args.seed}): " + "; ".join(drawn))
    return EXIT_CODES[report.verdict] if report.ok or report.verdict != "OK" else 1


def _device(name: str) -> torch.device:
    from handgrad.devices import resolve_device

    return resolve_device(name, float64=False)  # float64 copies go to the CPU there


def _row_dict(row: Any) -> dict[str, Any]:
    return {
        "function": row.name,
        "sizes": dict(zip(("q", "n", "p"), row.sizes, strict=True)),
        "dtype": str(row.dtype).removeprefix("torch."),
        "report": row.report.to_dict(),
    }
