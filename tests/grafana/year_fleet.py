"""A simulated year of a small fleet in InfluxDB, for the row-count and timing tests of the
dashboards: raw points made by the collector's own point builder
(tests/collector/report/rollup_fleet.py: per probe and hour a throughput test per uplink,
latency to two targets, two service checks, health; IPv6 every 6 hours), mobile tests with
their radio context, hourly radio reads, presence, DNS and collector self-metrics, a survey
probe's walks (tests/grafana/survey_points.py: 37,440 points at 5 s), and the
daily rollups folded from the same raw points as the collector's compaction folds them
(``Buckets`` hour by hour, then ``daily_points`` and ``district_points``).

Every probe's series has 8,760 hourly rows a year: a panel that returns raw rows has more
than 1,000 points in a series at a year, whatever the fleet's size."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from probefleet.collector.lineproto import FieldValue, Point
from probefleet.collector.rollups_bucket import Bucket, Buckets
from probefleet.collector.rollups_compact import peak_hours_utc
from probefleet.collector.rollups_daily import HOURS, daily_points, district_points
from probefleet.collector.rollups_spec import HOUR_NS

from tests.collector.report import rollup_fleet as rf
from tests.grafana import survey_points
from tests.grafana.radio_points import OPERATORS, SIGNAL
from tests.harness import InfluxTarget

START = dt.datetime(2025, 1, 1, tzinfo=rf.VN)
DAYS = 365
END = START + dt.timedelta(days=DAYS)
_CHUNK = 20_000


@dataclass(frozen=True)
class Loaded:
    probes: int
    raw_points: int
    rollup_points: int


class _Writer:
    def __init__(self, target: InfluxTarget) -> None:
        self.target, self.chunk, self.n = target, list[str](), 0

    def add(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.chunk.append(line)
            if len(self.chunk) >= _CHUNK:
                self.flush()

    def flush(self) -> None:
        if self.chunk:
            self.target.server.write_lines(self.target.db, self.chunk)
            self.n += len(self.chunk)
            self.chunk = []


def operator_of(probe: str) -> str:
    """The probe's serving network (MCC+MNC), the same in every run."""
    return OPERATORS[sum(map(ord, probe)) % len(OPERATORS)]


def _with_radio(point: Point, rng: random.Random, operator: str) -> Point:
    """A completed mobile test with its start snapshot (the spec's tags and fields)."""
    if point.tag("access") != "mobile" or point.tag("status") != "ok":
        return point
    tech = rng.choice(["lte", "lte", "lte", "nr5g_nsa", "umts"])
    rsrp, snr = SIGNAL[tech]
    tags = dict(point.tags) | {"radio_technology": tech, "radio_operator": operator}
    fields: dict[str, FieldValue] = dict(point.fields)
    fields.update(
        radio_rsrp_dbm=round(rsrp + rng.uniform(-8, 8), 1),
        radio_snr_db=round(snr + rng.uniform(-3, 3), 1),
        radio_changed=False,
    )
    return Point(
        point.measurement, tuple(sorted(tags.items())), tuple(fields.items()), point.time_ns
    )


def _extras(probe: str, tags: dict[str, str], mobile: bool, rng: random.Random) -> Iterator[Point]:
    """Hourly presence, DNS and (for a mobile uplink) radio reads of one probe."""
    place = {k: tags[k] for k in ("probe", "commune", "district", "province") if k in tags}
    start_ns = int(START.timestamp()) * 10**9
    operator = operator_of(probe)
    dns_tags = tags | {"interface": "eth0", "access": "fixed", "status": "ok"}
    for hour in range(DAYS * 24):
        t = start_ns + hour * HOUR_NS + 300 * 10**9
        online = rng.random() > 0.02
        yield Point(
            "presence",
            tuple(sorted(place.items())),
            (
                ("state", "online" if online else "offline"),
                ("online_01", int(online)),
                ("last_seen_age_s", round(rng.uniform(5, 120) if online else 4000.0, 1)),
                ("line_up_01", int(online)),
                ("last_test_ok_01", 1),
                ("spool_depth", 0),
            ),
            t,
        )
        for rrtype in ("A", "AAAA"):
            row = dns_tags | {"resolver": "10.10.0.53", "name": rf.PORTAL, "rrtype": rrtype}
            yield Point(
                "dns",
                tuple(sorted(row.items())),
                (("seq", hour), ("time_ms", round(rng.uniform(2, 60), 1))),
                t + 10**9,
            )
        if mobile:
            tech = rng.choices(["lte", "nr5g_nsa", "umts", "gsm", ""], [70, 15, 8, 3, 4])[0]
            row = tags | {
                "interface": "wwan0", "access": "mobile", "status": "ok",
                "radio_operator": operator, "radio_technology": tech,
            }  # fmt: skip
            fields: dict[str, FieldValue] = {"seq": hour, "registered": bool(tech)}
            if tech:
                rsrp, snr = SIGNAL[tech]
                fields["radio_rsrp_dbm"] = round(rsrp + rng.uniform(-8, 8), 1)
                fields["radio_snr_db"] = round(snr + rng.uniform(-3, 3), 1)
            row = {k: v for k, v in row.items() if v}
            yield Point("radio", tuple(sorted(row.items())), tuple(fields.items()), t + 2 * 10**9)


