"""One place that turns failures into one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import functools
import os
import sys

import click

from medgemma_tui.errors import MedtuiError, first_line

EXIT_FAILED = 1  # the command ran and some of its work failed
EXIT_USAGE = 2  # bad usage or input: nothing was run
EXIT_INTERRUPTED = 130


class UsageError(MedtuiError):
    """A command line that cannot run as given (a flag that needs another, nothing to work on)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Errors a user causes with their input; each carries a one-line message."""
    return (MedtuiError, FileNotFoundError)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"medtui: error: {message}", err=True)
    sys.exit(code)


def reports_errors(command):
    """Decorator for command bodies: user errors exit 2, anything else exits 1, both in one line."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt as exc:
            from medgemma_tui.pipeline.interrupts import signal_exit_status

            fail("interrupted", signal_exit_status(exc))
        except click.exceptions.Exit:
            raise
        except user_error_types() as exc:
            fail(first_line(exc), EXIT_USAGE)
        except Exception as exc:  # the one catch-all: a bug must not show the user a traceback
            if os.environ.get("MEDTUI_DEBUG"):
                raise
            fail(f"{type(exc).__name__}: {first_line(exc)} (set MEDTUI_DEBUG=1 for the traceback)", EXIT_FAILED)

    return wrapper
