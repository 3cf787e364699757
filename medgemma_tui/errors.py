"""The one exception base for what a user did wrong, and the one way to say it in a line.

Every error a user can cause with their input (a bad config, an unreadable film, a malformed dataset,
a model that will not load, a results tree another run holds) is a ``MedtuiError`` whose message is one
line; the command line catches the base class, prints the line and exits 2.
"""

from __future__ import annotations


class MedtuiError(Exception):
    """Something the user can fix: the message says what, in one line."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
