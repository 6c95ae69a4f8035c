"""Argument types for the command line: each rejects a bad value with a sentence."""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number; got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number; got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}")
    return value


def learning_rate(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a positive number or 'auto'; got {text!r}"
        ) from None


def batch_size(text: str) -> int | None:
    if text == "full":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a positive whole number or 'full'; got {text!r}"
        ) from None


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}")
    return value


def columns(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must name at least one column; got {text!r}")
    return names


def _guess(word: str, choices) -> str:
    """ "; did you mean X?" for the choice closest to ``word``, or "" if none is close."""
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f"; did you mean {near[0]}?" if near else ""


def unrecognized(words: list[str], parser: argparse.ArgumentParser) -> str:
    """The message for arguments no option takes, with the flag a typo most likely meant."""
    flags = [flag for action in parser._actions for flag in action.option_strings]
    typo = next((word.split("=", 1)[0] for word in words if word.startswith("-")), None)
    plural = "s" if len(words) > 1 else ""
    return f"unrecognized argument{plural}: {' '.join(words)}" + (
        _guess(typo, flags) if typo else ""
    )


class Parser(argparse.ArgumentParser):
    """argparse, with errors in two lines (what is wrong; where to read more), not a usage
    dump, and a guess at what a mistyped choice meant (as Python 3.14's suggest_on_error)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.subcommands: dict[str, argparse.ArgumentParser] = {}

    def parse_known_args(self, args=None, namespace=None):
        self._words = list(sys.argv[1:] if args is None else args)  # for error() below
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if found:
            message += _guess(found.group(1), re.findall(r"[\w.-]+", found.group(2)))
        if message.startswith("the following arguments are required"):
            # `--modl x` leaves --model out: the typo is the mistake to point at.
            flags = [flag for action in self._actions for flag in action.option_strings]
            typos = [
                word
                for word in getattr(self, "_words", [])
                if word.startswith("-")
                and not _is_number(word)
                and not any(flag.startswith(word.split("=", 1)[0]) for flag in flags)
            ]
            if typos:
                message = unrecognized(typos, self)
        end = "" if message.endswith(("?", ".")) else "."
        self.exit(2, f"{self.prog}: error: {message}{end}\nSee '{self.prog} --help'.\n")


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
