"""Monthly rollups: the sum of a month's days (pure), and — against a real InfluxDB, fed by
the live feeder and compacted by the real Compactor, late results included — report figures
from the monthly and daily rollups equal to those from raw points within the stated bounds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from probefleet.collector import rollups_hist as hist
from probefleet.collector.report import fetch, gather
from probefleet.collector.report.model import Report
from probefleet.collector.report.rollup_gather import RollupPlan
from probefleet.collector.report.run import latency_targets_known
from probefleet.collector.rollups_monthly import (
    TARGET_MAX,
    MonthSum,
    local_month,
    month_points,
    whole_months,
)

from tests.collector.report import rollup_fleet as rf
from tests.collector.test_rollups import SETTINGS, _compare
from tests.harness import InfluxDB, eventually

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

# -- pure ------------------------------------------------------------------------------------


def test_a_months_sum_adds_counts_and_bins_and_keeps_extremes_and_targets() -> None:
    a: dict[str, object] = {"n": 3, "download_mbps_n": 2, "download_mbps_sum": 250.0,
                            "download_mbps_min": 100.0, "download_mbps_max": 150.0,
                            "download_mbps_hist": "400:1 410:1", "first_hour_s": 7200,
                            "hours_seen": 20, "download_target_mbps": 150.0, "time": 1}  # fmt: skip
    b: dict[str, object] = {"n": 1, "download_mbps_n": 1, "download_mbps_sum": 90.0,
                            "download_mbps_min": 90.0, "download_mbps_max": 90.0,
                            "download_mbps_hist": "396:1 400:1", "first_hour_s": 3600,
                            "hours_seen": 24, "download_target_mbps": 100.0,
                            "upload_mbps_n": None}  # fmt: skip
    month = MonthSum()
    month.add(a)
    month.add(b)
    f = month.fields()
    assert f["n"] == 4
    assert isinstance(f["n"], int)
    assert f["download_mbps_sum"] == 340.0
    assert isinstance(f["download_mbps_sum"], float)
    assert (f["download_mbps_min"], f["download_mbps_max"]) == (90.0, 150.0)
    assert hist.decode(str(f["download_mbps_hist"])) == {396: 1, 400: 2, 410: 1}
    assert f["first_hour_s"] == 3600  # the earliest, not a sum
    assert f["hours_seen"] == 44
    # Two targets in the month: the lowest and the highest, so the report counts bands from
    # the bins instead of trusting band counts made with another target.
    assert (f["download_target_mbps"], f[TARGET_MAX]) == (100.0, 150.0)
    assert "time" not in f
    same = MonthSum()
    same.add(a)
    assert TARGET_MAX not in same.fields()


def test_month_points_name_and_time() -> None:
    tags = (("probe", "dn-0001"),)
    start = dt.datetime(2025, 2, 1, tzinfo=ZONE)
    points = month_points([("throughput_1d", tags, {"n": 1}), ("throughput_1d", tags, {"n": 2}),
                           ("health_1d", tags, {"n": 5})], start)  # fmt: skip
    by_name = {p.measurement: p for p in points}
    assert set(by_name) == {"throughput_1mo", "health_1mo"}
    assert dict(by_name["throughput_1mo"].fields) == {"n": 3}
    assert by_name["throughput_1mo"].time_ns == int(start.timestamp()) * 10**9


def test_whole_local_months_and_the_reports_spans() -> None:
    start = dt.datetime(2025, 1, 31, tzinfo=ZONE)
    end = dt.datetime(2025, 5, 1, tzinfo=ZONE)
    months = whole_months(start, end, ZONE)
    assert [m[0].month for m in months] == [2, 3, 4]
    assert local_month(dt.datetime(2025, 12, 31, 20, tzinfo=dt.UTC), ZONE)[0].year == 2026
    assert whole_months(start, start + dt.timedelta(days=20), ZONE) == []

    class B:
        def __init__(self) -> None:
            self.start, self.end = start, end

    plan = RollupPlan(B())  # type: ignore[arg-type]
    # Months in a row: one statement; the days around them from the daily rollups.
    spans = plan.spans([months[0], months[2], months[1]])
    assert spans == [(start, months[0][0], False), (months[0][0], end, True)]
    gap = plan.spans([months[0], months[2]])
    assert [s[2] for s in gap] == [False, True, False, True]


# -- against InfluxDB ------------------------------------------------------------------------

PROBES = 3
START = dt.datetime(2025, 1, 31, tzinfo=rf.VN)  # Feb 2025 whole, a day each side
DAYS = 30


class Recording:
    """The report's client, remembering each text it sent."""

    def __init__(self, client: fetch.HttpInfluxQL) -> None:
        self.client = client
        self.texts: list[str] = []

    def run(self, text: str) -> list[dict[str, Any]]:
        self.texts.append(text)
        return self.client.run(text)


