"""Rollups: the histogram's bound, seq bookkeeping, the feeder's parts, and — against a real
InfluxDB — report figures from the rollups equal to those from raw points within the stated
bounds, with late and re-sent results in the stream."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probefleet.collector import rollups_hist as hist
from probefleet.collector._batch import Item
from probefleet.collector.report import fetch, gather, ranks
from probefleet.collector.report.model import Report
from probefleet.collector.report.run import latency_targets_known
from probefleet.collector.report.settings import ReportSettings
from probefleet.collector.rollups_bucket import Buckets
from probefleet.collector.rollups_feeder import Rollups
from probefleet.collector.rollups_seqs import SeqRanges

from tests.collector.report import rollup_fleet as rf
from tests.harness import InfluxDB, eventually

# -- pure ------------------------------------------------------------------------------------


def test_histogram_medians_are_within_the_bound() -> None:
    rng = random.Random(7)  # noqa: S311 - test data
    for _ in range(200):
        values = [rng.lognormvariate(3, 1.5) for _ in range(rng.randrange(1, 300))]
        bins: dict[int, int] = {}
        for v in values:
            hist.add(bins, v)
        lo, hi = min(values), max(values)
        exact, read = ranks.median(values), hist.median(bins, lo, hi)
        assert exact is not None
        assert read is not None
        assert abs(read - exact) <= hist.BOUND * exact + 1e-12
        p10, read10 = ranks.percentile(values, 10), hist.percentile(bins, 10, lo, hi)
        assert (p10 is None) == (read10 is None)
        if p10 is not None and read10 is not None:
            assert abs(read10 - p10) <= hist.BOUND * p10 + 1e-12
    assert hist.median({hist.bin_of(42.0): 3}, 42.0, 42.0) == 42.0  # all equal: exact
    assert hist.bin_of(0.0) == 0
    assert hist.value_of(0) == 0.0


def test_seq_ranges_merge_and_stay_bounded() -> None:
    r = SeqRanges()
    assert all(r.add(s) for s in (5, 3, 4, 10, 1))
    assert not r.add(4)
    assert r.ranges() == [[1, 1], [3, 5], [10, 10]]
    r.add(2)
    assert r.ranges() == [[1, 5], [10, 10]]
    many = SeqRanges()
    for s in range(0, 4000, 2):
        many.add(s)
    assert len(many.ranges()) == 512
    assert 3998 in many
    assert 0 not in many


def _results(n_probes: int, days: int) -> list[rf.Result]:
    return list(rf.fleet(rf.enrichment(n_probes), rf.VN_START, days, seed=3))


def test_a_duplicate_counts_once_and_a_late_result_lands_in_its_hour(tmp_path: Path) -> None:
    emitted: list[tuple[str, list[str]]] = []
    feeder = Rollups(tmp_path, emit=lambda t, lines: emitted.append((t, lines)), flush_s=1e9)
    first, second = _results(1, 1)[:2]
    feeder.on_batch([Item("t", None, first.probe, first.seq, points=first.points)])
    feeder.on_batch([Item("t", None, first.probe, first.seq, points=first.points)])  # re-sent
    assert feeder.duplicates == 1
    assert feeder.results == 1
    feeder.flush()
    topic, lines = emitted[-1]
    assert len(lines) == 1
    assert " n=1i," in lines[0]
    feeder.on_batch([Item(topic, None, None, None, lines=lines)])  # the part is stored
    # Restarted: the seq is remembered, the duplicate still counts once.
    feeder.close()
    again = Rollups(tmp_path, emit=lambda t, lines: emitted.append((t, lines)), flush_s=1e9)
    assert again.unclean_since is None
    again.on_batch([Item("t", None, first.probe, first.seq, points=first.points)])
    assert again.duplicates == 1
    again.on_batch([Item("t", None, second.probe, second.seq, points=second.points)])
    again.flush()
    _topic, late = emitted[-1]
    # A new part of the same hour: its own nanosecond, never overwriting the first part.
    assert late
    assert late[0].rsplit(" ", 1)[1] != lines[0].rsplit(" ", 1)[1]
    again.close()
    third = Rollups(tmp_path, emit=lambda t, lines: None)
    assert third.unclean_since is not None  # the last part was never confirmed stored
    third.close()


# -- against InfluxDB ------------------------------------------------------------------------

SETTINGS = ReportSettings(data_network_targets=[rf.DATA_NETWORK])
PROBES, DAYS = 5, 4


@dataclasses.dataclass
class Loaded:
    server: InfluxDB
    db: str
    client: fetch.HttpInfluxQL
    feeder: rf.Feeder
    late: int
    duplicates: int

    def report(self, source: gather.Source) -> Report:
        start, end = rf.VN_START, rf.VN_START + dt.timedelta(days=DAYS)
        enrich = rf.enrichment(PROBES)
        return gather.gather(
            fetch.Fetcher(self.client),
            start=start.astimezone(dt.UTC),
            end=end.astimezone(dt.UTC),
            settings=SETTINGS,
            inventory=enrich.inventory,
            targets=enrich.targets,
            latency_targets_known=latency_targets_known(self.client),
            source=source,
        )


@pytest.fixture(scope="module")
def loaded(influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    db = f"rollups_{time.time_ns()}"
    influxdb.create_database(db)
    results = _results(PROBES, DAYS)

    def write(lines: list[str]) -> None:
        for i in range(0, len(lines), 20_000):
            influxdb.write_lines(db, lines[i : i + 20_000])

    write([p.line() for r in results for p in r.points])  # raw: what the collector wrote
    rng = random.Random(5)  # noqa: S311 - test data
    late = [r for r in results if rng.random() < 0.03]
    duplicates = [r for r in results if rng.random() < 0.02]
    held = {(r.probe, r.seq) for r in late}
    in_order = sorted(
        (r for r in results if (r.probe, r.seq) not in held), key=lambda r: r.points[0].time_ns
    )
    client = fetch.HttpInfluxQL(influxdb.v1_url, database=db)
    end = rf.VN_START + dt.timedelta(days=DAYS)
    # The collector's clock: the period's days are over, each compacted once its grace ends.
    feeder = rf.Feeder(
        write,
        tmp_path_factory.mktemp("rollups"),
        client,
        now=rf.VN_START.timestamp(),
    )
    for i in range(0, len(in_order), 400):
        feeder.batch(in_order[i : i + 400])
        feeder.now = in_order[min(i + 399, len(in_order) - 1)].points[0].time_ns / 1e9
        if i % 4000 == 0:
            feeder.flush()
        feeder.store()
    feeder.flush()
    feeder.now = end.timestamp() + 3 * 86_400

    def compacted() -> bool:
        feeder.rollups.tick()
        feeder.store()
        return feeder.compactor.next_day >= end.timestamp() and not feeder.compactor._busy

    eventually(compacted, timeout_s=120, interval_s=0.1)
    # Then the late results (days already compacted) and re-sent ones arrive.
    feeder.batch(late)
    feeder.batch(duplicates)
    feeder.batch(in_order[:30])
    feeder.flush()
    assert feeder.compactor.dirty
    eventually(lambda: compacted() and not feeder.compactor.dirty, timeout_s=120, interval_s=0.1)
    yield Loaded(influxdb, db, client, feeder, len(late), len(duplicates) + 30)
    influxdb.drop_database(db)


def _compare(raw: Any, rolled: Any, path: str, out: list[str]) -> None:
    if isinstance(raw, dict):
        for key in sorted(set(raw) | set(rolled)):
            if key not in ("generated_at", "query_seconds", "statements"):
                _compare(raw.get(key), rolled.get(key), f"{path}.{key}", out)
    elif isinstance(raw, list):
        if len(raw) != len(rolled):
            out.append(f"{path}: {len(raw)} vs {len(rolled)} items")
        for i, (a, b) in enumerate(zip(raw, rolled, strict=False)):
            _compare(a, b, f"{path}[{i}]", out)
    elif isinstance(raw, float) and isinstance(rolled, float) and raw != rolled:
        if not any(m in path for m in ("median", "p10", "_ms")):
            out.append(f"{path}: {raw} vs {rolled} (must be exact)")
        elif abs(raw - rolled) > hist.BOUND * abs(raw) + 1e-9:
            out.append(f"{path}: {raw} vs {rolled} (beyond {hist.BOUND:.4f})")
    elif raw != rolled:
        out.append(f"{path}: {raw!r} vs {rolled!r}")


@pytest.mark.integration  # a real InfluxDB
def test_report_figures_from_rollups_equal_raw_ones_within_the_bounds(loaded: Loaded) -> None:
    assert loaded.feeder.rollups.duplicates >= loaded.duplicates
    raw, rolled = loaded.report("raw"), loaded.report("rollups")
    assert rolled.communes
    assert rolled.communes[0].access["fixed"].download.tests
    problems: list[str] = []
    _compare(dataclasses.asdict(raw), dataclasses.asdict(rolled), "report", problems)
    assert not problems, "\n".join(problems[:30])
    assert rolled.statements < raw.statements


@pytest.mark.integration  # a real InfluxDB
def test_a_late_result_and_a_duplicate_update_their_bucket(loaded: Loaded) -> None:
    """Per hourly bucket (summed over parts) and per day: what raw InfluxQL counts."""
    q = loaded.server.query_points
    raw = q(
        'SELECT count("download_mbps") AS "n" FROM "throughput" WHERE "status" = \'ok\' '
        'GROUP BY time(1h), "probe", "interface" fill(none)',
        loaded.db,
    )
    rolled = q(
        'SELECT sum("download_mbps_n") AS "n" FROM "throughput_1h" WHERE "status" = \'ok\' '
        'GROUP BY time(1h), "probe", "interface" fill(none)',
        loaded.db,
    )

    def key(p: dict[str, Any]) -> tuple[Any, ...]:
        return (p["time"], p["probe"], p["interface"])

    assert {key(p): p["n"] for p in rolled} == {key(p): p["n"] for p in raw}
    days = q('SELECT sum("download_mbps_n") AS "n" FROM "throughput_1d"', loaded.db)
    total = q('SELECT count("download_mbps") AS "n" FROM "throughput"', loaded.db)
    assert days[0]["n"] == total[0]["n"]
    parts = q('SELECT count("n") AS "parts" FROM "throughput_1h"', loaded.db)[0]["parts"]
    assert parts > len(rolled)  # late results went to new parts of their hours


def test_buckets_fold_what_the_feeder_folds() -> None:
    results = _results(2, 1)
    buckets = Buckets(rf.TARGETS)
    for r in results:
        for p in r.points:
            buckets.add(p)
    n = sum(b.n for b in buckets.values())
    assert n == sum(len(r.points) for r in results)


@pytest.mark.integration  # a real InfluxDB
def test_daily_points_in_memory_equal_the_compacted_ones(loaded: Loaded) -> None:
    """``daily_points`` (rebuild, benches) and ``compact_day`` (InfluxQL) agree."""
    from probefleet.collector.rollups_compact import peak_hours_utc
    from probefleet.collector.rollups_daily import daily_points, district_points

    buckets = Buckets(rf.TARGETS)
    for r in _results(PROBES, DAYS):
        for p in r.points:
            buckets.add(p)
    start = rf.VN_START + dt.timedelta(days=1)
    end = start + dt.timedelta(days=1)
    mine = daily_points(buckets.values(), start, end, peak_hours_utc=peak_hours_utc(start, 19, 23))
    mine += district_points(mine)
    stored = loaded.server.query(
        f"SELECT * FROM /_1d$/ WHERE time >= {int(start.timestamp()) * 10**9} "  # noqa: S608
        f"AND time < {int(end.timestamp()) * 10**9} GROUP BY *",
        loaded.db,
    )
    want = {(p.measurement, p.tags): dict(p.fields) for p in mine}
    assert sum(len(series["values"]) for series in stored) == len(mine)
    for series in stored:
        tags = tuple(sorted((k, v) for k, v in series["tags"].items() if v))
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            fields = {k: v for k, v in row.items() if k != "time" and v is not None}
            _same(fields, want[(series["name"], tags)], series["name"])


@pytest.mark.integration  # a real InfluxDB
def test_a_rebuild_from_raw_points_gives_the_feeders_days(loaded: Loaded) -> None:
    from probefleet.collector.rollups_compact import peak_hours_utc
    from probefleet.collector.rollups_daily import compact_points, daily_points, district_points
    from probefleet.collector.rollups_rebuild import rebuild_buckets

    start = rf.VN_START + dt.timedelta(days=2)
    end = start + dt.timedelta(days=1)
    peak = peak_hours_utc(start, 19, 23)
    buckets = rebuild_buckets(loaded.client, start, end, rf.TARGETS)
    days = daily_points(buckets.values(), start, end, peak_hours_utc=peak)
    rebuilt = {(p.measurement, p.tags): dict(p.fields) for p in days + district_points(days)}
    fed = {(p.measurement, p.tags): dict(p.fields)
           for p in compact_points(loaded.client, start, end, peak_hours_utc=peak)}  # fmt: skip
    assert rebuilt.keys() == fed.keys()
    for key, fields in fed.items():
        _same(rebuilt[key], fields, key)


@pytest.mark.integration  # a real InfluxDB
def test_district_rollups_sum_every_probe_of_their_district(loaded: Loaded) -> None:
    """The Year board's rollups: per district and day what the probes' daily rollups say,
    and the probes that reported health each day."""
    q = loaded.server.query_points
    for field, where in (("download_mbps_n", "\"status\" = 'ok'"), ("n", "\"status\" = 'failed'")):
        for kind in ("throughput",):
            text = f'SELECT sum("{field}") AS "v" FROM "{kind}_%s" WHERE {where} '  # noqa: S608
            group = 'GROUP BY time(1d), "district", "operator" fill(none)'
            per_probe = q(text % "1d" + group, loaded.db)
            per_district = q(text % "district_1d" + group, loaded.db)
            assert per_probe
            assert {(p["time"], p["district"], p["operator"]): p["v"] for p in per_district} == {
                (p["time"], p["district"], p["operator"]): p["v"] for p in per_probe
            }
    probes = q('SELECT count("hours_seen") AS "v" FROM "health_1d" WHERE "interface" = \'\' '
               'GROUP BY time(1d), "district" fill(none)', loaded.db)  # fmt: skip
    counted = q('SELECT sum("probes") AS "v" FROM "health_district_1d" '
                'GROUP BY time(1d), "district" fill(none)', loaded.db)  # fmt: skip
    assert probes
    assert {(p["time"], p["district"]): p["v"] for p in counted} == {
        (p["time"], p["district"]): p["v"] for p in probes
    }


def _same(a: dict[str, Any], b: dict[str, Any], what: object) -> None:
    """Equal fields, floats within rounding (sums added in another order); ``packed`` too."""
    unpack = {k: json.loads(v) if k == "packed" and isinstance(v, str) else v for k, v in a.items()}
    other = {k: json.loads(v) if k == "packed" and isinstance(v, str) else v for k, v in b.items()}
    assert unpack.keys() == other.keys(), what
    for k, v in unpack.items():
        if isinstance(v, dict):
            assert v == pytest.approx(other[k]), (what, k)
        else:
            assert v == pytest.approx(other[k]), (what, k)
