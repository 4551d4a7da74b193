"""Scale-out: two `probe-collector run` processes share one stream ($share) — N results from
several probes give exactly N points, none doubled, even with one collector killed -9
mid-run and restarted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collector.helpers import (
    BROKER_CONF,
    StandInProbe,
    count,
    result,
    shared_collector,
    stopped_count,
)
from tests.harness import InfluxTarget, Mosquitto, MosquittoFactory, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PROBES = ["probe-a", "probe-b", "probe-c"]
PER_PROBE = 200


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(extra_conf=BROKER_CONF)


def _docs(probe: str, first: int, last: int) -> list[dict[str, object]]:
    return [
        result("latency" if s % 2 else "dns", probe=probe, seq=s) for s in range(first, last + 1)
    ]


def test_two_collectors_share_the_stream_without_loss_or_doubles(
    tmp_path: Path, broker: Mosquitto, influx_db: InfluxTarget
) -> None:
    a = shared_collector(tmp_path, "a", broker, influx_db)
    b = shared_collector(tmp_path, "b", broker, influx_db)
    probes = [StandInProbe(broker, p).start() for p in PROBES]
    try:
        a.start()
        b.start()
        half = PER_PROBE // 2
        # Publish without waiting, so the kill lands while the first half is still flowing
        # (a loaded machine could otherwise store all of it before the kill).
        sent = [(p, p.publish_all(_docs(p.probe, 1, half))) for p in probes]
        eventually(lambda: count(influx_db, "latency") > 0, interval_s=0.002, message="nothing yet")
        a.kill()  # mid-run: its share of the stream now waits in its session
        stored = count(influx_db, "latency") + count(influx_db, "dns")
        assert stored < 5 * half // 2 * len(PROBES), "the kill came too late to test anything"
        for p, mids in sent:
            p.wait_pubacks(mids)
        for p in probes:
            p.wait_pubacks(p.publish_all(_docs(p.probe, half + 1, PER_PROBE)))
        a.start()  # same client id: its queue and its un-acknowledged messages come back
        odd = (PER_PROBE + 1) // 2
        want = (2 * odd * len(PROBES), 3 * (PER_PROBE - odd) * len(PROBES))
        eventually(
            lambda: (count(influx_db, "latency"), count(influx_db, "dns")) == want,
            timeout_s=90,
            message=f"want {want} latency and dns points",
        )
        for p in probes:
            n = PER_PROBE // 2
            got = (count(influx_db, "latency", f"probe = '{p.probe}'"),
                   count(influx_db, "dns", f"probe = '{p.probe}'"))  # fmt: skip
            assert got == (2 * n, 3 * n), p.probe
        assert a.terminate() == 0
        assert b.terminate() == 0
    finally:
        for p in probes:
            p.stop()
        a.kill()
        b.kill()
    # Both took part (the broker shared the stream), and no more than the total came twice.
    log_a, log_b = (
        (tmp_path / "a/collector.log").read_text(),
        (tmp_path / "b/collector.log").read_text(),
    )
    assert stopped_count(log_a, "received") > 0
    assert stopped_count(log_b, "received") > 0
    # The others' seqs are gaps here, never losses (the summary lists non-zero counters).
    assert "seqs_lost=" not in log_a + log_b
