"""The ``handgrad`` command line: ``build_parser()``, ``main(argv) -> int``, ``entry_point()``.

Each subcommand lives in a module of this package that provides ``add_parser(subparsers)``
and a ``run(args) -> int``; this module only wires them together and turns user errors
into one clear line on stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence

import handgrad
from handgrad.cli.argtypes import Parser, unrecognized
from handgrad.errors import UserError

SUBCOMMANDS = ("train", "predict", "check")


def _modules():
    import importlib

    return [importlib.import_module(f"handgrad.cli.{name}") for name in SUBCOMMANDS]


def build_parser() -> Parser:
    parser = Parser(
        prog="handgrad",
        description="Gradient descent on hand-written, proved-right backward passes.",
    )
    parser.add_argument("--version", action="version", version=f"handgrad {handgrad.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, module in zip(SUBCOMMANDS, _modules(), strict=True):
        sub = parser.subcommands[name] = module.add_parser(subparsers)
        # Also after the subcommand; SUPPRESS keeps it from undoing `handgrad --debug CMD`.
        sub.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show the full traceback of an error",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv``; return the exit code."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Said by the subcommand's parser, so that the message points to its --help.
        subcommand = parser.subcommands.get(args.command, parser)
        subcommand.error(unrecognized(unknown, subcommand))
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(args)
            code = args.run(args)
            sys.stdout.flush()  # a closed pipe shows here, while it can still be handled
            return code
    except BrokenPipeError:
        # The reader went away (`handgrad predict ... | head -1`): end quietly, with the
        # status of a process that SIGPIPE ended, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no 2nd error at exit
        return 128 + signal.SIGPIPE
    except UserError as error:
        if args.debug:
            raise
        if _speaks(error):
            print(f"handgrad {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:  # the disk, not the code: full, read-only, permissions
        if args.debug:
            raise
        where = f": {error.filename}" if error.filename else ""
        message = f"handgrad {args.command}: error: {error.strerror or error}{where}"
        if _speaks(error):
            print(message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"handgrad {args.command}: interrupted.", file=sys.stderr)
        return 130


def _speaks(error: BaseException) -> bool:
    """Under torchrun one rank speaks for all: the lowest failing rank for an error met
    at a collective (which marks it ``report``), rank 0 for one every rank met alike."""
    return getattr(error, "report", os.environ.get("RANK", "0") == "0")


def _one_line_warnings(args):
    """Show handgrad's own warnings (about the user's data) as one plain line each."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not category.__module__.startswith("handgrad."):
            return default(message, category, filename, lineno, file, line)
        # --quiet keeps one warning: a run that did not reach the optimum must say so.
        if not getattr(args, "quiet", False) or category.__name__ == "NotConvergedWarning":
            print(f"handgrad {args.command}: warning: {message}", file=sys.stderr)

    return show


def entry_point() -> None:
    sys.exit(main())
