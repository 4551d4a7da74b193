"""Real cross-traffic for the gate's tests: a paced TCP sender, a sink, and a script that runs
the gate against them inside a network namespace (``python -m tests.agent.gate_traffic
'<json>'``; ``... sink HOST PORT`` serves a sink).

It runs in a namespace of its own so that its ``lo`` and ``veth0`` carry nothing but this
traffic: the host's loopback is shared with every other test and service on the machine.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from typing import Any

from probefleet.agent.gate import BusyLineGate, GateConfig, GateDecision

TICK_S = 0.02


class PacedSender:
    """Sends ``rate_bytes_per_s`` to ``(host, port)`` in small chunks on a fixed grid, until
    stopped or ``limit_s`` is over (never longer: a test must not leave traffic behind)."""

    def __init__(self, host: str, port: int, rate_bytes_per_s: int, limit_s: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.chunk = b"\0" * max(1, int(rate_bytes_per_s * TICK_S))
        self.limit_s = limit_s
        self.sent = 0
        self.started = self.ended = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PacedSender:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = 0
        with self.sock:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - self.started >= self.limit_s:
                    break
                self.sock.sendall(self.chunk)
                self.sent += len(self.chunk)
                tick += 1
                self._stop.wait(max(0.0, self.started + tick * TICK_S - time.monotonic()))
        self.ended = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def join(self) -> None:
        self._thread.join(timeout=self.limit_s + 5)

    @property
    def rate(self) -> float:
        return self.sent / max(self.ended - self.started, 1e-6)


class Sink:
    """A TCP listener that reads and discards whatever arrives, on threads."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = socket.create_server((host, port))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while conn.recv(1 << 16):
                pass


def _connectable(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _as_dict(decision: GateDecision) -> dict[str, Any]:
    return {**decision.__dict__, "detail": decision.detail()}


def main(args: dict[str, Any]) -> dict[str, Any]:
    """Three phases: busy (blocked), quiet (clear at once), busy for ~1 s then quiet
    (clear after rechecks). CPU is not judged here: it is the whole machine's."""
    host, port, rate = args["host"], args["port"], args["rate_bytes_per_s"]
    if port == 0:
        port = Sink(host).port
    _connectable(host, port, timeout_s=10)
    interface = args["interface"]
    quick = GateConfig(sample_s=0.5, recheck_s=0.5, max_wait_s=1.0, max_cpu_pct=100.0)
    patient = GateConfig(sample_s=0.5, recheck_s=0.5, max_wait_s=4.0, max_cpu_pct=100.0)
    out: dict[str, Any] = {}

    sender = PacedSender(host, port, rate, limit_s=10.0).start()
    time.sleep(0.2)  # let the pacing settle before the first look
    out["busy"] = _as_dict(BusyLineGate(quick).check(interface))
    sender.stop()
    out["sender_rate"] = sender.rate
    time.sleep(0.3)  # the last segments and their ACKs
    out["quiet"] = _as_dict(BusyLineGate(quick).check(interface))

    burst = PacedSender(host, port, rate, limit_s=1.0).start()
    out["busy_then_quiet"] = _as_dict(BusyLineGate(patient).check(interface))
    burst.join()
    out["burst_s"] = burst.ended - burst.started
    return out


if __name__ == "__main__":
    if sys.argv[1] == "sink":  # sink HOST PORT: serve for a bounded time (the test kills it)
        Sink(sys.argv[2], int(sys.argv[3]))
        time.sleep(120)
    else:
        print(json.dumps(main(json.loads(sys.argv[1]))))