@dataclasses.dataclass
class Loaded:
    server: InfluxDB
    db: str
    client: fetch.HttpInfluxQL

    def report(self, source: gather.Source) -> tuple[Report, list[str]]:
        enrich = rf.enrichment(PROBES)
        client = Recording(self.client)
        report = gather.gather(
            fetch.Fetcher(client),
            start=START.astimezone(dt.UTC),
            end=(START + dt.timedelta(days=DAYS)).astimezone(dt.UTC),
            settings=SETTINGS,
            inventory=enrich.inventory,
            targets=enrich.targets,
            latency_targets_known=latency_targets_known(self.client),
            source=source,
        )
        return report, client.texts


@pytest.fixture(scope="module")
def month(influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    db = f"rollups_month_{time.time_ns()}"
    influxdb.create_database(db)
    results = list(rf.fleet(rf.enrichment(PROBES), START, DAYS, seed=4))

    def write(lines: list[str]) -> None:
        for i in range(0, len(lines), 20_000):
            influxdb.write_lines(db, lines[i : i + 20_000])

    write([p.line() for r in results for p in r.points])
    rng = random.Random(6)  # noqa: S311 - test data
    late = [r for r in results if rng.random() < 0.02]
    held = {(r.probe, r.seq) for r in late}
    in_order = sorted(
        (r for r in results if (r.probe, r.seq) not in held), key=lambda r: r.points[0].time_ns
    )
    client = fetch.HttpInfluxQL(influxdb.v1_url, database=db)
    end = START + dt.timedelta(days=DAYS)
    feeder = rf.Feeder(write, tmp_path_factory.mktemp("month"), client, now=START.timestamp())
    feeder.compactor.month_chunk = 7  # a month's points go out in parts, as at 10,000 probes
    for i in range(0, len(in_order), 1000):
        feeder.batch(in_order[i : i + 1000])
        feeder.now = in_order[min(i + 999, len(in_order) - 1)].points[0].time_ns / 1e9
        feeder.flush()
        feeder.rollups.tick()
        feeder.store()
    feeder.flush()
    feeder.now = end.timestamp() + 3 * 86_400
    compactor = feeder.compactor

    def compacted() -> bool:
        feeder.rollups.tick()
        feeder.store()
        idle = not compactor._busy and not compactor.dirty and not compactor.months
        return compactor.next_day >= end.timestamp() and idle

    eventually(compacted, timeout_s=180, interval_s=0.05)
    # Late results of days already compacted: the days, then their months, again.
    feeder.batch(late)
    feeder.flush()
    assert compactor.dirty
    eventually(compacted, timeout_s=180, interval_s=0.05)
    yield Loaded(influxdb, db, client)
    influxdb.drop_database(db)


@pytest.mark.integration  # a real InfluxDB
def test_report_figures_from_monthly_rollups_equal_raw_ones_within_the_bounds(
    month: Loaded,
) -> None:
    raw, _ = month.report("raw")
    rolled, texts = month.report("rollups")
    assert any('FROM "throughput_1mo"' in t for t in texts), "February not read from _1mo"
    assert any('FROM "throughput_1d"' in t for t in texts), "the edge days not read from _1d"
    assert rolled.communes[0].access["fixed"].download.tests
    problems: list[str] = []
    _compare(dataclasses.asdict(raw), dataclasses.asdict(rolled), "report", problems)
    assert not problems, "\n".join(problems[:30])


@pytest.mark.integration  # a real InfluxDB
def test_a_months_counts_are_its_raw_counts_late_results_included(month: Loaded) -> None:
    a, b = whole_months(START, START + dt.timedelta(days=DAYS), ZONE)[0]
    span = f"time >= {int(a.timestamp()) * 10**9} AND time < {int(b.timestamp()) * 10**9}"
    q = month.server.query_points
    for raw_q, rolled_q in (
        ('SELECT count("download_mbps") AS "n" FROM "throughput"',
         'SELECT sum("download_mbps_n") AS "n" FROM "throughput_1mo"'),
        ('SELECT count("uptime_s") AS "n" FROM "health"',
         'SELECT sum("uptime_s_n") AS "n" FROM "health_1mo"'),
        ('SELECT count("rtt_median_ms") AS "n" FROM "latency"',
         'SELECT sum("rtt_median_ms_n") AS "n" FROM "latency_1mo"'),
    ):  # fmt: skip
        want = q(f"{raw_q} WHERE {span}", month.db)[0]["n"]
        got = q(f"{rolled_q} WHERE {span}", month.db)[0]["n"]
        assert got == want, rolled_q
    # One point per series and month, at the local month's start.
    stamps = q(f'SELECT "n" FROM "throughput_1mo" WHERE {span}', month.db)  # noqa: S608
    assert stamps
    assert {p["time"] for p in stamps} == {int(a.timestamp()) * 10**9}


@pytest.mark.integration  # a real InfluxDB; last in the module: it rewrites two days
def test_a_rebuild_sums_the_months_its_days_touch_again(
    month: Loaded, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from probefleet.collector.config import CollectorConfig, FilesSection, InfluxSection
    from probefleet.collector.rollups_rebuild import run

    targets = tmp_path_factory.mktemp("targets") / "targets.toml"
    targets.write_text(
        "year = 2025\n[fixed]\ndownload_mbps = 150.0\n[mobile]\ndownload_mbps = 60.0\n"
    )
    cfg = CollectorConfig(
        influxdb=InfluxSection(url=month.server.v1_url, bucket=month.db),
        files=FilesSection(targets=str(targets)),
    )
    a, b = whole_months(START, START + dt.timedelta(days=DAYS), ZONE)[0]
    span = f"time >= {int(a.timestamp()) * 10**9} AND time < {int(b.timestamp()) * 10**9}"
    q = month.server.query_points
    # The month's point made wrong on purpose: the rebuild must replace it, not add to it.
    month.server.query_raw(f'DELETE FROM "throughput_1mo" WHERE {span}', month.db, post=True)  # noqa: S608
    said: list[str] = []
    assert run(cfg, start_text="2025-02-10", end_text="2025-02-11", progress=said.append) == 0
    assert any("month 2025-02" in line for line in said), said
    want = q(f'SELECT count("download_mbps") AS "n" FROM "throughput" WHERE {span}', month.db)  # noqa: S608
    got = q(f'SELECT sum("download_mbps_n") AS "n" FROM "throughput_1mo" WHERE {span}', month.db)  # noqa: S608
    assert got[0]["n"] == want[0]["n"]
    raw, _ = month.report("raw")
    rolled, _ = month.report("rollups")
    problems: list[str] = []
    _compare(dataclasses.asdict(raw), dataclasses.asdict(rolled), "report", problems)
    assert not problems, "\n".join(problems[:30])
