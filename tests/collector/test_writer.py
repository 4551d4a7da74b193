"""The writer against a real InfluxDB: types, escaping, bisecting 4xx, outages, spool, replay."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from probefleet.collector.config import InfluxSection
from probefleet.collector.deadletter import DeadLetter, DeadLetterStore, list_deadletters
from probefleet.collector.errors import WriteRejected, WriteUnavailable
from probefleet.collector.lineproto import Point
from probefleet.collector.spool import Spool
from probefleet.collector.stats import Stats
from probefleet.collector.writer import InfluxSink, Replayer, Storage, write_isolating

from tests.collector.test_points import EXPECTED, points_of
from tests.harness import InfluxTarget, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def sink_for(target: InfluxTarget, bucket: str | None = None) -> InfluxSink:
    cfg = InfluxSection(url=target.server.url, bucket=bucket or target.db, token="x:y", timeout_s=5)
    return InfluxSink(cfg)


class CountingSink:
    """The real sink, counting calls (to see the bisection happen)."""

    def __init__(self, inner: InfluxSink) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def write(self, lines: Sequence[str]) -> None:
        self.calls.append(len(lines))
        self.inner.write(lines)


@pytest.fixture
def sink(influx_db: InfluxTarget) -> Iterator[InfluxSink]:
    s = sink_for(influx_db)
    yield s
    s.close()


def test_every_golden_point_reads_back_with_its_type(
    influx_db: InfluxTarget, sink: InfluxSink
) -> None:
    points = [p for name in sorted(EXPECTED) for p in points_of(name)]
    sink.write([p.line() for p in points])
    server, db = influx_db
    for measurement in {p.measurement for p in points}:
        keys = {row[0]: row[1] for s in server.query(f'SHOW FIELD KEYS FROM "{measurement}"', db=db)
                for row in s["values"]}  # fmt: skip
        for point in (p for p in points if p.measurement == measurement):
            for key, value in point.fields:
                want = {bool: "boolean", int: "integer", float: "float", str: "string"}[type(value)]
                assert keys[key] == want, (measurement, key)
    # The fixed line's golden (result-throughput-mobile.json is the other ok one).
    query = 'SELECT * FROM "throughput" WHERE "status" = \'ok\' AND "access" = \'fixed\''
    [row] = server.query_points(query, db=db)
    assert row["time"] == 1_762_174_804_250_000_000
    assert (row["download_mbps"], row["meets_download_target"], row["server"]) == (
        148.72,
        0,
        "Đồng Nai DC (VNPT)",
    )


def test_awkward_strings_survive_the_round_trip(influx_db: InfluxTarget, sink: InfluxSink) -> None:
    awkward = 'a "quoted", spaced=value\\ with\nnewline'
    point = Point.build(
        "service", {"probe": "p-1", "service": awkward}, {"error": awkward, "n": 1}, 10**18
    )
    sink.write([point.line()])
    [row] = influx_db.server.query_points('SELECT * FROM "service"', db=influx_db.db)
    # Backslashes and control characters cannot travel in line protocol: replaced, visibly.
    assert row["service"] == 'a "quoted", spaced=value\ufffd with\ufffdnewline'
    assert row["error"] == row["service"]


def test_a_type_conflict_is_isolated_and_the_rest_written(
    influx_db: InfluxTarget, sink: InfluxSink
) -> None:
    server, db = influx_db
    server.write_lines(db, ["latency,probe=old rtt_avg_ms=1.5 1"])  # rtt_avg_ms is a float
    lines = [f"latency,probe=p,n={i} seq={i}i,rtt_avg_ms={i}.5 {10**18 + i}" for i in range(64)]
    lines[37] = f"latency,probe=p,n=37 seq=37i,rtt_avg_ms=37i {10**18 + 37}"  # an integer
    counting = CountingSink(sink)
    refused = write_isolating(counting, lines)
    assert [i for i, _ in refused] == [37]
    assert refused[0][1].status == 400
    assert "field type conflict" in refused[0][1].message
    assert len(counting.calls) <= 2 * 7 + 1  # log2(64) levels, two writes each
    assert (
        server.query('SELECT count("seq") FROM "latency" WHERE "probe" = \'p\'', db=db)[0][
            "values"
        ][0][1]
        == 63
    )


def test_outages_are_unavailable_never_rejected(influx_db: InfluxTarget) -> None:
    missing = sink_for(influx_db, bucket="no_such_db")
    with pytest.raises(WriteUnavailable) as caught:  # 404: a set-up problem, not bad data
        missing.write(["m f=1 1"])
    assert caught.value.status == 404
    sink = sink_for(influx_db)
    with pytest.raises(WriteRejected):
        sink.write(["m f="])
    influx_db.server.kill()
    try:
        with pytest.raises(WriteUnavailable) as caught:
            sink.write(["m f=1 1"])
        assert caught.value.status == 502  # the front answers for a dead influxd
    finally:
        influx_db.server.restart()


def test_spill_to_spool_while_down_then_replay(influx_db: InfluxTarget, tmp_path: Path) -> None:
    server, db = influx_db
    spool = Spool(tmp_path)
    stats = Stats()
    stopping, replay_stop = threading.Event(), threading.Event()
    sink = sink_for(influx_db)
    storage = Storage(sink, spool, stats, spool_after_s=0.5, stopping=stopping)
    lines = [f"dns,probe=p,n={i} seq={i}i {10**18 + i}" for i in range(100)]
    server.kill()
    try:
        assert storage.store(lines[:50], ["t"] * 50) == []  # retried, then spooled
        assert (spool.rows, spool.points) == (1, 50)
        assert stats["write_retries"] >= 2
        # While the spool holds anything, new batches queue behind it, oldest first.
        assert storage.store(lines[50:], ["t"] * 50) == []
        assert (spool.rows, spool.points) == (2, 100)
    finally:
        server.restart()
    # Spooled rows survive a restart of the collector: reopen from disk.
    spool.close()
    spool = Spool(tmp_path)
    assert spool.points == 100
    deadletters = DeadLetterStore(tmp_path, payload_max_bytes=1000, max_rows=100)
    replayer = Replayer(sink, spool, deadletters, stats, max_points=60, stopping=replay_stop)
    replayer.start()
    try:
        eventually(lambda: spool.rows == 0, timeout_s=20, message="spool not replayed")
    finally:
        replay_stop.set()
        replayer.join(10)
    rows = server.query('SELECT count("seq") FROM "dns"', db=db)
    assert rows[0]["values"][0][1] == 100
    assert stats["points_replayed"] == 100


def test_replay_dead_letters_what_influxdb_refuses(influx_db: InfluxTarget, tmp_path: Path) -> None:
    server, db = influx_db
    server.write_lines(db, ["dns,probe=x time_ms=1.5 1"])
    spool = Spool(tmp_path)
    spool.append(
        ["dns,probe=p time_ms=2.5 10", "dns,probe=q time_ms=3i 11"],
        ["probefleet/v1/p/results/dns", "probefleet/v1/q/results/dns"],
    )
    stats, stop = Stats(), threading.Event()
    deadletters = DeadLetterStore(tmp_path, payload_max_bytes=1000, max_rows=100)
    replayer = Replayer(
        sink_for(influx_db), spool, deadletters, stats, max_points=10, stopping=stop
    )
    replayer.start()
    try:
        eventually(lambda: spool.rows == 0, timeout_s=20, message="spool not replayed")
    finally:
        stop.set()
        replayer.join(10)
    assert deadletters.count() == 1
    assert server.query('SELECT count("time_ms") FROM "dns"', db=db)[0]["values"][0][1] == 2


def test_the_dead_letter_store_is_bounded_in_bytes_and_gives_the_space_back(
    tmp_path: Path,
) -> None:
    store = DeadLetterStore(
        tmp_path, payload_max_bytes=65_536, max_rows=1_000_000, max_bytes=2_000_000
    )
    junk = b"x" * 60_000
    letter = DeadLetter(1.0, "probefleet/v1/p/results/latency", "p", "parse", "$", "junk", junk)
    for _ in range(50):  # 50 x 60 kB = 3 MB into a 2 MB store: the oldest go
        store.add([letter] * 2)
    assert store.stored_bytes <= 2_000_000
    kept = store.count()
    assert 25 <= kept < 100
    newest = list_deadletters(tmp_path, limit=1)[0]
    assert newest.id == 100  # the newest stay
    # The file gives the space back once rows go, instead of keeping its high-water mark.
    store.max_bytes = 100_000
    store.add([letter])
    assert store.count() == 1
    store.close()
    size = (tmp_path / "deadletters.sqlite").stat().st_size
    assert size < 1_000_000, size
