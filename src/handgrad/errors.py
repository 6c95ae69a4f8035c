"""The one exception type for mistakes a user can fix: bad files, flags or data."""

from __future__ import annotations


class UserError(Exception):
    """An error in what the user gave, with a message that says how to fix it.

    The command line prints it as one line on stderr, with no traceback, and exits
    with ``exit_code`` (2: usage and input errors).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DataWarning(UserWarning):
    """Something in the user's data that handgrad works around rather than refuses: a
    column left out, a constant feature, a least-squares optimum that is not unique. The
    message says what and why."""
