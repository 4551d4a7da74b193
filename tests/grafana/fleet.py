"""A small province for the dashboard tests: four probes' results, built by the agent's own
envelope code (agent/results.py), published through a real Mosquitto into the real
collector, which writes them to the real InfluxDB. The published numbers are kept, so tests
compare what a panel shows with a computation made directly from them.

The collector runs with self-metrics every second (``collector`` and ``presence`` points)
and, given an alerts file, its alert engine: the alerts it fired are kept too, so tests
compare the Grafana alert rules' verdicts with the collector's own. Each probe's results are
published oldest first, as an agent sends them (the engine ignores values older than the
newest it has), and the silent probe ends with an "offline" status (its Last Will). The
mobile probes' radio reads (:func:`radio`) are written directly, with the radio spec's
names."""

from __future__ import annotations

import copy
import datetime as dt
import json
import statistics
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from probefleet import kinds
from probefleet.agent import results
from probefleet.collector.queries import quote_string
from probefleet.collector.service import Service, load_enrichment
from probefleet.core import wire
from probefleet.kinds.base import Link
from probefleet.kinds.errors import MeasurementError

from tests.collector.helpers import (
    BROKER_CONF,
    GOLDEN,
    StandInProbe,
    status_payload,
    write_config,
)
from tests.grafana import radio_points, survey_points
from tests.harness import InfluxTarget, Mosquitto, eventually

INVENTORY = """
[probes.p-tanphu]
commune = "Tân Phú"
district = "Định Quán"
province = "Đồng Nai"
lat = 11.2694
lon = 107.432
[probes.p-tanphu.interfaces.eth0]
operator = "VNPT"
access = "fixed"

[probes.p-bienhoa]
commune = "Biên Hòa"
district = "Biên Hòa"
province = "Đồng Nai"
lat = 10.9574
lon = 106.8427
[probes.p-bienhoa.interfaces.eth0]
operator = "FPT"
access = "fixed"

[probes.p-xuanloc]
commune = "Xuân Lộc"
province = "Đồng Nai"
lat = 10.93
lon = 107.24
[probes.p-xuanloc.interfaces.wwan0]
operator = "Viettel"
access = "mobile"

[probes.p-longkhanh]
commune = "Long Khánh"
district = "Long Khánh"
province = "Đồng Nai"
lat = 10.94
lon = 107.25
[probes.p-longkhanh.interfaces.eth0]
operator = "VNPT"
access = "fixed"
[probes.p-longkhanh.interfaces.wwan0]
operator = "MobiFone"
access = "mobile"
"""

COMMUNE = {
    "p-tanphu": "Tân Phú",
    "p-bienhoa": "Biên Hòa",
    "p-xuanloc": "Xuân Lộc",
    "p-longkhanh": "Long Khánh",
}
LOCATION = {
    "p-tanphu": (11.2694, 107.432),
    "p-bienhoa": (10.9574, 106.8427),
    "p-xuanloc": (10.93, 107.24),
    "p-longkhanh": (10.94, 107.25),
}
# (probe, interface, access) -> the download of each completed test, Mbit/s (odd counts:
# no doubt about the median). Chosen around the targets: 150 fixed, 60 mobile.
DOWNLOADS: dict[tuple[str, str, str], list[float]] = {
    ("p-tanphu", "eth0", "fixed"): [160.0, 155.0, 140.0, 170.0, 152.0],  # median 155: meets
    ("p-bienhoa", "eth0", "fixed"): [90.0, 120.0, 149.9],  # median 120: below
    ("p-xuanloc", "wwan0", "mobile"): [61.0, 59.0, 75.0, 40.0, 80.0],  # median 61: meets
    ("p-longkhanh", "eth0", "fixed"): [150.0, 151.0, 149.0],  # median 150: exactly at target
    ("p-longkhanh", "wwan0", "mobile"): [30.0, 35.0, 70.0],  # median 35: below
}
# Probes whose IPv6 works (the others are capable but broken).
IPV6_WORKS = {
    "p-tanphu": [True, True],
    "p-bienhoa": [False, False],
    "p-xuanloc": [True, False],
    "p-longkhanh": [True, True],
}
SILENT = "p-longkhanh"  # its last health report is 40 minutes old: offline
ALL_PROBES = tuple(COMMUNE)


