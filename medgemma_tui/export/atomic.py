"""Files written whole or not at all: a temporary sibling, then one rename onto the name.

A kill at any moment leaves the old file or the new one, never half of either; a temporary file a
killed run left behind is named ``.{name}.*.tmp`` and removed by the next run that takes the tree's
lock. Files get the mode any other tool's output gets under the user's umask (``mkstemp`` alone would
leave them 0600, unreadable to collaborators on a shared host).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from medgemma_tui.errors import MedtuiError
from medgemma_tui.json_values import jsonable

# "No space left on device" and "Disk quota exceeded": no later write of the run can succeed either
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(MedtuiError):
    """A write found the filesystem full (or the user's quota spent): the message names the file."""


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a write that found no space. A library
    that is not Python's own I/O (safetensors) says so only in its message: the C library's text."""
    texts = tuple(os.strerror(code) for code in DISK_FULL_ERRNOS)
    while exc is not None:
        if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS):
            return True
        if any(text in str(exc) for text in texts):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def current_umask() -> int:
    """The process's umask, read without changing it where /proc allows (Linux), else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets under the user's umask: 0666 less the umask."""
    return 0o666 & ~current_umask()


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path`` to write to, then ``os.replace`` onto it (mode 0666 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; when the block succeeds it replaces ``path`` in one rename.

    The mode is set again just before the rename: a writer that replaces the temporary file with one of its
    own (safetensors writes its own temporary file and renames it over the name it is given, mode 0600)
    would otherwise decide the mode."""
    try:
        tmp = atomic_path(path)
        try:
            yield tmp
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except Exception as exc:
        if disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(f"no space left on the device writing {path}") from exc
        raise


def write_bytes_atomic(path: Path, data: bytes, sync: bool = False) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())


def write_json_atomic(path: Path, payload: Any) -> None:
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False, ensure_ascii=False)
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def save_png_atomic(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    with atomic_file(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)
