"""Simulated probes for bench_fleet.py: one MQTT 3.1.1 connection per probe, in asyncio.

Run by bench_fleet.py as a worker process (``python bench/_fleet_probes.py '<json>'``), one
per share of the fleet. Each probe connects with its Last Will (retained "offline" status),
publishes a retained "online" status, subscribes to its ``ack`` and ``resend`` channels (a
ResendRequest's seqs still unacknowledged go out again, as the agent does) and publishes
the agent's schedule (each kind every ``interval_s / speed`` seconds, at a fixed per-probe
offset), QoS 1, one seq per result as the agent's spool numbers them, ``held_from_seq`` the
lowest seq without a StoredAck. A result's ack latency runs from its PUBLISH to the
StoredAck covering it. Raw sockets on loopback: paho's per-client thread and bookkeeping
would make the harness, not the collector, the ceiling at 10,000 probes.

Commands, one JSON object a line on stdin: ``{"cmd": "speed", "value": 16}`` (0 pauses),
``{"cmd": "burst", "results": N, "speed": S}`` (publish N results at S, then go back; prints
``{"event": "burst_done"}``), ``{"cmd": "mark"}`` (remember each probe's last seq),
``{"cmd": "forget"}`` (drop what awaits a StoredAck), ``{"cmd": "stats"}`` (one JSON line;
latencies since the last stats), ``{"cmd": "quit"}``. Prints ``{"event": "connected"}`` once
every probe has its CONNACK and SUBACK.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import heapq
import json
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.collector.helpers import BOOT_START, TOPICS, iso, result

TICK_S = 0.01
MAX_PER_TICK = 400  # publishes per tick and worker at most: the loop must also read acks
KEEPALIVE_S = 120
_NS = uuid.UUID("6f1c1d2e-0000-4000-8000-00000000f1ee")


def _str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    n, out = len(body), bytearray([first])
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + body


class Probe(asyncio.Protocol):
    """One probe's connection: CONNECT with will, status, SUBSCRIBE ack, PUBLISH QoS 1."""

    def __init__(self, fleet: Fleet, probe_id: str) -> None:
        self.fleet = fleet
        self.probe_id = probe_id
        self.boot = str(uuid.uuid5(_NS, probe_id))
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.packet_id = 0
        self.seq = 0
        self.pending: dict[int, float] = {}  # seq -> monotonic time of its PUBLISH
        self.spool: dict[int, tuple[str, bytes]] = {}  # seq -> what to publish again
        self.ready = asyncio.get_running_loop().create_future()
        self.mark = 0

    # --- sending ---------------------------------------------------------------------------

    def _next_id(self) -> int:
        self.packet_id = self.packet_id % 65535 + 1
        return self.packet_id

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        status = TOPICS.channel(self.probe_id, "status")
        will = json.dumps({"schema": 1, "probe_id": self.probe_id, "state": "offline",
                           "reason": "connection lost"}).encode()  # fmt: skip
        # clean session, will flag, will QoS 1, will retain
        flags = 0x02 | 0x04 | 0x08 | 0x20
        body = (_str("MQTT") + bytes([4, flags]) + struct.pack("!H", KEEPALIVE_S)
                + _str(f"sim-{self.probe_id}") + _str(status) + struct.pack("!H", len(will))
                + will)  # fmt: skip
        transport.write(_packet(0x10, body))

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        assert self.transport is not None
        body = _str(topic) + struct.pack("!H", self._next_id()) + payload
        self.transport.write(_packet(0x32 | (1 if retain else 0), body))

    def publish_result(self, kind: str) -> None:
        self.seq += 1
        now = dt.datetime.now(dt.UTC)
        doc = dict(self.fleet.templates[kind])
        held = next(iter(self.pending), self.seq)
        doc.update(
            probe_id=self.probe_id, seq=self.seq, boot_id=self.boot, measured_at=iso(now),
            sent_at=iso(now), held_from_seq=held,
            clock={"synced": True, "uptime_s": (now - BOOT_START).total_seconds()},
        )  # fmt: skip
        self.pending[self.seq] = time.monotonic()
        topic, payload = TOPICS.result(self.probe_id, kind), json.dumps(doc).encode()
        self.spool[self.seq] = (topic, payload)
        self._publish(topic, payload)
        self.fleet.published += 1

    def ping(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"\xc0\x00")

    # --- receiving -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while len(buf) >= 2:
            length, mult, i = 0, 1, 1
            while True:
                if i >= len(buf):
                    return
                byte = buf[i]
                length += (byte & 0x7F) * mult
                mult *= 128
                i += 1
                if not byte & 0x80:
                    break
            if len(buf) < i + length:
                return
            first, body = buf[0], bytes(buf[i : i + length])
            del buf[: i + length]
            self._handle(first, body)

    def _handle(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == 2:  # CONNACK
            if body[1] != 0:
                self.fleet.fail(f"{self.probe_id}: CONNACK {body[1]}")
                return
            now = dt.datetime.now(dt.UTC)
            status = {"schema": 1, "probe_id": self.probe_id, "state": "online",
                      "boot_id": self.boot, "at": iso(now)}  # fmt: skip
            self._publish(
                TOPICS.channel(self.probe_id, "status"), json.dumps(status).encode(), retain=True
            )
            sub = struct.pack("!H", self._next_id())
            for channel in ("ack", "resend"):
                sub += _str(TOPICS.channel(self.probe_id, channel)) + b"\x01"
            assert self.transport is not None
            self.transport.write(_packet(0x82, sub))
        elif kind == 4:  # PUBACK
            self.fleet.pubacked += 1
        elif kind == 9:  # SUBACK
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == 3:  # PUBLISH: a StoredAck
            qos = (first >> 1) & 3
            (tlen,) = struct.unpack_from("!H", body)
            pos = 2 + tlen
            topic = body[2:pos]
            if qos:
                assert self.transport is not None
                self.transport.write(b"\x40\x02" + body[pos : pos + 2])
                pos += 2
            if topic.endswith(b"/resend"):
                self._resend(json.loads(body[pos:]))
            else:
                self._stored_ack(json.loads(body[pos:]))

    def _resend(self, request: dict[str, Any]) -> None:
        """As the agent does: every asked seq still spooled goes out again."""
        for first, last in request["ranges"]:
            for seq in range(int(first), int(last) + 1):
                kept = self.spool.get(seq)
                if kept is not None:
                    self._publish(*kept)
                    self.fleet.resent += 1

    def _stored_ack(self, ack: dict[str, Any]) -> None:
        now = time.monotonic()
        self.fleet.stored_acks += 1
        through = int(ack["stored_through_seq"])
        lat = self.fleet.latencies
        pending = self.pending
        while pending:
            seq = next(iter(pending))
            if seq > through:
                break
            lat.append(now - pending.pop(seq))
            self.spool.pop(seq, None)
        for first, last in ack.get("also_stored", []):
            for seq in range(int(first), int(last) + 1):
                self.spool.pop(seq, None)
                sent = pending.pop(seq, None)
                if sent is not None:
                    lat.append(now - sent)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fleet.disconnects += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"{self.probe_id}: connection lost"))