def _data(kind: str, **changes: Any) -> Any:
    doc: dict[str, Any] = json.loads((GOLDEN / f"result-{kind}.json").read_text())["data"]
    doc = copy.deepcopy(doc)
    doc.update(changes)
    return doc


def _outcome(kind: str, doc: dict[str, Any]) -> msgspec.Struct:
    """The measurement's typed outcome, as the measurement module would return it."""
    envelope = kinds.result_types()[kind]
    data_type = msgspec.structs.fields(envelope)
    spec = next(f for f in data_type if f.name == "data")
    outcome: msgspec.Struct = msgspec.convert(doc, spec.type.__args__[0], strict=True)
    return outcome


@dataclass
class Published:
    """What was sent, by probe, for the tests' own computations."""

    results: dict[str, list[wire.Result]] = field(default_factory=dict)
    last_health: dict[str, dt.datetime] = field(default_factory=dict)
    # (rule, the alert's labels) of every alert the collector's engine had firing at the end.
    firing: set[tuple[str, frozenset[tuple[str, str]]]] = field(default_factory=set)

    def add(self, result: wire.Result) -> None:
        self.results.setdefault(result.probe_id, []).append(result)
        if wire.kind_of(result) == "health":
            prev = self.last_health.get(result.probe_id)
            if prev is None or result.measured_at > prev:
                self.last_health[result.probe_id] = result.measured_at


