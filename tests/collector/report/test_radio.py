"""The mobile section split by technology and operator, read from raw points of a real
InfluxDB (issue 21's tag names, radio-spec.md): medians, counts and shares against values
computed here from what was written; results without radio context kept as a row of their
own; the split there whatever ``source`` the rest of the report reads."""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec
import pytest
from probefleet.collector import points
from probefleet.collector.inventory import (
    Enrichment,
    InventoryFile,
    ProbeInfo,
    load_inventory,
    load_targets,
)
from probefleet.collector.report import radio
from probefleet.collector.report.fetch import Fetcher, HttpInfluxQL
from probefleet.collector.report.gather import Source, gather
from probefleet.collector.report.html import render_html
from probefleet.collector.report.i18n import Strings
from probefleet.collector.report.model import MobileRadio, RadioRow, Report
from probefleet.collector.report.radio import operator_label, technology_label
from probefleet.collector.report.settings import ReportSettings
from probefleet.core import wire
from probefleet.kinds.radio import fields as radio_fields

from tests.collector.helpers import ROOT
from tests.collector.report import fleet as fl
from tests.collector.report import sample
from tests.harness import InfluxTarget

START: Final = dt.datetime(2025, 3, 2, 17, tzinfo=dt.UTC)  # 2025-03-03 00:00 +07
END: Final = START + dt.timedelta(days=2)
PROVINCE: Final = "Đồng Nai"
# (probe, access, technology or None, operator code or None, downloads); None: the result
# had no radio context (an older agent). "dn-x" is missing from the inventory.
SERIES: Final = [
    ("dn-a", "mobile", "lte", "45204", [40.0, 52.0, 61.0, 75.0, 33.0]),
    ("dn-a", "mobile", "nr5g_nsa", "45204", [140.0, 160.0]),
    ("dn-a", "mobile", "umts", "45204", [6.0]),
    ("dn-b", "mobile", "lte", "45202", [58.0, 62.0, 64.0]),
    ("dn-b", "mobile", None, None, [44.0, 47.0]),
    ("dn-b", "fixed", None, None, [170.0, 180.0]),  # not mobile: not in the split
    ("dn-x", "mobile", "lte", "45204", [999.0]),  # unknown probe: in no area
]


def _tag(value: str) -> str:
    return value.replace(",", r"\,").replace(" ", r"\ ").replace("=", r"\=")


def _lines() -> Iterator[str]:
    n = 0
    for probe, access, tech, op, values in SERIES:
        tags = {"probe": probe, "access": access, "status": "ok", "operator": "X"}
        if probe != "dn-x":
            commune = "Phú Lâm" if probe == "dn-a" else "La Ngà"
            tags |= {"province": PROVINCE, "district": "D", "commune": commune}
        if tech is not None:
            tags["radio_technology"] = tech
        if op is not None:
            tags["radio_operator"] = op
        for value in values:
            n += 1
            when = START + dt.timedelta(hours=n)
            target = 60.0 if access == "mobile" else 150.0
            tag_text = ",".join(f"{k}={_tag(v)}" for k, v in sorted(tags.items()))
            yield (
                f"throughput,{tag_text} download_mbps={value},upload_mbps={value / 2},"
                f"meets_download_target={int(value >= target)}i,seq={n}i "
                f"{int(when.timestamp())}000000000"
            )


def load_inventory_text(text: str) -> InventoryFile:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory.toml"
        path.write_text(text, encoding="utf-8")
        return load_inventory(path)


def _inventory() -> InventoryFile:
    return InventoryFile(
        probes={
            "dn-a": ProbeInfo(commune="Phú Lâm", province=PROVINCE, district="D"),
            "dn-b": ProbeInfo(commune="La Ngà", province=PROVINCE, district="D"),
        }
    )


def _split(influx_db: InfluxTarget, source: Source) -> MobileRadio:
    client = HttpInfluxQL(influx_db.server.v1_url, database=influx_db.db)
    report = gather(
        Fetcher(client),
        start=START,
        end=END,
        settings=ReportSettings(),
        inventory=_inventory(),
        targets=None,
        source=source,
    )
    assert [m.province for m in report.mobile_radio] == [PROVINCE]
    return report.mobile_radio[0]


def _want(key: tuple[str | None, str | None]) -> list[float]:
    """The mobile downloads of known probes with that (technology, operator); None = any."""
    return [
        v
        for probe, access, tech, op, values in SERIES
        if access == "mobile" and probe != "dn-x"
        for v in values
        if (key[0] is None or (tech or "") == key[0]) and (key[1] is None or (op or "") == key[1])
    ]


