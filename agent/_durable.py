"""Small files that survive kill -9 and power cuts: write a temp file, fsync, rename, fsync dir.

A reader sees either the old content or the new, never a mix: ``os.replace`` is atomic on
POSIX filesystems, and the two fsyncs order the data before the rename and make the rename
itself durable (ext4 on an SD card may otherwise keep a zero-length file after a power cut).
A crash can leave a temp file behind; it is never read, and :func:`clean_temps` removes it.

    write_atomic(state / "budget.json", payload)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from probefleet.agent.errors import StateError


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def write_atomic(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Replace ``path`` with ``data`` durably; StateError if the directory is unusable."""
    directory = path.parent
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise StateError(f"cannot write in {directory}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise StateError(f"cannot write {path}: {exc.strerror or exc}") from None
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise StateError(f"cannot open {directory}: {exc.strerror or exc}") from None
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def clean_temps(path: Path) -> list[Path]:
    """Remove temp files an interrupted :func:`write_atomic` of ``path`` left; return them."""
    removed = []
    for temp in path.parent.glob(_temp_prefix(path) + "*.tmp"):
        with contextlib.suppress(OSError):
            temp.unlink()
            removed.append(temp)
    return removed
