"""The InfluxDB seam: statements batched per request, progress, errors that say where."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import pytest
from probefleet.collector import queries
from probefleet.collector.report import fetch, ranks
from probefleet.collector.report.errors import QueryFailed

from tests.harness import InfluxTarget

QUERY = queries.CATALOGUE["download_summary"]


class FakeInfluxQL:
    """The seam's double: answers each statement with one series naming its index."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def run(self, text: str) -> list[dict[str, Any]]:
        self.requests.append(text)
        statements = text.split(";\n")
        return [
            {
                "series": [
                    {
                        "name": "m",
                        "tags": {"i": str(i)},
                        "columns": ["time", "v"],
                        "values": [[0, float(i)]],
                    }
                ]
            }
            for i, _ in enumerate(statements)
        ]


def test_statements_go_31_per_request_with_one_progress_line_each() -> None:
    client = FakeInfluxQL()
    lines: list[str] = []
    fetcher = fetch.Fetcher(client, progress=lines.append, total=3)
    rows = fetcher.rows(QUERY, "peak", [f"SELECT {i}" for i in range(70)])
    assert len(rows) == 70
    assert [len(r.split(";\n")) for r in client.requests] == [31, 31, 8]
    assert lines == [
        "[1/3] download_summary peak (1-31 of 70)",
        "[2/3] download_summary peak (32-62 of 70)",
        "[3/3] download_summary peak (63-70 of 70)",
    ]
    single = fetch.Fetcher(client, progress=lines.append)
    single.rows(QUERY, "by commune", ["SELECT 1"])
    assert lines[-1] == "[1] download_summary by commune"


def test_row_numbers_ignore_non_numbers() -> None:
    row = fetch.Row({}, {"a": 1, "b": 2.5, "c": "x", "d": None, "e": True})
    assert (row.num("a"), row.num("b"), row.num("c"), row.num("d"), row.num("e")) == (
        1.0, 2.5, None, None, None,
    )  # fmt: skip
    assert row.count("d") == 0


def test_an_unreachable_influxdb_is_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        client = fetch.HttpInfluxQL(f"http://127.0.0.1:{port}", database="x", timeout_s=5)
        with pytest.raises(QueryFailed, match=f"cannot reach InfluxDB at http://127.0.0.1:{port}"):
            fetch.Fetcher(client).rows(QUERY, "by commune", ["SELECT 1"])


@pytest.mark.integration
def test_a_refused_query_names_the_catalogue_entry(influx_db: InfluxTarget) -> None:
    client = fetch.HttpInfluxQL(influx_db.server.url, database=influx_db.db, token="x:y")
    with pytest.raises(QueryFailed, match=r"query download_summary \(oops\): .*refused"):
        fetch.Fetcher(client).rows(QUERY, "oops", ["SELECT median( FROM nowhere"])
    # The token header is accepted by 1.x without auth, as by 2.x with a DBRP mapping.
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    text = QUERY.render(start=start, end=start + dt.timedelta(days=1))
    assert fetch.Fetcher(client).rows(QUERY, "empty", [text]) == []


def test_ranks_are_influxdbs_definitions() -> None:
    assert ranks.median([]) is None
    assert ranks.median([3.0, 1.0, 2.0]) == 2.0
    assert ranks.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert ranks.percentile([1.0, 2.0, 3.0, 4.0], 10) is None  # index floor(0.9) - 1 < 0
    assert ranks.percentile([5.0, 1.0, 4.0, 2.0, 3.0], 10) == 1.0
    assert ranks.percentile([float(i) for i in range(1, 21)], 10) == 2.0