def _more_fields(point: Point, probe: int, rng: random.Random) -> Point:
    """What the rollup fleet's template leaves out and some panels read: a health summary's
    coordinates (from the inventory) and storage counters."""
    if point.measurement != "health" or point.tag("interface"):
        return point
    fields: dict[str, FieldValue] = dict(point.fields)
    fields.update(
        lat_deg=10.9 + 0.05 * probe,
        lon_deg=107.0 + 0.05 * probe,
        disk_full_01=0,
        spool_held=0,
        dropped_disk_full=0,
        dropped_spool_budget=0,
        dropped_unspoolable=0,
        spool_depth=rng.randrange(0, 3),
        temperature_c=round(rng.uniform(40, 70), 1),
    )
    return Point(point.measurement, point.tags, tuple(fields.items()), point.time_ns)


def _checks(tags: dict[str, str], mobile: bool, rng: random.Random) -> Iterator[Point]:
    """Every 6 hours the IPv6 check rows; hourly a metered interface's data budget."""
    start_ns = int(START.timestamp()) * 10**9
    fixed = tags | {"interface": "eth0", "access": "fixed", "status": "ok"}
    for hour in range(DAYS * 24):
        t = start_ns + hour * HOUR_NS + 400 * 10**9
        if hour % 6 == 0:
            for check in ("global_address", "route", "aaaa", "tcp", "http"):
                row = fixed | {"check": check, "target": rf.PORTAL}
                passed = rng.random() > 0.1
                yield Point(
                    "ipv6",
                    tuple(sorted(row.items())),
                    (
                        ("passed_01", int(passed)),
                        ("rtt_v6_ms", round(rng.uniform(5, 30), 1)),
                        ("rtt_v4_ms", round(rng.uniform(5, 30), 1)),
                    ),
                    t,
                )
        if mobile:
            used = (hour % (30 * 24)) * 10**7
            row = dict(tags) | {"interface": "wwan0"}
            yield Point(
                "health",
                tuple(sorted(row.items())),
                (
                    ("budget_used_bytes", used),
                    ("budget_limit_bytes", 10**10),
                    ("budget_used_pct", 100.0 * used / 10**10),
                ),
                t,
            )


def _collector(rng: random.Random) -> Iterator[Point]:
    start_ns = int(START.timestamp()) * 10**9
    for hour in range(DAYS * 24):
        stored = rng.randrange(100, 200)
        yield Point(
            "collector",
            (("collector", "c1"),),
            (
                ("received", stored),
                ("stored", stored),
                ("rejected", 0),
                ("duplicates", 0),
                ("seqs_lost", 0),
                ("lag_max_s", 1.5),
                ("write_latency_max_ms", 12.0),
                ("queue_depth", 0),
                ("spool_points", 0),
                ("gaps_open", 0),
                ("lag_s", 0.4),
                ("held", 0),
                ("points_rejected", 0),
            ),
            start_ns + hour * HOUR_NS,
        )


# A portable survey probe: a 2-hour walk at 5 s every 14 days, the last on the year's last day.
SURVEY_RUNS = 26
SURVEY_POINTS_PER_RUN = 1440


def _survey(rng: random.Random) -> Iterator[Point]:
    for k in range(SURVEY_RUNS):
        day = START + dt.timedelta(days=DAYS - 1 - 14 * k, hours=9)
        run_id = f"{day:%Y%m%d}-p-survey-1"
        start_ns = int(day.timestamp()) * 10**9
        walk = survey_points.walk(run_id, "p-survey", start_ns, SURVEY_POINTS_PER_RUN, rng=rng)
        yield from (p.point() for p in walk)


def _rollups(points: list[Point]) -> Iterator[Point]:
    """One probe's daily rollup points, as the daily compaction writes them."""
    buckets = Buckets(rf.TARGETS)
    for p in points:
        buckets.add(p)
    first = int(START.timestamp()) * 10**9
    per_day: dict[int, list[Bucket]] = {}
    for b in buckets.values():
        per_day.setdefault((b.hour_ns - first) // (24 * HOUR_NS), []).append(b)
    for d, found in sorted(per_day.items()):
        if not 0 <= d < DAYS:
            continue
        a = START + dt.timedelta(days=d)
        z = a + dt.timedelta(days=1)
        for point in daily_points(found, a, z, peak_hours_utc=peak_hours_utc(a, 19, 23)):
            if point.measurement != HOURS:  # province-wide hours: no panel reads them
                yield point


def load(target: InfluxTarget, probes: int, seed: int = 19) -> Loaded:
    """Write the year of ``probes`` probes (raw and daily rollups) into ``target``."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    enrich = rf.enrichment(probes)
    raw, rolled = _Writer(target), _Writer(target)
    current: list[Point] = []
    probe = ""
    # Every probe's daily points by day: the district rollups sum a day over the probes.
    days: dict[int, list[Point]] = {}

    def finish() -> None:
        if not current:
            return
        for p in _rollups(current):
            days.setdefault(p.time_ns, []).append(p)
            rolled.add([p.line()])
        info = enrich.inventory.probes[probe]
        tags = {"probe": probe, "commune": info.commune, "province": info.province or ""}
        if info.district:
            tags["district"] = info.district
        mobile = "wwan0" in info.interfaces
        raw.add(p.line() for p in _extras(probe, tags, mobile, rng))
        raw.add(p.line() for p in _checks(tags, mobile, rng))

    for result in rf.fleet(enrich, START, DAYS, seed):
        if result.probe != probe:
            finish()
            current, probe = [], result.probe
        operator = operator_of(probe)
        number = int(probe.rsplit("-", 1)[1])
        points = [_more_fields(_with_radio(p, rng, operator), number, rng) for p in result.points]
        current += points
        raw.add(p.line() for p in points)
    finish()
    for day in days.values():
        rolled.add(p.line() for p in district_points(day))
    raw.add(p.line() for p in _collector(rng))
    raw.add(p.line() for p in _survey(rng))
    raw.flush()
    rolled.flush()
    return Loaded(probes, raw.n, rolled.n)
