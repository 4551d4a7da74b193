"""The generated hostile corpus against the real collector process, on real Mosquitto and
InfluxDB: each case has the outcome the contract gives it (stored exactly, quarantined, or
dead-lettered with a reason), the collector survives all of it, and afterwards a good result
from every probe is still stored and acknowledged. The JSON Schema agrees with the decoder
on every case it can judge."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from probefleet.collector.errors import Rejected
from probefleet.collector.inventory import Enrichment
from probefleet.collector.points import parse, points_from
from probefleet.core import wire

from tests.collector.helpers import CollectorProcess, StandInProbe, count, result, write_config
from tests.harness import InfluxTarget, MosquittoFactory, eventually
from tests.hostile.corpus import TOPICS, Case, ecma_validator, field_cases, flood, message_cases

ROOT = Path(__file__).resolve().parents[2]
PROBE = "hostile-a"
JUNK_FLOOD = 10_000


def outcome(case: Case) -> tuple[str, Counter[str]]:
    """What the contract says happens to ``case``: "stored" (with its points per
    measurement), "quarantined" (an unsynchronised clock: stored once re-based, which
    happens here because synchronised results of the same boot arrive too) or
    "rejected"."""
    try:
        parsed = parse(case.topic, case.payload, TOPICS)
        points = points_from(parsed.result, parsed.probe, Enrichment())
    except Rejected:
        return "rejected", Counter()
    verdict = "stored" if parsed.result.clock.synced else "quarantined"
    return verdict, Counter(p.measurement for p in points)


@pytest.mark.slow  # 2,000 cases through jsonschema: ~6 s
def test_the_schema_accepts_exactly_what_the_decoder_accepts() -> None:
    """Left out: duplicate keys (JSON parsers differ on which copy wins; RFC 8259 leaves it
    open) and payloads over the size limit (a schema cannot say it)."""
    validator = ecma_validator("result")
    judged, disagree = 0, []
    for case in field_cases(PROBE):
        if case.category == "duplicate keys" or len(case.payload) > wire.MAX_PAYLOAD_BYTES:
            continue
        try:
            wire.decode_result(case.payload)
            decoded = True
        except wire.WireError:
            decoded = False
        try:
            valid = validator.is_valid(json.loads(case.payload))
        except ValueError:  # not JSON, not UTF-8
            valid = False
        judged += 1
        if decoded != valid:
            disagree.append((case.name, decoded, valid))
    assert judged > 1000
    assert disagree == []


@pytest.mark.integration
def test_the_corpus_against_the_real_collector(
    tmp_path: Path, mosquitto_factory: MosquittoFactory, influx_db: InfluxTarget
) -> None:
    # The central site's queue (deploy/central/mosquitto/mosquitto.conf): with Mosquitto's
    # default of 1,000, the broker itself drops a burst meant for the collector.
    mosquitto = mosquitto_factory(extra_conf=["max_queued_messages 1000000"])
    cases = field_cases(PROBE) + message_cases(PROBE)
    expected = [outcome(c) for c in cases]
    verdicts = Counter(v for v, _ in expected)
    points: Counter[str] = Counter()
    for _, per_measurement in expected:
        points.update(per_measurement)
    by_category: dict[str, Counter[str]] = {}
    for case, (verdict, _) in zip(cases, expected, strict=True):
        by_category.setdefault(case.category, Counter())[verdict] += 1
    print("\nhostile corpus:", json.dumps({k: dict(v) for k, v in sorted(by_category.items())}))
    config, _cfg = write_config(tmp_path, mosquitto, influx_db)
    service = CollectorProcess(config, tmp_path / "collector.log").start()
    attacker = StandInProbe(mosquitto, PROBE).start()
    good = StandInProbe(mosquitto, "good-b").start()
    try:
        for case in [*cases, *flood(PROBE, JUNK_FLOOD)]:
            attacker.publish_raw(case.topic, case.payload)
        letters = tmp_path / "state" / "deadletters.sqlite"
        want_letters = verdicts["rejected"] + JUNK_FLOOD

        def dead_letters() -> int:
            with sqlite3.connect(f"file:{letters}?mode=ro", uri=True) as conn:
                return int(conn.execute("SELECT count(*) FROM deadletters").fetchone()[0])

        eventually(lambda: dead_letters() == want_letters, timeout_s=120, interval_s=0.5,
                   message=lambda: f"dead letters: {dead_letters()} of {want_letters}")  # fmt: skip

        def stored(measurement: str) -> int:
            return count(influx_db, measurement, f"probe = '{PROBE}'")

        for measurement, n in points.items():

            def arrived(m: str = measurement, n: int = n) -> bool:
                return stored(m) == n

            def missing(m: str = measurement, n: int = n) -> str:
                return f"{m}: {stored(m)} points, not {n}"

            eventually(arrived, timeout_s=60, message=missing)
        # ... and nothing else: no measurement holds a point the contract did not give.
        for measurement in ("latency", "dns", "throughput", "ookla", "ipv6", "service", "health"):
            assert count(influx_db, measurement, f"probe = '{PROBE}'") == points[measurement]
        # After all of it, a good result from every probe is stored and acknowledged.
        attacker.publish(result("latency", probe=PROBE, seq=990_000))
        good.publish(result("latency", probe="good-b", seq=1))

        def acknowledged(probe: StandInProbe, seq: int) -> bool:
            return any(
                a.stored_through_seq >= seq or any(f <= seq <= last for f, last in a.also_stored)
                for a in probe.acks
            )

        eventually(lambda: acknowledged(attacker, 990_000) and acknowledged(good, 1),
                   timeout_s=30, message="good results not acknowledged")  # fmt: skip
        assert count(influx_db, "latency", "probe = 'good-b'") == 2
        assert service.proc is not None
        assert service.proc.poll() is None, "the collector died"
        assert "Traceback" not in service.log_since_start()
        assert service.terminate() == 0
    finally:
        attacker.stop()
        good.stop()
        service.kill()
