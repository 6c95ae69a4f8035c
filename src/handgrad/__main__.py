"""``python -m handgrad``: the command-line tool."""

from handgrad.cli import entry_point

entry_point()