class Builder:
    """Per-probe identity (boot, seq) and agent-built envelopes."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.seq: dict[str, int] = {}
        self.boot = {p: str(uuid.uuid4()) for p in ALL_PROBES}
        self.published = Published()

    def build(
        self,
        probe: str,
        kind: str,
        ago: dt.timedelta,
        outcome: Any,
        link: Link,
        *,
        skipped: bool = False,
    ) -> wire.Result:
        self.seq[probe] = self.seq.get(probe, 0) + 1
        measured = self.now - ago
        result = results.build(
            kind=kind,
            outcome=outcome,
            probe_id=probe,
            boot_id=self.boot[probe],
            seq=self.seq[probe],
            measured_at=measured,
            clock=wire.Clock(
                synced=True, uptime_s=86_400.0 - ago.total_seconds(), since_sync_s=60.0
            ),
            link=link,
            skipped=skipped,
        )
        assert result.status == (
            "skipped" if skipped else "failed" if isinstance(outcome, MeasurementError) else "ok"
        ), result
        self.published.add(result)
        return result


class _Later:
    """Build calls collected, then made oldest first (seqs follow measurement time)."""

    def __init__(self, builder: Builder) -> None:
        self.builder = builder
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def build(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))

    def run(self) -> Builder:
        for args, kwargs in sorted(self.calls, key=lambda c: -c[0][2].total_seconds()):
            self.builder.build(*args, **kwargs)
        return self.builder


def province(now: dt.datetime) -> Builder:
    """Every result of the small province, measured over the last five hours."""
    b = _Later(Builder(now))
    minutes = dt.timedelta(minutes=1)
    for (probe, iface, access), values in DOWNLOADS.items():
        link = Link(interface=iface, access=access)  # type: ignore[arg-type]
        for i, mbps in enumerate(values):
            doc = _data("throughput", download_mbps=mbps, upload_mbps=mbps / 2)
            b.build(probe, "throughput", (60 + 50 * i) * minutes, _outcome("throughput", doc), link)
        # A failed and a skipped run: stored, and kept out of every speed figure.
        b.build(probe, "throughput", 30 * minutes, MeasurementError("all servers failed"), link)
        busy = MeasurementError("line busy", detail={"cross_traffic_bytes_per_s": 9e5})
        b.build(probe, "throughput", 31 * minutes, busy, link, skipped=True)
    for probe in ALL_PROBES:
        iface, access = ("wwan0", "mobile") if probe == "p-xuanloc" else ("eth0", "fixed")
        link = Link(interface=iface, access=access)  # type: ignore[arg-type]
        for i, works in enumerate(IPV6_WORKS[probe]):
            doc = _data("ipv6", works=works)
            b.build(probe, "ipv6", (100 + 60 * i) * minutes, _outcome("ipv6", doc), link)
        for i in range(3):
            b.build(
                probe,
                "latency",
                (20 + 40 * i) * minutes,
                _outcome("latency", _data("latency")),
                link,
            )
            b.build(probe, "dns", (25 + 40 * i) * minutes, _outcome("dns", _data("dns")), link)
            b.build(
                probe,
                "service",
                (27 + 40 * i) * minutes,
                _outcome("service", _data("service")),
                link,
            )
        # Health: every 20 minutes for 3 hours, the latest a few seconds ago — except the
        # silent probe, which stopped 40 minutes ago.
        newest = 40 * minutes if probe == SILENT else dt.timedelta(seconds=5)
        for i in range(10):
            ago = newest + i * 20 * minutes
            doc = _data("health", temperature_c=50.0 + i, spool_depth=i)
            b.build(probe, "health", ago, _outcome("health", doc), Link())
    return b.run()


def medians() -> dict[tuple[str, str], float]:
    """(commune, access) -> median download, computed here from the published values."""
    out: dict[tuple[str, str], list[float]] = {}
    for (probe, _iface, access), values in DOWNLOADS.items():
        out.setdefault((COMMUNE[probe], access), []).extend(values)
    return {k: statistics.median(v) for k, v in out.items()}


def shares(targets: dict[str, float]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], list[float]] = {}
    for (probe, _iface, access), values in DOWNLOADS.items():
        out.setdefault((COMMUNE[probe], access), []).extend(values)
    return {k: sum(v >= targets[k[1]] for v in vs) / len(vs) for k, vs in out.items()}


def fill(
    workdir: Path, target: InfluxTarget, now: dt.datetime, alerts: Path | None = None
) -> Published:
    """Start a broker and the collector, publish the province, wait until every result is
    stored (StoredAck from the collector), the silent probe's offline status is in the
    presence points (and, with ``alerts``, its offline alert fired), stop both. Returns what
    was published and the alerts firing."""
    broker = Mosquitto(workdir / "broker", extra_conf=BROKER_CONF).start()
    try:
        files = {"alerts": str(alerts)} if alerts is not None else {}
        _path, cfg = write_config(
            workdir, broker, target, inventory=INVENTORY, metrics={"interval_s": 1.0},
            files=files,
        )  # fmt: skip
        service = Service(cfg, load_enrichment(cfg))
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(service.run()), daemon=True)
        thread.start()
        try:
            assert service.link.wait_subscribed(10), "collector did not subscribe"
            builder = province(now)
            for probe, sent in builder.published.results.items():
                stand_in = StandInProbe(broker, probe).start()
                try:
                    for result in sent:
                        stand_in.publish_raw(
                            wire.Topics().result(probe, wire.kind_of(result)), wire.encode(result)
                        )
                    count = len(sent)

                    def all_stored(s: StandInProbe = stand_in, n: int = count) -> bool:
                        return s.stored_through() == n

                    eventually(
                        all_stored,
                        timeout_s=60,
                        message=f"{probe}: not all stored",
                    )
                finally:
                    stand_in.stop()
            assert service.stats["rejected"] == 0, service.stats
            _say_offline(broker, SILENT)
            eventually(
                lambda: _latest_online(target, SILENT) == 0,
                timeout_s=30,
                message=f"{SILENT}: no offline presence point",
            )
            engine = service.alerting
            if alerts is not None:
                assert engine is not None
                eventually(
                    lambda: any(a.rule == "probe_offline" for a in engine.active()),
                    timeout_s=30,
                    message="probe_offline did not fire",
                )
                builder.published.firing = {
                    (a.rule, frozenset(a.labels.items())) for a in engine.active()
                }
        finally:
            service.request_stop()
            thread.join(30)
        assert codes == [0]
    finally:
        broker.stop()
    return builder.published


def _say_offline(broker: Mosquitto, probe: str) -> None:
    """The retained "offline" status the broker publishes for a probe's Last Will."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"will-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv5,
    )
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        payload = status_payload(probe, "offline", at=dt.datetime.now(dt.UTC), reason="test")
        client.publish(wire.Topics().channel(probe, "status"), payload, qos=1, retain=True
                       ).wait_for_publish(10)  # fmt: skip
    finally:
        client.disconnect()
        client.loop_stop()


