"""The one module that speaks to gpsd: its JSON protocol over TCP, no library.

``?WATCH={"enable":true,"json":true}`` then one JSON object a line; we keep only the TPV
reports (time-position-velocity) and read the few keys we use. Every socket operation has a
timeout; every failure (no gpsd, a closed connection, a line too long, not JSON) is a
:class:`GpsdError` with a one-line reason, never anything else.

Usage::

    with GpsdConnection("127.0.0.1", 2947, timeout_s=2.0) as gpsd:
        while (report := gpsd.next_tpv()) is not None: ...

The ``gps`` PyPI package (gpsd's own client) was last released in 2016 and parses far
more than we need: a few dozen lines here instead of a dependency.
"""

from __future__ import annotations

import contextlib
import json
import socket
from types import TracebackType
from typing import Any, Final, Self

WATCH: Final = b'?WATCH={"enable":true,"json":true}\n'
MAX_LINE: Final = 16_384  # gpsd's longest report (SKY with many satellites) is a few KiB


class GpsdError(Exception):
    """gpsd gave nothing we can use; ``reason`` says what, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GpsdConnection:
    """A watching connection to gpsd at ``host``:``port``; close it (or use ``with``)."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 2.0) -> None:
        self.where = f"gpsd at {host}:{port}"
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout_s)
        except TimeoutError:
            raise GpsdError(f"no answer from {self.where} within {timeout_s} s") from None
        except OSError as exc:
            why = exc.strerror or repr(exc)
            raise GpsdError(f"cannot connect to {self.where}: {why}") from None
        self._sock.settimeout(timeout_s)
        self._buffer = b""
        try:
            self._sock.sendall(WATCH)
        except OSError as exc:
            self.close()
            raise GpsdError(f"{self.where}: cannot send WATCH: {exc!r}") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def interrupt(self) -> None:
        """Wake a read blocked in another thread (it fails with GpsdError)."""
        with contextlib.suppress(OSError):  # not connected any more
            self._sock.shutdown(socket.SHUT_RDWR)

    def next_report(self) -> dict[str, Any]:
        """The next report gpsd sends (any class); GpsdError on a timeout or a bad line."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise GpsdError(f"{self.where}: a line longer than {MAX_LINE} bytes")
            try:
                chunk = self._sock.recv(4096)
            except TimeoutError:
                raise GpsdError(f"{self.where}: no report within the timeout") from None
            except OSError as exc:
                raise GpsdError(f"{self.where}: connection failed: {exc!r}") from None
            if not chunk:
                raise GpsdError(f"{self.where} closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            report = json.loads(line)
        except ValueError:
            raise GpsdError(f"{self.where}: not JSON: {line[:80]!r}") from None
        if not isinstance(report, dict):
            raise GpsdError(f"{self.where}: not a JSON object: {line[:80]!r}")
        return report

    def next_tpv(self) -> dict[str, Any]:
        """The next TPV report (the others, VERSION, DEVICES, SKY ..., are passed over)."""
        while True:
            report = self.next_report()
            if report.get("class") == "TPV":
                return report


__all__ = ["MAX_LINE", "WATCH", "GpsdConnection", "GpsdError"]
