"""The radio context under attack: the generated corpus covers every radio figure (start,
end, the radio kind's snapshot) and the contract bounds each one; a probe inventing
operator codes cannot grow InfluxDB's series beyond a handful."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import pytest
from probefleet.collector.cardinality import (
    RADIO_OPERATORS_PER_PROBE,
    CardinalityGuard,
    CardinalitySection,
)
from probefleet.collector.errors import Rejected
from probefleet.collector.inventory import Enrichment
from probefleet.collector.points import parse, points_from
from probefleet.core import wire

from tests.hostile.corpus import GOLDEN, TOPICS, field_cases

PROBE = "hostile-radio"
FIGURES = set(wire.RadioSnapshot.__struct_fields__)
RADIO_PREFIXES = ("radio.start.", "radio.end.", "data.snapshot.")


@functools.cache
def radio_cases() -> list[tuple[str, str, bytes]]:
    """(the mutated path, the mutation, the payload) of every case on a radio figure."""
    out = []
    for case in field_cases(PROBE):
        if case.category == "duplicate keys":
            continue
        _golden, path, category = case.name.split(":")
        if path.startswith(RADIO_PREFIXES):
            out.append((path, category, case.payload))
    return out


@pytest.mark.slow  # the whole corpus: ~1 s
def test_every_radio_figure_is_in_the_corpus() -> None:
    paths = {path for path, _category, _payload in radio_cases()}
    for prefix in RADIO_PREFIXES:
        covered = {p.removeprefix(prefix) for p in paths if p.startswith(prefix)}
        # The radio kind's golden is a 5G NSA modem: no UMTS figures there.
        wanted = FIGURES - {"lac", "rscp_dbm", "ecio_db"} if prefix == "data.snapshot." else FIGURES
        assert covered == wanted, (prefix, wanted - covered)


def _within_bounds(snapshot: wire.RadioSnapshot) -> None:
    """What was accepted is a snapshot whose every figure keeps its bounds."""
    for name in FIGURES:
        value = getattr(snapshot, name)
        if isinstance(value, float):
            assert math.isfinite(value), (name, value)
            assert -160.0 <= value <= 60.0, (name, value)
        if isinstance(value, int):
            assert 0 <= value < 2**36, (name, value)
        if isinstance(value, str):
            assert 0 < len(value) <= 64, (name, value)
            assert value.isprintable(), (name, value)


@pytest.mark.slow
def test_every_radio_mutation_is_refused_or_bounded() -> None:
    refused = accepted = 0
    misnamed = []
    for path, category, payload in radio_cases():
        try:
            result = wire.decode_result(payload)
        except wire.WireError as exc:
            refused += 1
            # The error names the figure's snapshot (nesting and size: the whole message).
            if exc.field != "$" and not exc.field.startswith(path.rsplit(".", 1)[0]):
                misnamed.append((path, category, str(exc)))
            continue
        accepted += 1
        # Only a mutation that keeps a figure valid may pass: absent, 20.0 for 20, -1 dBm.
        assert category in {"null", "integral float", "out of range"}, (path, category)
        radio = result.radio
        snapshots = [radio.start, radio.end] if radio is not None else []
        snapshots.append(getattr(result.data, "snapshot", None))
        for snapshot in filter(None, snapshots):
            _within_bounds(snapshot)
        assert result.probe_id == PROBE
    assert not misnamed
    assert refused > accepted > 0  # absent, 20.0 and -1 pass; every other mutation breaks it


@pytest.mark.parametrize(
    ("figure", "value"),
    [("rsrp_dbm", 12.0), ("rsrp_dbm", -400.0), ("rsrq_db", 80.0), ("snr_db", -99.0),
     ("cell_id", 2**36), ("tac", 2**24), ("lac", 2**16), ("arfcn", 3_279_166),
     ("signal_quality_pct", 101), ("operator_code", "4520"), ("operator_code", "45204x"),
     ("operator_name", "x" * 65), ("band", "eutran-3; DROP"), ("technology", "6g")],
)  # fmt: skip
def test_figures_beyond_their_bounds_are_refused_naming_them(figure: str, value: Any) -> None:
    doc = json.loads((GOLDEN / "result-throughput-mobile.json").read_text())
    doc["radio"]["start"][figure] = value
    with pytest.raises(wire.WireError) as info:
        wire.decode_result(json.dumps(doc))
    assert info.value.field == f"radio.start.{figure}"


@pytest.mark.slow  # 10,000 results through parse and the guard: ~2 s
def test_ten_thousand_invented_operators_make_a_handful_of_series() -> None:
    doc = json.loads((GOLDEN / "result-throughput-mobile.json").read_text())
    guard = CardinalityGuard([], CardinalitySection())
    admitted, reasons, refused = set(), set(), 0
    for n in range(10_000):
        code = f"{100_000 + n}"
        doc = dict(doc, probe_id=PROBE, seq=n + 1)
        doc["radio"] = {"start": dict(doc["radio"]["start"], operator_code=code)}
        raw = json.dumps(doc).encode()
        parsed = parse(TOPICS.result(PROBE, "throughput"), raw, TOPICS)
        points = points_from(parsed.result, parsed.probe, Enrichment())
        try:
            guard.admit(PROBE, points)
        except Rejected as exc:
            reasons.add(exc.field)
            refused += 1
            continue
        admitted.add(code)
    assert reasons == {"tags.radio_operator"}
    assert len(admitted) == RADIO_OPERATORS_PER_PROBE
    assert refused == 10_000 - RADIO_OPERATORS_PER_PROBE


def test_radio_technology_is_a_closed_set_and_not_counted() -> None:
    doc = json.loads((GOLDEN / "result-throughput-mobile.json").read_text())
    guard = CardinalityGuard([], CardinalitySection(tag_values_per_probe=1))
    for n, technology in enumerate(("gsm", "umts", "lte", "nr5g_nsa", "nr5g_sa")):
        doc = dict(doc, probe_id=PROBE, seq=n + 1)
        doc["radio"] = {"start": dict(doc["radio"]["start"], technology=technology)}
        parsed = parse(TOPICS.result(PROBE, "throughput"), json.dumps(doc).encode(), TOPICS)
        guard.admit(PROBE, points_from(parsed.result, parsed.probe, Enrichment()))
