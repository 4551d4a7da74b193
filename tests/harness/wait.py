"""Bounded waiting: eventually() polling and ServiceProcess, a subprocess started and stopped."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")


def eventually(
    predicate: Callable[[], T],
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
    message: str | Callable[[], str] = "condition not met",
    *,
    abort_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Exceptions raised by the predicate count as "not yet", except those in ``abort_on``, which
    propagate at once (e.g. a service process that died will never become ready). On timeout an
    AssertionError names ``message`` (called first when it is a function, e.g. to read logs
    only then) and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout_s
    last: str = "predicate never ran"
    attempts = 0
    while True:
        attempts += 1
        try:
            value = predicate()
        except abort_on:
            raise
        except Exception as exc:  # "not yet" is any failure of the probe
            last = f"last exception: {exc!r}"
        else:
            if value:
                return value
            last = f"last value: {value!r}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = message() if callable(message) else message
            raise AssertionError(
                f"{text} (timed out after {timeout_s:.2f}s, {attempts} attempts; {last})"
            )
        time.sleep(min(interval_s, remaining))


def find_binary(name: str, package: str) -> str:
    """Return the path of ``name``; fail loudly (never skip) naming the Debian package."""
    found = shutil.which(name) or shutil.which(
        name, path="/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"
    )
    if found is None:
        raise RuntimeError(
            f"{name!r} not found on PATH or in /usr/sbin: install the Debian package "
            f"{package!r} (apt-get update && apt-get install -y {package})"
        )
    return found


def log_tail(path: Path, max_lines: int = 40) -> str:
    """Return the last lines of a log file, or a note saying why there are none."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"--- {path}: (not created) ---"
    body = "\n".join(lines[-max_lines:]) if lines else "(empty)"
    return f"--- last {min(len(lines), max_lines)} lines of {path} ---\n{body}"


class ServiceExited(RuntimeError):
    """A service process ended while we were waiting for it to become ready."""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# If pytest itself is SIGKILLed (a CI timeout, a second Ctrl-C) no teardown or atexit runs.
# PR_SET_PDEATHSIG would only reach each service's main process: nginx workers, children of
# the master, would live on holding the ports. So a tiny reaper process reads "+pgid" and
# "-pgid" lines on a pipe from us, and kills every group still registered when the pipe hits
# end-of-file, which happens however this process dies.
_REAPER_CODE = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, pgid = line[0], int(line[1:])
    if sign == "+":
        groups.add(pgid)
    else:
        groups.discard(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class _Reaper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _REAPER_CODE],
                    stdin=subprocess.PIPE,
                    text=True,
                    # Its own session: a Ctrl-C aimed at pytest must not kill it first.
                    start_new_session=True,
                )
            assert self._proc.stdin is not None
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()

    def register(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def unregister(self, pgid: int) -> None:
        with contextlib.suppress(OSError):
            self._send(f"-{pgid}")

    def close(self) -> None:
        """End the reaper (nothing is registered any more at a clean exit)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


_reaper = _Reaper()


# Services still running when the interpreter exits (Ctrl-C, a crashed session) are stopped here.
_live: weakref.WeakSet[ServiceProcess] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for service in list(_live):
        with contextlib.suppress(Exception):
            service.kill()
    _reaper.close()


class ServiceProcess:
    """One foreground service process in its own process group, with output captured to files.

    The whole group is signalled on stop so that children (nginx workers) never outlive a test.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        *,
        logs: Sequence[Path] = (),
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.stdout_path = workdir / f"{name}.stdout.log"
        self.stderr_path = workdir / f"{name}.stderr.log"
        self.logs = [*logs, self.stdout_path, self.stderr_path]
        self.stop_signal = stop_signal
        self.stop_timeout_s = stop_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []
        self._offsets: dict[Path, int] = {}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._close_files()
        self._offsets = {path: _size(path) for path in self.logs}
        # Append so that a restart keeps the earlier run's output for post-mortems.
        out = self.stdout_path.open("ab")
        err = self.stderr_path.open("ab")
        self._files = [out, err]
        self._proc = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            # Its own process group, so that stop/kill reach every process it forks.
            start_new_session=True,
        )
        _reaper.register(self._proc.pid)
        _live.add(self)

    def output_since_start(self, path: Path) -> str:
        """What this run (not an earlier one) wrote to ``path``, one of the logs."""
        try:
            with path.open("rb") as handle:
                handle.seek(self._offsets.get(path, 0))
                return handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def check_alive(self) -> None:
        """Raise ServiceExited (with the log tails) if the process has ended."""
        if self._proc is None:
            raise ServiceExited(self.failure_report(f"{self.name} is not running"))
        code = self._proc.poll()
        if code is not None:
            raise ServiceExited(self.failure_report(f"{self.name} exited with status {code}"))

    def wait_ready(self, probe: Callable[[], T], timeout_s: float, what: str) -> T:
        """Wait until ``probe()`` is truthy and return its value, failing at once if the process
        dies meanwhile."""

        def ready() -> T:
            self.check_alive()
            return probe()

        try:
            return eventually(
                ready,
                timeout_s=timeout_s,
                message=f"{self.name}: {what}",
                abort_on=(ServiceExited,),
            )
        except ServiceExited:
            self.kill()
            raise
        except AssertionError as exc:
            self.kill()
            raise RuntimeError(self.failure_report(str(exc))) from None

    def failure_report(self, headline: str) -> str:
        details = "\n".join(log_tail(path) for path in self.logs)
        return f"{headline}\ncommand: {' '.join(self.argv)}\n{details}"

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the main process only (e.g. SIGHUP to reload configuration)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def stop(self) -> None:
        """Ask the service to shut down, then SIGKILL its whole group if it is slow."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(self.stop_signal)
            # Too slow to stop: kill() below finishes the job.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=self.stop_timeout_s)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, as far as the service can tell)."""
        proc = self._proc
        if proc is None:
            return
        # The group outlives its leader when workers linger, so signal it even after exit.
        self._signal_group(signal.SIGKILL)
        try:
            proc.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired as exc:  # pragma: no cover - a stuck D-state process
            raise RuntimeError(f"{self.name} (pid {proc.pid}) survived SIGKILL") from exc
        # Forget the process: signalling its group id again later could hit a recycled pid.
        _reaper.unregister(proc.pid)
        self._proc = None
        self._close_files()
        _live.discard(self)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def _close_files(self) -> None:
        for handle in self._files:
            handle.close()
        self._files = []
