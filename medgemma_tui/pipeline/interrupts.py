"""Ctrl-C and SIGTERM stop a run between two rows, every time, keeping every finished row.

A KeyboardInterrupt raised while torch is inside an operator can surface as another exception (a
``RuntimeError`` from whatever kernel it broke, say "Invalid affine transformation matrix"). The
handler below notes the signal before raising, so the batch runner can tell an interrupted row from a
failed one and stop instead of recording the row as failed and going on.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class InterruptFlag:
    """Set when Ctrl-C or SIGTERM arrived during the run."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None  # which signal arrived first (SIGINT for Ctrl-C)

    def set(self, signum: int = signal.SIGINT) -> None:
        if not self._event.is_set():
            self.signum = int(signum)
        self._event.set()

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process stopped by a signal: 128 + its number (130 for Ctrl-C, 143 for
        SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)

    def __bool__(self) -> bool:
        return self._event.is_set()


@contextmanager
def interrupts_noted() -> Iterator[InterruptFlag]:
    """SIGINT and SIGTERM set the flag and raise KeyboardInterrupt (main thread only; elsewhere the flag
    stays unset and the caller's own stop flag is the way to stop)."""
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.set(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signal_exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the number of the signal a ``KeyboardInterrupt`` stands for: the one ``interrupts_noted`` names in
    its message ("signal 15"), else Ctrl-C's."""
    words = str(exc).split()
    if len(words) == 2 and words[0] == "signal" and words[1].isdigit():
        return 128 + int(words[1])
    return 128 + signal.SIGINT