def _check(row: RadioRow, values: list[float]) -> None:
    assert row.tests == len(values), row
    assert row.median_mbps == pytest.approx(statistics.median(values)), row
    assert row.tests_at_target == sum(1 for v in values if v >= 60.0), row


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("source", ["raw", "rollups"])
def test_the_split_matches_what_was_written(influx_db: InfluxTarget, source: Source) -> None:
    influx_db.server.write_lines(influx_db.db, _lines())
    split = _split(influx_db, source)

    techs = [r.technology for r in split.by_technology]
    assert techs == ["nr5g_nsa", "lte", "umts", ""]  # 5G first, no radio context last
    for row in split.by_technology:
        _check(row, _want((row.technology, None)))
    assert split.tests == len(_want((None, None))) == 13  # nothing dropped, fixed left out

    assert [r.operator_code for r in split.by_operator] == ["45204", "45202", ""]
    for row in split.by_operator:
        _check(row, _want((None, row.operator_code)))
    pairs = [(r.operator_code, r.technology) for r in split.by_operator_technology]
    assert pairs == [("45204", "nr5g_nsa"), ("45204", "lte"), ("45204", "umts"),
                     ("45202", "lte"), ("", "")]  # fmt: skip
    for row in split.by_operator_technology:
        _check(row, _want((row.technology, row.operator_code)))

    html = render_html(_report_with(split), Strings("en")).replace("\u00a0", " ")
    radio = html.split('id="radio"')[1].split("</section>")[0]
    for label in ("5G NSA", "4G", "3G", "no radio context", "Viettel (45204)", "VinaPhone (45202)"):
        assert label in radio, label
    # share of tests per technology: 4G is 8 of 13
    assert "61.5 %" in radio


def _report_with(split: MobileRadio) -> Report:
    report = sample.build_report(areas=None)
    report.mobile_radio = [split]
    return report


def test_the_report_reads_the_tags_the_collector_writes() -> None:
    """One name everywhere: the split groups by the point builder's radio tags, and names
    every technology the wire contract has."""
    assert (radio.TECHNOLOGY_TAG, radio.OPERATOR_TAG) == ("radio_technology", "radio_operator")
    assert set(radio_fields.TAGS.values()) == {radio.TECHNOLOGY_TAG, radio.OPERATOR_TAG}
    assert set(points.RADIO_TAGS) == {radio.TECHNOLOGY_TAG, radio.OPERATOR_TAG}
    assert set(radio.TECHNOLOGIES) == set(typing.get_args(wire.Technology))


def test_labels_for_technologies_and_operators() -> None:
    assert [technology_label(t) for t in ("gsm", "umts", "lte", "nr5g_nsa", "nr5g_sa")] == [
        "2G",
        "3G",
        "4G",
        "5G NSA",
        "5G SA",
    ]
    assert operator_label("45204") == "Viettel (45204)"
    assert operator_label("45202") == "VinaPhone (45202)"
    assert operator_label("45201") == "MobiFone (45201)"
    assert operator_label("45205") == "Vietnamobile (45205)"
    assert operator_label("45207") == "45207"  # no name known: the code


RADIO_CYCLE: Final = [
    wire.RadioContext(start=wire.RadioSnapshot(technology="lte", operator_code="45204")),
    wire.RadioContext(start=wire.RadioSnapshot(technology="nr5g_nsa", operator_code="45204")),
    None,  # an older agent: no radio context
    wire.RadioContext(start=wire.RadioSnapshot(technology="umts", operator_code="45202")),
    # registered nowhere: a radio context with neither technology nor operator
    wire.RadioContext(start=wire.RadioSnapshot(registration="searching")),
]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_split_of_points_made_by_the_collector(influx_db: InfluxTarget) -> None:
    """The fleet's mobile tests given radio contexts, turned into points by the collector's
    own point builder (collector/points.py) with its enrichment: the tags the report reads
    are the ones the collector writes."""
    fleet = fl.build_fleet()
    enrichment = Enrichment(
        load_inventory_text(fl.INVENTORY), load_targets(ROOT / "config/targets.sample.toml")
    )
    want: dict[tuple[str, str], list[float]] = {}
    lines: list[str] = []
    i = 0
    for m in fleet.messages:
        data = getattr(m, "data", None)
        if (
            wire.kind_of(m) != "throughput"
            or m.access != "mobile"
            or m.status != "ok"
            or not m.clock.synced
            or data is None
        ):
            continue
        radio_ctx = RADIO_CYCLE[i % len(RADIO_CYCLE)]
        i += 1
        with_radio = msgspec.structs.replace(m, radio=radio_ctx)
        start = radio_ctx.start if radio_ctx else None
        key: tuple[str, str] = (
            str(start.technology or "") if start else "",
            str(start.operator_code or "") if start else "",
        )
        want.setdefault(key, []).append(float(data.download_mbps))
        lines += [p.line() for p in points.points_from(with_radio, m.probe_id, enrichment)]
    assert i >= 10
    influx_db.server.write_lines(influx_db.db, lines)
    client = HttpInfluxQL(influx_db.server.v1_url, database=influx_db.db)
    start_utc = fl.START_LOCAL.astimezone(dt.UTC)
    report = gather(
        Fetcher(client),
        start=start_utc,
        end=fl.END_LOCAL.astimezone(dt.UTC),
        settings=ReportSettings(),
        inventory=enrichment.inventory,
        targets=enrichment.targets,
        source="raw",
    )
    split = report.mobile_radio[0]
    got = {(r.technology, r.operator_code): r for r in split.by_operator_technology}
    assert set(got) == set(want)
    for key, values in want.items():
        _check(got[key], values)
    # Without a technology (no radio context, or none reported): one row, nothing lost.
    assert sum(r.tests for r in split.by_technology) == i
    mobile = next(a for a in report.province).access["mobile"].download
    assert split.tests == mobile.tests  # the same tests as the report's mobile median
