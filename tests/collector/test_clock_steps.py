"""Clock steps against the real collector, Mosquitto and InfluxDB: every result is stored at
its true time within 1 s — a probe whose clock jumps 2 h back while it still says "synced",
and a throughput run during which NTP steps a stale clock forward (as an agent before the
one-reading fix reported it: measured_at from before the step, "synced" from after)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests.collector.helpers import (
    BROKER_CONF,
    CollectorProcess,
    StandInProbe,
    iso,
    result,
    write_config,
)
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# Recent enough to be inside the collector's sanity window, in the past of its clock.
TRUE_START = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
BOOT_UPTIME_S = 1000.0  # the boot began 1000 s before the first result


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


def _at(kind: str, seq: int, true: dt.datetime, shown: dt.datetime, **kw: Any) -> dict[str, Any]:
    """A result measured at ``true`` whose probe clock shows ``shown``."""
    doc = result(kind, probe="probe-c", seq=seq, measured_at=shown,
                 uptime_s=BOOT_UPTIME_S + (true - TRUE_START).total_seconds(), **kw)  # fmt: skip
    doc["sent_at"] = iso(shown + dt.timedelta(seconds=kw.pop("run_s", 1)))
    return doc


def stored_times(target: InfluxTarget, measurement: str) -> dict[int, dt.datetime]:
    series = target.server.query(f'SELECT "seq" FROM "{measurement}"', db=target.db)  # noqa: S608
    out = {}
    for s in series:
        for when, seq in s["values"]:
            out[int(seq)] = dt.datetime.fromtimestamp(int(when) / 1e9, dt.UTC)  # epoch ns
    return out


def test_every_result_is_stored_at_its_true_time_across_clock_steps(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    config, _ = write_config(tmp_path, broker, influx_db)
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    probe = StandInProbe(broker, "probe-c").start()
    truth: dict[int, dt.datetime] = {}
    docs = []
    for seq in range(1, 31):
        true = TRUE_START + dt.timedelta(minutes=seq)
        truth[seq] = true
        # From seq 11 to 20 the clock shows 2 h less, still "synced".
        shown = true - dt.timedelta(hours=2) if 11 <= seq <= 20 else true
        docs.append(_at("latency", seq, true, shown))
    # A throughput run at minute 31 that began on a stale clock (3 days behind) and was
    # built after NTP set it: measured_at 3 days early, sent_at right, "synced" (an agent
    # before the one-reading fix). The boot's start, known from seq 1, gives it away.
    true = TRUE_START + dt.timedelta(minutes=31)
    truth[31] = true
    stale = _at("throughput", 31, true, true - dt.timedelta(days=3))
    stale["sent_at"] = iso(true + dt.timedelta(seconds=30))
    docs.append(stale)
    try:
        probe.wait_pubacks(probe.publish_all(docs))
        eventually(
            lambda: (
                len(stored_times(influx_db, "latency")) == 30
                and len(stored_times(influx_db, "throughput")) >= 1
            ),
            timeout_s=30,
            message="not all stored",
        )
    finally:
        probe.stop()
        collector.terminate()
    stored = {**stored_times(influx_db, "latency"), **stored_times(influx_db, "throughput")}
    off = {seq: abs((stored[seq] - truth[seq]).total_seconds()) for seq in truth}
    print("worst offset (s):", max(off.values()), "stepped results:", 11)
    assert {seq: o for seq, o in off.items() if o > 1.0} == {}
    assert "clock_steps=11" in collector.log_since_start()  # 10 stepped back, 1 stale
