"""A probe whose state dir's disk fills up, for real, with a real agent, broker, collector
and InfluxDB.

The state dir is a small tmpfs mounted in a private mount namespace, held by a sleeping
process; `probe-agent run` is started inside it with nsenter (so SQLite, the loss book and
status.json meet a filesystem with no block left), and the test reaches the same files
through ``/proc/<holder>/root``. "Full" means full to the last block and kept so: whatever
frees a block, the filler takes it back at once. Each test prints its figures.

What must hold: every result the runner recorded is stored in InfluxDB exactly once
(seqs 1..N, no gap) or counted as lost, by reason, in counters that survive kill -9 and
restarts on the full disk; the losses are published in health (InfluxDB) and in the
retained status, and `probe-agent status` tells the truth while the disk is full; no
thread dies (the agent runs on and exits 0 at SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from probefleet.agent import losses, statusfile
from probefleet.core import wire

from tests.agent.helpers import AgentProcess, write_agent_config
from tests.collector.helpers import BROKER_CONF, CollectorProcess, write_config
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.netns, pytest.mark.timeout(420)]
FULL_S = 100.0  # the case: the state dir full for 100 s
TOPICS = wire.Topics()


class MountNamespace:
    """A private mount namespace with a tmpfs of ``size_mb`` on ``mountpoint``, alive while
    its holder sleeps. ``prefix`` runs a command inside; ``view`` is a path as seen from
    here (plain file I/O only: SQLite resolves /proc/<pid>/root away, back to this one)."""

    def __init__(self, mountpoint: Path, size_mb: int) -> None:
        self.mountpoint = mountpoint
        self.size_mb = size_mb
        self.holder: subprocess.Popen[str] | None = None

    def __enter__(self) -> MountNamespace:
        if os.geteuid() != 0:
            pytest.skip("a mount namespace with a tmpfs needs root")
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        script = (
            f'mount -t tmpfs -o size={self.size_mb}m,mode=0750 tmpfs "$1" && echo ready '
            "&& exec sleep 3600"
        )
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
             str(self.mountpoint)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            self.holder.wait(timeout=10)
            assert self.holder.stderr is not None
            pytest.skip(f"no private mount namespace here: {self.holder.stderr.read().strip()}")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.holder is not None:
            self.holder.kill()
            self.holder.communicate(timeout=10)  # and closes its pipes

    @property
    def pid(self) -> int:
        assert self.holder is not None
        return self.holder.pid

    @property
    def prefix(self) -> list[str]:
        return ["nsenter", f"--target={self.pid}", "--mount", "--"]

    def view(self, path: Path | None = None) -> Path:
        inner = (path or self.mountpoint).relative_to("/")
        return Path(f"/proc/{self.pid}/root") / inner

    def free_bytes(self) -> int:
        stat = os.statvfs(self.view())
        return stat.f_bavail * stat.f_frsize


class Filler:
    """Keeps the tmpfs full to its last block: whatever frees a block, it takes it back
    within 50 ms. ``pause`` stops that (the disk stays as full as it is)."""

    def __init__(self, ns: MountNamespace) -> None:
        self.path = ns.view() / "filler"
        self.topping = threading.Event()
        self.topping.set()
        self.stop = threading.Event()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._thread = threading.Thread(target=self._top_up, name="filler", daemon=True)
        self._thread.start()

    def _top_up(self) -> None:
        chunk = b"\0" * 4096
        while not self.stop.is_set():
            if self.topping.is_set():
                with contextlib.suppress(OSError):  # ENOSPC: full again
                    while os.write(self._fd, chunk):
                        pass
            self.stop.wait(0.05)

    def pause(self) -> None:
        self.topping.clear()
        time.sleep(0.2)  # a top-up going on ends

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=10)
        os.close(self._fd)
        self.path.unlink()


@contextlib.contextmanager
def kept_full(ns: MountNamespace) -> Iterator[Filler]:
    """The tmpfs full to its last block while inside; the filler is deleted on leaving."""
    filler = Filler(ns)
    try:
        eventually(lambda: ns.free_bytes() == 0, timeout_s=10, message="the tmpfs is not full")
        yield filler
    finally:
        filler.close()


@contextlib.contextmanager
def retained_status(broker: Mosquitto) -> Iterator[list[wire.ProbeStatus]]:
    """Every status message of probe-a the broker hands out, in order."""
    seen: list[wire.ProbeStatus] = []
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.payload:
            seen.append(wire.decode(bytes(msg.payload), wire.ProbeStatus))

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe(TOPICS.channel("probe-a", "status"), qos=1)
    client.loop_start()
    try:
        yield seen
    finally:
        client.loop_stop()
        client.disconnect()


def stored_seqs(target: InfluxTarget) -> list[int]:
    """Every seq in the database (a health result is several points of one seq)."""
    series = target.server.query('SELECT "seq" FROM /.*/', db=target.db)
    return sorted({int(row[1]) for s in series for row in s["values"]})


def last_health(target: InfluxTarget) -> dict[str, Any]:
    """The summary point of the health result with the highest seq."""
    series = target.server.query(
        'SELECT "seq", "spool_dropped", "dropped_disk_full", "dropped_spool_budget", '
        '"dropped_unspoolable", "disk_full_01", "spool_held" FROM "health" '
        "WHERE \"interface\" = ''",
        db=target.db,
    )
    if not series:
        return {}
    columns = series[0]["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in series[0]["values"]]
    return max(rows, key=lambda r: int(r["seq"]))


def recorded(agent_log: str) -> int:
    """Results the runner recorded: each must end stored or counted as lost."""
    return len(re.findall(r" result recorded, measured at ", agent_log))


def status_of(ns: MountNamespace, state: Path) -> dict[str, Any]:
    return statusfile.read(ns.view(state))


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


def agent_config(tmp_path: Path, broker: Mosquitto, **spool: Any) -> Path:
    state = tmp_path / "agent-state"
    return write_agent_config(
        tmp_path, broker, enabled=("latency", "health"),
        options={"health": {"cpu_sample_s": 0.05, "disk_path": str(state)}},
        spool={"retry_s": 1.0, "ack_timeout_s": 10.0, **spool},
    )  # fmt: skip


def drain(
    agent: AgentProcess, tmp_path: Path, broker: Mosquitto, ns: MountNamespace, state: Path
) -> None:
    """Start the stopped agent again, measuring nothing, until its spool is empty."""
    write_agent_config(tmp_path, broker, enabled=(), spool={"retry_s": 1.0,
                       "ack_timeout_s": 10.0})  # fmt: skip
    agent.start(wait_for="MQTT connected")
    eventually(lambda: status_of(ns, state)["spool"]["depth"] == 0, timeout_s=90,
               message="the spool was not emptied by StoredAcks")  # fmt: skip


def test_a_state_dir_full_for_100_s_loses_nothing(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    state = tmp_path / "agent-state"
    log_path = tmp_path / "agent.log"
    collector = CollectorProcess(write_config(tmp_path, broker, influx_db)[0], tmp_path / "c.log")
    with (
        MountNamespace(state, size_mb=24) as ns,
        retained_status(broker) as statuses,
        contextlib.ExitStack() as stack,
    ):
        agent = AgentProcess(agent_config(tmp_path, broker), log_path, prefix=ns.prefix,
                             STANDIN_INTERVAL_S="0.2")  # fmt: skip
        stack.callback(agent.kill)
        stack.callback(collector.kill)
        collector.start()
        agent.start(wait_for="MQTT connected")
        eventually(lambda: len(stored_seqs(influx_db)) >= 50, timeout_s=60, message="no flow")
        with kept_full(ns):
            began = time.monotonic()
            eventually(lambda: status_of(ns, state)["storage"]["state"] == "disk_full",
                       timeout_s=30, message="the agent did not notice the full disk")  # fmt: skip
            eventually(lambda: any(s.storage == "disk_full" for s in statuses), timeout_s=10,
                       message="the retained status did not say disk_full")  # fmt: skip
            held_max = 0
            written: list[float] = []
            while time.monotonic() - began < FULL_S:
                agent.alive()
                doc = status_of(ns, state)  # rewritten in place: current all along
                held_max = max(held_max, doc["spool"]["held_in_memory"])
                written.append(doc["written_at"])
                time.sleep(2)
            full_s = time.monotonic() - began
            doc = status_of(ns, state)
            assert doc["storage"]["state"] == "disk_full"
            assert doc["spool"]["dropped"] == 0
            assert time.time() - doc["written_at"] < 15  # status.json while the disk is full
            text, healthy = statusfile.render(doc)
            assert healthy, text
            assert "DISK FULL" in text
        eventually(lambda: status_of(ns, state)["spool"]["held_in_memory"] == 0, timeout_s=60,
                   message="held results not spooled once the disk had room")  # fmt: skip
        eventually(lambda: status_of(ns, state)["storage"]["state"] == "ok", timeout_s=30,
                   message="storage not ok again")  # fmt: skip
        eventually(lambda: statuses[-1].storage == "ok", timeout_s=15, message="status not ok")
        assert agent.terminate() == 0  # no thread died on the way
        doc = status_of(ns, state)
        given = doc["spool"]["next_seq"] - 1
        produced = recorded(agent.log_since_start())
        drain(agent, tmp_path, broker, ns, state)
        eventually(lambda: stored_seqs(influx_db) == list(range(1, given + 1)), timeout_s=90,
                   message=f"want seqs 1..{given} stored once each")  # fmt: skip
        assert agent.terminate() == 0
        assert collector.terminate() == 0
    print(
        f"full disk {full_s:.0f} s: {produced} results recorded, {given} stored (seqs "
        f"1..{given}, none twice), up to {held_max} held in memory at once, "
        f"{doc['spool']['dropped']} lost; status.json rewritten in place "
        f"{len(set(written))} times while full"
    )
    assert held_max > FULL_S  # ~10 results a second; the disk really refused them
    assert produced == given
    assert doc["spool"]["dropped_by_reason"] == {"disk_full": 0, "spool_budget": 0,
                                                 "unspoolable": 0}  # fmt: skip
    assert len(set(written)) >= FULL_S / 2 / 5 - 2  # every 5 s, read every 2 s


def test_losses_of_a_full_disk_are_counted_published_and_survive_restarts(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    """A memory hold of 10 kB overflows within a second: losses. kill -9 while full, a
    restart on the full disk, SIGTERM while full (the reserve's room takes what memory
    holds), then room again: the counters, published, match what was recorded."""
    state = tmp_path / "agent-state"
    log_path = tmp_path / "agent.log"
    collector = CollectorProcess(write_config(tmp_path, broker, influx_db)[0], tmp_path / "c.log")
    config = agent_config(tmp_path, broker, memory_max_mb=0.01, reserve_mb=1.0)
    produced = 0
    with (
        MountNamespace(state, size_mb=16) as ns,
        retained_status(broker) as statuses,
        contextlib.ExitStack() as stack,
    ):
        agent = AgentProcess(config, log_path, prefix=ns.prefix, STANDIN_INTERVAL_S="0.2")
        stack.callback(agent.kill)
        stack.callback(collector.kill)
        collector.start()
        agent.start(wait_for="MQTT connected")
        eventually(lambda: len(stored_seqs(influx_db)) >= 20, timeout_s=60, message="no flow")
        assert (ns.view(state) / "reserve.bin").stat().st_size == 1_000_000
        with kept_full(ns) as filler:
            eventually(lambda: losses.read(ns.view(state))["disk_full"] >= 20,
                       timeout_s=30, message="no loss counted")  # fmt: skip
            agent.kill()  # kill -9 with results held in memory
            produced += recorded(agent.log_since_start())
            book = losses.read(ns.view(state))
            assert book["held"] > 0, "the kill found nothing held: it tests nothing"
            after_kill = book["disk_full"] + book["held"]  # what the next start counts
            agent.start(wait_for="scheduled ")  # on the full disk
            eventually(lambda: status_of(ns, state)["spool"]["dropped_by_reason"]["disk_full"]
                       > after_kill, timeout_s=30, message="no new loss")  # fmt: skip
            assert status_of(ns, state)["storage"]["state"] == "disk_full"
            assert status_of(ns, state)["spool"]["held_in_memory"] > 0
            filler.pause()  # the reserve's room must not go to the filler
            assert ns.free_bytes() == 0
            assert agent.terminate() == 0  # SIGTERM on the full disk
            produced += recorded(agent.log_since_start())
            stop_log = agent.log_since_start()
            book = losses.read(ns.view(state))
            assert book["held"] == 0  # a clean stop: spooled or counted
            stopped = book["disk_full"]
        assert "disk reserve" in stop_log
        assert "deleted" in stop_log
        spooled_at_stop = re.findall(r"(\d+) held result\(s\) spooled; 0 still held", stop_log)
        agent.start(wait_for="MQTT connected")
        eventually(lambda: statuses and statuses[-1].storage == "ok", timeout_s=30,
                   message="no status since the restart")  # fmt: skip
        expected = stopped
        assert statuses[-1].dropped == expected
        eventually(lambda: last_health(influx_db).get("dropped_disk_full") == expected,
                   timeout_s=60, message=f"health does not say {expected} lost")  # fmt: skip
        health = last_health(influx_db)
        doc = status_of(ns, state)
        assert doc["spool"]["dropped_by_reason"] == {"disk_full": expected, "spool_budget": 0,
                                                     "unspoolable": 0}  # fmt: skip
        assert doc["storage"]["state"] == "ok"
        assert (ns.view(state) / "reserve.bin").exists()  # made again once there was room
        assert agent.terminate() == 0
        produced += recorded(agent.log_since_start())
        given = status_of(ns, state)["spool"]["next_seq"] - 1
        drain(agent, tmp_path, broker, ns, state)
        eventually(lambda: stored_seqs(influx_db) == list(range(1, given + 1)), timeout_s=90,
                   message=f"want seqs 1..{given} stored once each")  # fmt: skip
        assert agent.terminate() == 0
        assert collector.terminate() == 0
    print(
        f"{produced} results recorded, {given} stored (seqs 1..{given}, none twice), "
        f"{expected} lost (disk_full): {after_kill} counted by the kill -9 "
        f"(the held ones included), {stopped} after the restart and SIGTERM on the full disk, "
        f"{spooled_at_stop} spooled into the reserve at SIGTERM; health says "
        f"{health['dropped_disk_full']} (spool_dropped {health['spool_dropped']}), the "
        f"retained status {statuses[-1].dropped}"
    )
    assert health["spool_dropped"] == expected
    assert spooled_at_stop, "nothing held at SIGTERM went into the reserve's room"
    assert int(spooled_at_stop[-1]) > 0
    # kill -9 has a window of one result: recorded, and killed before it was held.
    assert 0 <= produced - (given + expected) <= 1