def _latest_online(target: InfluxTarget, probe: str) -> int | None:
    where = f'"probe" = {quote_string(probe)}'
    found = target.server.query_points(
        f'SELECT last("online_01") AS "online_01" FROM "presence" WHERE {where}',  # noqa: S608
        db=target.db,
    )
    return found[0]["online_01"] if found else None


def walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)


def rollups(target: InfluxTarget, now: dt.datetime) -> int:
    """The rollups of what the collector wrote (the live feeder's figures: ``rollup
    rebuild`` recomputes the same), for the Year board's panels. Returns the lines."""
    from zoneinfo import ZoneInfo

    from probefleet.collector.inventory import load_targets
    from probefleet.collector.report.fetch import HttpInfluxQL
    from probefleet.collector.rollups_compact import local_day, peak_hours_utc
    from probefleet.collector.rollups_rebuild import rebuild_day

    from tests.collector.helpers import ROOT

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    client = HttpInfluxQL(target.server.v1_url, database=target.db)
    targets = load_targets(ROOT / "config" / "targets.sample.toml")
    start = local_day((now - dt.timedelta(days=3)).timestamp(), zone)[0]
    lines: list[str] = []
    while start < now + dt.timedelta(days=1):
        end = local_day(start.timestamp(), zone)[1]
        lines += rebuild_day(
            client, start, end, targets, peak_hours_utc=peak_hours_utc(start, 19, 23)
        )
        start = end
    target.server.write_lines(target.db, lines)
    return len(lines)


# The mobile interfaces' serving networks (MCC+MNC) in the radio reads.
RADIO_OPERATORS = {"p-xuanloc": "45204", "p-longkhanh": "45201"}


def radio(target: InfluxTarget, now: dt.datetime) -> radio_points.Reads:
    """Radio reads (the ``radio`` kind, the spec's names) of the mobile probes every 10
    minutes over the last 5 hours, written directly: the Radio board's queries have data."""
    import random

    reads = radio_points.Reads()
    rng = random.Random(21)  # noqa: S311 - synthetic data
    start = int((now - dt.timedelta(hours=5)).timestamp()) * 10**9
    lines: list[str] = []
    for probe, code in RADIO_OPERATORS.items():
        place = radio_points.Probe(
            probe, COMMUNE[probe], _DISTRICT.get(probe, ""), _ISP[probe], code
        )
        lines += radio_points.radio_reads(place, start, 30, 600, rng=rng, reads=reads, last="lte")
    target.server.write_lines(target.db, lines)
    return reads


_DISTRICT = {"p-longkhanh": "Long Khánh"}  # p-xuanloc has no district in the inventory
_ISP = {"p-xuanloc": "Viettel", "p-longkhanh": "MobiFone"}


def survey_runs(now: dt.datetime) -> dict[str, str]:
    """run_id -> probe of the survey walks :func:`survey` writes."""
    return {f"{now:%Y%m%d}-{probe}-1": probe for probe in RADIO_OPERATORS}


def survey(target: InfluxTarget, now: dt.datetime) -> list[survey_points.SurveyPoint]:
    """A survey walk (the ``survey`` kind, the spec's names) of each mobile probe over the
    last 4 hours, a point every 30 s through the sample hamlets: the Survey board's queries
    have data."""
    import random

    rng = random.Random(22)  # noqa: S311 - synthetic data
    start = int((now - dt.timedelta(hours=4)).timestamp()) * 10**9
    points: list[survey_points.SurveyPoint] = []
    for run_id, probe in survey_runs(now).items():
        code = RADIO_OPERATORS[probe]
        points += survey_points.walk(run_id, probe, start, 400, rng=rng, every_s=30, operator=code)
    target.server.write_lines(target.db, [p.point().line() for p in points])
    return points
