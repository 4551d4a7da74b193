"""The query catalogue: placeholders, rendering, the Grafana form (unit tests, no InfluxDB).

Every query is also executed against a real InfluxDB filled by the real collector in
test_report_integration.py."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import pytest
from probefleet.collector import queries

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2025, 1, 3, tzinfo=dt.UTC)


def test_every_query_has_a_stable_name_doc_and_columns() -> None:
    assert queries.CATALOGUE, "empty catalogue"
    for name, q in queries.CATALOGUE.items():
        assert q.name == name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
        assert len(q.doc) > 40, name
        assert q.columns, name
        for column in q.columns:
            assert f'"{column}"' in q.select, (name, column)


def test_render_leaves_no_placeholder_and_filters_literally() -> None:
    for q in queries.CATALOGUE.values():
        windows = None if q.grafana_ok else queries.peak_windows(START, END)
        text = q.render(
            start=START,
            end=END,
            group_by=("commune", "access"),
            filters={"commune": "Tân Phú (cũ)", "access": "fixed"},
            windows=windows,
        )
        assert "$" not in text.replace("$/", ""), text
        assert "time >= '2025-01-01T00:00:00.000000Z'" in text or q.source is not None
        if "$commune" in q.select + (q.source or ""):
            assert r"/^Tân Phú \(cũ\)$/" in text


def test_grafana_form_keeps_grafana_variables() -> None:
    grafana = queries.grafana_queries()
    assert "download_summary" in grafana
    assert "throughput_peak_values" not in grafana
    text = grafana["download_summary"].grafana(("commune",))
    assert "$timeFilter" in text
    assert '"commune" =~ /^$commune$/' in text
    assert text.endswith('GROUP BY "commune"')
    by_hour = grafana["download_by_hour"].grafana(("commune",))
    assert "GROUP BY time($__interval)" in by_hour
    assert "tz('Asia/Ho_Chi_Minh')" in by_hour
    with pytest.raises(ValueError, match="report-only"):
        queries.CATALOGUE["throughput_peak_values"].grafana()
    assert set(grafana["latency_summary"].placeholders()) >= {"timeFilter", "commune", "target"}


def test_fixed_group_tags_come_first_and_unknown_tags_are_refused() -> None:
    text = queries.CATALOGUE["throughput_runs"].render(start=START, end=END, group_by=("commune",))
    assert text.endswith('GROUP BY "status", "commune"')
    with pytest.raises(ValueError, match="cannot group by 'reason'"):
        queries.CATALOGUE["throughput_runs"].render(start=START, end=END, group_by=("reason",))
    with pytest.raises(ValueError, match="empty period"):
        queries.CATALOGUE["throughput_runs"].render(start=END, end=START)


def test_params_render_as_plain_decimals() -> None:
    text = queries.CATALOGUE["download_band"].render(
        start=START, end=END, params={"lowMbps": 120.0, "highMbps": 1e9}
    )
    assert '"download_mbps" >= 120.0 AND "download_mbps" < 1000000000.0' in text


def test_regex_literal_escapes_only_re2_punctuation() -> None:
    assert queries.regex_literal("Biên Hòa a.b/c") == r"Biên Hòa a\.b\/c"
    assert re.fullmatch(queries.regex_literal("x(1)+[y]"), "x(1)+[y]")


def test_peak_windows_are_19_to_23_in_vietnam() -> None:
    windows = queries.peak_windows(START, END)
    # UTC+7: 19:00-23:00 local = 12:00-16:00 UTC, one per day.
    assert windows == [
        (dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, 16, tzinfo=dt.UTC)),
        (dt.datetime(2025, 1, 2, 12, tzinfo=dt.UTC), dt.datetime(2025, 1, 2, 16, tzinfo=dt.UTC)),
    ]
    clipped = queries.peak_windows(START.replace(hour=13), START.replace(hour=14))
    assert clipped == [(START.replace(hour=13), START.replace(hour=14))]
    with pytest.raises(ValueError, match="peak hours"):
        queries.peak_windows(START, END, start_hour=23, end_hour=19)


def test_import_has_no_side_effects() -> None:
    code = (
        "import sys; import collector.queries; "
        "print(sorted(m for m in sys.modules if m.startswith(('influxdb', 'paho', 'httpx'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert out.stderr == ""


def test_a_list_filter_is_an_alternation_of_literals() -> None:
    q = queries.CATALOGUE["latency_summary"]
    text = q.render(start=START, end=END, filters={"target": ["10.1.2.3", "tslcd.dongnai"]})
    assert r'"target" =~ /^(10\.1\.2\.3|tslcd\.dongnai)$/' in text
    with pytest.raises(ValueError, match="empty list of target"):
        q.render(start=START, end=END, filters={"target": []})