class Fleet:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.schedule: list[tuple[str, float]] = [(k, float(s)) for k, s in spec["schedule"]]
        self.templates = {k: result(k, probe="x", seq=1) for k, _ in self.schedule}
        self.probes: list[Probe] = []
        self.published = self.pubacked = self.disconnects = self.stored_acks = self.resent = 0
        self.latencies: list[float] = []
        self.speed = float(spec["speed"])
        self.sim_now = 0.0
        self.heap: list[tuple[float, int, int]] = []
        self.burst: tuple[int, float, float] | None = None  # (until published, speed, back)
        self.errors: list[str] = []

    def fail(self, message: str) -> None:
        self.errors.append(message)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.spec["host"], int(self.spec["port"])
        for i in range(int(self.spec["first"]), int(self.spec["last"])):
            probe = Probe(self, f"fleet-{i:05d}")
            await loop.create_connection(lambda p=probe: p, host, port)  # type: ignore[misc]
            self.probes.append(probe)
            if len(self.probes) % 200 == 0:
                await asyncio.sleep(0.05)  # connection storms are the broker's, not ours
        await asyncio.wait_for(asyncio.gather(*(p.ready for p in self.probes)), timeout=300)
        for index, probe in enumerate(self.probes):
            for job, (kind, interval) in enumerate(self.schedule):
                digest = hashlib.sha256(f"{probe.probe_id}/{kind}".encode()).digest()
                offset = int.from_bytes(digest[:8], "big") % int(interval * 1000) / 1000
                self.heap.append((offset, index, job))
        heapq.heapify(self.heap)

    async def run_schedule(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self.sim_now += (now - last) * self.speed
            last = now
            heap, sent = self.heap, 0
            while heap and heap[0][0] <= self.sim_now and sent < MAX_PER_TICK:
                due, index, job = heapq.heappop(heap)
                kind, interval = self.schedule[job]
                self.probes[index].publish_result(kind)
                heapq.heappush(heap, (due + interval, index, job))
                sent += 1
            if sent >= MAX_PER_TICK and heap:
                self.sim_now = min(self.sim_now, heap[0][0])  # behind: the harness's ceiling
            if self.burst and self.published >= self.burst[0]:
                self.speed = self.burst[2]
                self.burst = None
                print(json.dumps({"event": "burst_done"}), flush=True)

    async def run_pings(self) -> None:
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            for probe in self.probes[tick % 60 :: 60]:
                probe.ping()
            tick += 1

    def stats(self) -> dict[str, Any]:
        lat, self.latencies = self.latencies, []
        unacked = sum(len(p.pending) for p in self.probes)
        before_mark = sum(sum(1 for s in p.pending if s <= p.mark) for p in self.probes)
        return {
            "event": "stats", "published": self.published, "pubacked": self.pubacked,
            "unacked": unacked, "unacked_before_mark": before_mark,
            "disconnects": self.disconnects, "stored_acks": self.stored_acks, "resent": self.resent,
            "errors": self.errors[:5],
            "latencies_ms": [round(x * 1000, 1) for x in lat],
        }  # fmt: skip


async def main(spec: dict[str, Any]) -> None:
    fleet = Fleet(spec)
    await fleet.connect()
    print(json.dumps({"event": "connected", "probes": len(fleet.probes)}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = [asyncio.create_task(fleet.run_schedule()), asyncio.create_task(fleet.run_pings())]
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "speed":
            fleet.speed = float(cmd["value"])
        elif cmd["cmd"] == "burst":
            fleet.burst = (fleet.published + int(cmd["results"]), float(cmd["speed"]), fleet.speed)
            fleet.speed = float(cmd["speed"])
        elif cmd["cmd"] == "forget":  # results nobody will StoredAck (the reference's)
            for probe in fleet.probes:
                probe.pending.clear()
                probe.spool.clear()
        elif cmd["cmd"] == "mark":
            for probe in fleet.probes:
                probe.mark = probe.seq
        elif cmd["cmd"] == "stats":
            print(json.dumps(fleet.stats()), flush=True)
        elif cmd["cmd"] == "quit":
            break
    for task in tasks:
        task.cancel()
    for probe in fleet.probes:
        if probe.transport is not None:
            probe.transport.write(b"\xe0\x00")  # DISCONNECT: no Last Will
            probe.transport.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:  # `make bench` runs every bench/*.py: this one is only a worker
        print("a worker of bench_fleet.py: run that instead")
        sys.exit(0)
    asyncio.run(main(json.loads(sys.argv[1])))
